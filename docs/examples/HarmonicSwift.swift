// HarmonicSwift.swift — a complete, minimal `ensemble` energy plugin in Swift.
//
//   u(x) = k / 2 · Σ_i |x_i|²   (kT = 1)
//
// Build (from the repository root):
//   swiftc -O -emit-library -module-name HarmonicSwift \
//       -I Sources/EnsemblePluginABI/include docs/examples/HarmonicSwift.swift \
//       -o libharmonic-swift.so
// The -I folder holds ensemble_plugin.h and its module map, so `import EnsemblePluginABI` works.
import EnsemblePluginABI
#if canImport(Glibc)
import Glibc
#endif

/// The system: a heap object whose address is the opaque ensemble_system pointer.
final class Harmonic {
    var k = 1.0
    var particles: Int32 = 1
}

private func harmonic(_ p: OpaquePointer?) -> Harmonic {
    Unmanaged<Harmonic>.fromOpaque(UnsafeRawPointer(p!)).takeUnretainedValue()
}

private func fail(_ text: String, _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int) {
    guard let buffer, capacity > 0 else { return }
    let bytes = Array(text.utf8.prefix(capacity - 1))
    for (i, byte) in bytes.enumerated() { buffer[i] = CChar(bitPattern: byte) }
    buffer[bytes.count] = 0
}

private let table: UnsafeMutablePointer<ensemble_plugin> = {
    let t = UnsafeMutablePointer<ensemble_plugin>.allocate(capacity: 1)
    t.initialize(to: ensemble_plugin(
        abi_version: UInt32(ENSEMBLE_PLUGIN_ABI_VERSION),
        struct_size: UInt32(MemoryLayout<ensemble_plugin>.size),
        name: UnsafePointer(strdup("harmonic-swift")), version: UnsafePointer(strdup("1.0.0")),
        description: UnsafePointer(strdup("Harmonic well written in Swift")),
        parameters_help: UnsafePointer(strdup("k=K  spring constant (default 1)\nparticles=N  (default 1)")),
        create: { parameters, error, capacity in
            let system = Harmonic()
            let text = parameters.map { String(cString: $0) } ?? ""
            for pair in text.split(whereSeparator: { $0 == ";" || $0 == " " }) {
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2, parts[0] == "k", let k = Double(parts[1]), k > 0 { system.k = k }
                else if parts.count == 2, parts[0] == "particles", let n = Int32(parts[1]), n > 0 { system.particles = n }
                else { fail("unknown or bad parameter '\(pair)' (valid: k, particles)", error, capacity); return nil }
            }
            return OpaquePointer(Unmanaged.passRetained(system).toOpaque())
        },
        destroy: { p in if let p { Unmanaged<Harmonic>.fromOpaque(UnsafeRawPointer(p)).release() } },
        particle_count: { harmonic($0).particles },
        dimension: { _ in 3 },
        box: { _, _ in 0 },
        length_unit_angstrom: { _ in 1 },
        evaluate: { p, batch, x, u, g, _, _ in
            let s = harmonic(p)
            let stride = Int(s.particles) * 3
            for b in 0..<Int(batch) {
                var sum = 0.0
                for i in 0..<stride {
                    let xi = x![b * stride + i]
                    sum += xi * xi
                    g?[b * stride + i] = s.k * xi
                }
                u![b] = 0.5 * s.k * sum
            }
            return 0
        },
        atom: nil,
        initial_positions: nil,
        bonds: nil))
    return t
}()

/// The one exported symbol (must be public, or dlsym cannot find it).
@_cdecl("ensemble_plugin_entry")
public func ensemblePluginEntry() -> UnsafePointer<ensemble_plugin> { UnsafePointer(table) }
