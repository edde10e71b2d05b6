import EnsemblePluginABI
import Foundation
import TestSupport
import XCTest

/// A minimal host for the alanine plugin: dlopen + the C table, nothing else, so the
/// plugin's tests do not depend on how PluginHost wraps it.
final class AlaninePlugin {
    let table: UnsafePointer<ensemble_plugin>
    static let path = TestPaths.plugin("Alanine").path

    /// The plugin table, or an XCTSkip when libAlanine.so is not built.
    static func load() throws -> AlaninePlugin {
        try requireBuilt(TestPaths.plugin("Alanine"))
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw XCTSkip("dlopen \(path): \(String(cString: dlerror()))")
        }
        guard let symbol = dlsym(handle, ENSEMBLE_PLUGIN_ENTRY_SYMBOL) else {
            XCTFail("no \(ENSEMBLE_PLUGIN_ENTRY_SYMBOL) in \(path)")
            throw XCTSkip("no entry")
        }
        let entry = unsafeBitCast(symbol, to: ensemble_plugin_entry_fn.self)
        guard let table = entry() else {
            XCTFail("\(ENSEMBLE_PLUGIN_ENTRY_SYMBOL) returned NULL")
            throw XCTSkip("null table")
        }
        return AlaninePlugin(table: table)
    }

    private init(table: UnsafePointer<ensemble_plugin>) { self.table = table }

    struct CreateError: Error, CustomStringConvertible { var description: String }

    /// A system from `key=value` parameters, or the plugin's error message.
    func make(_ parameters: String) throws -> AlanineSystemHandle {
        var error = [CChar](repeating: 0, count: 4096)
        guard let system = table.pointee.create!(parameters, &error, error.count) else {
            throw CreateError(description: String(cString: error))
        }
        return AlanineSystemHandle(table: table, system: system)
    }
}

final class AlanineSystemHandle {
    let table: UnsafePointer<ensemble_plugin>
    let system: OpaquePointer

    init(table: UnsafePointer<ensemble_plugin>, system: OpaquePointer) {
        self.table = table
        self.system = system
    }
    deinit { table.pointee.destroy!(system) }

    var count: Int { Int(table.pointee.particle_count!(system)) }

    func initialPositions() -> [Double] {
        var x = [Double](repeating: .nan, count: 3 * count)
        XCTAssertEqual(table.pointee.initial_positions!(system, &x), 0)
        return x
    }

    func atom(_ i: Int) -> ensemble_atom {
        var a = ensemble_atom()
        XCTAssertEqual(table.pointee.atom!(system, Int32(i), &a), 0)
        return a
    }

    /// Reduced energies [batch] and gradients [batch][n][3] (empty when not asked for).
    func evaluate(_ x: [Double], withGradients: Bool = true) throws -> (energies: [Double], gradients: [Double]) {
        let batch = x.count / (3 * count)
        var e = [Double](repeating: 0, count: batch)
        var g = [Double](repeating: 0, count: withGradients ? x.count : 0)
        var error = [CChar](repeating: 0, count: 1024)
        let rc = g.withUnsafeMutableBufferPointer { gp in
            table.pointee.evaluate!(system, Int64(batch), x, &e, withGradients ? gp.baseAddress : nil, &error, error.count)
        }
        if rc != 0 { throw AlaninePlugin.CreateError(description: String(cString: error)) }
        return (e, g)
    }

    func energy(_ x: [Double]) throws -> Double { try evaluate(x, withGradients: false).energies[0] }
}

/// Name of a fixed-size C char array field.
func cString<T>(_ tuple: T) -> String {
    withUnsafeBytes(of: tuple) { raw in
        String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
    }
}

/// Test conformations: the start structure with Gaussian noise of several sizes, and with
/// the φ or ψ torsion (or both) rotated by a random angle, then a little noise.
enum Conformations {
    /// Rotate atoms `moving` about the axis through a → b by `angle`.
    static func rotate(_ x: inout [Double], axis a: Int, _ b: Int, moving: [Int], by angle: Double) {
        let p = SIMD3(x[3 * a], x[3 * a + 1], x[3 * a + 2])
        let q = SIMD3(x[3 * b], x[3 * b + 1], x[3 * b + 2])
        var u = q - p
        u /= (u * u).sum().squareRoot()
        let c = cos(angle), s = sin(angle)
        for m in moving {
            let v = SIMD3(x[3 * m], x[3 * m + 1], x[3 * m + 2]) - p
            let cross = SIMD3(u.y * v.z - u.z * v.y, u.z * v.x - u.x * v.z, u.x * v.y - u.y * v.x)
            let r = v * c + cross * s + u * ((u * v).sum() * (1 - c)) + p
            x[3 * m] = r.x; x[3 * m + 1] = r.y; x[3 * m + 2] = r.z
        }
    }

    /// Alanine dipeptide atom order (tleap ACE-ALA-NME): N = 6, CA = 8, C = 14; the atoms
    /// after the N–CA bond (φ side) and after the CA–C bond (ψ side).
    static let phiMoving = Array(14...21) + [9, 10, 11, 12, 13]
    static let psiMoving = Array(15...21)

    static func make(start: [Double], seed: UInt64, noisy: Int = 40, rotated: Int = 20) -> [[Double]] {
        var rng = TestRandom(seed: seed)
        var out: [[Double]] = []
        let sigmas = [0.01, 0.03, 0.1, 0.2]
        for k in 0..<noisy {
            let sigma = sigmas[k % sigmas.count]
            out.append(start.map { $0 + sigma * rng.normal() })
        }
        for k in 0..<rotated {
            var x = start
            if k % 3 != 1 { rotate(&x, axis: 6, 8, moving: phiMoving, by: (2 * rng.uniform() - 1) * .pi) }
            if k % 3 != 0 { rotate(&x, axis: 8, 14, moving: psiMoving, by: (2 * rng.uniform() - 1) * .pi) }
            out.append(x.map { $0 + 0.02 * rng.normal() })
        }
        return out
    }
}

/// Central finite differences (h = 1e-5 Å) of u against the analytic gradient at every coordinate
/// of `Conformations.make(…, noisy: 4, rotated: 2)`, each within 1e-6 of ‖∇u‖, for the systems
/// made from each solvent's parameter string; prints the worst relative difference per solvent.
func checkGradientsAgainstFiniteDifferences(_ plugin: AlaninePlugin, label: String, seed: UInt64,
                                            parameters: (String) -> String,
                                            file: StaticString = #filePath, line: UInt = #line) throws {
    for solvent in ["vacuum", "obc1", "obc2"] {
        let system = try plugin.make(parameters(solvent))
        let confs = Conformations.make(start: system.initialPositions(), seed: seed, noisy: 4, rotated: 2)
        var worst = 0.0
        for x in confs {
            let g = try system.evaluate(x).gradients
            let fd = try finiteDifferenceGradient(x, step: 1e-5) { try system.energy($0) }
            let norm = g.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for k in g.indices {
                assertClose(g[k], fd[k], absolute: 1e-6 * norm, "\(solvent) coordinate \(k)", file: file, line: line)
                worst = max(worst, abs(g[k] - fd[k]) / norm)
            }
        }
        print(String(format: "%@ %@: finite differences (h = 1e-5 Å), worst |Δ|/‖∇u‖ = %.2e", label, solvent, worst))
    }
}
