import Foundation
import PluginHost
import TestSupport
import XCTest

/// Periodic Lennard-Jones: minimum image, truncated-and-shifted cutoff, cell list.
final class PeriodicLennardJonesTests: XCTestCase {
    func plugin() throws -> Plugin {
        let path = TestPaths.plugin("LennardJones")
        try requireBuilt(path)
        return try PluginLoader.load(path: path.path)
    }

    /// Truncated-and-shifted pair energy, ε = σ = 1.
    func shifted(_ r: Double, cutoff: Double) -> Double {
        guard r < cutoff else { return 0 }
        func lj(_ r: Double) -> Double { 4 * (pow(r, -12) - pow(r, -6)) }
        return lj(r) - lj(cutoff)
    }

    func testFCCLatticeEnergyEqualsTheLatticeSum() throws {
        let system = try plugin().makeSystem(parameters: "preset=fcc256")
        XCTAssertEqual(system.particleCount, 256)
        let edge = try XCTUnwrap(system.box)[0]
        XCTAssertEqual(edge, pow(256 / 1.28, 1.0 / 3), accuracy: 1e-12)
        let x = try XCTUnwrap(system.initialPositions())
        // Lattice sum over the infinite FCC lattice (independent of minimum image):
        // sites a/2·(i, j, k) with i + j + k even; per-atom energy ½ Σ_{R≠0} φ(|R|).
        let a = edge / 4, cutoff = 2.7
        var perAtom = 0.0
        let m = Int(2 * cutoff / a) + 2
        for i in -m...m {
            for j in -m...m {
                for k in -m...m where (i + j + k) % 2 == 0 && (i, j, k) != (0, 0, 0) {
                    let r = a / 2 * Double(i * i + j * j + k * k).squareRoot()
                    perAtom += 0.5 * shifted(r, cutoff: cutoff)
                }
            }
        }
        // u = U/kT with kT = 2 for the preset.
        assertClose(try system.energy(x), 256 * perAtom / 2, relative: 1e-12)
        // A perfect lattice is a stationary point: all forces vanish.
        let g = try system.evaluate(x, batch: 1).gradients
        XCTAssertLessThan(g.map(abs).max()!, 1e-10)
    }

    /// Random configuration in the box with particles close to every face.
    func configuration(particles n: Int, edge: Double, seed: UInt64) -> [Double] {
        var rng = TestRandom(seed: seed)
        let side = Int(ceil(pow(Double(n), 1.0 / 3)))
        return (0..<n).flatMap { i -> [Double] in
            var index = i
            return (0..<3).map { _ in
                let c = Double(index % side); index /= side
                // lattice site shifted by half a spacing so sites straddle the faces
                var v = (c + 0.5 + 0.3 * (rng.uniform() - 0.5)) * edge / Double(side) - 0.45 * edge / Double(side)
                if v < 0 { v += edge }
                return v
            }
        }
    }

    func bruteForce(_ x: [Double], edge: Double, cutoff: Double, kT: Double) -> Double {
        let n = x.count / 3
        var total = 0.0
        for i in 0..<n {
            for j in (i + 1)..<n {
                var r2 = 0.0
                for k in 0..<3 {
                    var delta = x[3 * i + k] - x[3 * j + k]
                    delta -= edge * (delta / edge).rounded()
                    r2 += delta * delta
                }
                total += shifted(r2.squareRoot(), cutoff: cutoff)
            }
        }
        return total / kT
    }

    func testCellListAndAllPairsAgreeWithBruteForceAndFiniteDifferences() throws {
        // edge 6.5, cutoff 2.0 → 3 cells per edge (cell list); edge 3.9, cutoff 1.9 → all pairs.
        for (n, edge, cutoff) in [(64, 6.5, 2.0), (27, 3.9, 1.9)] {
            let system = try plugin().makeSystem(parameters: "particles=\(n) box=\(edge) cutoff=\(cutoff) temperature=1.5")
            let x = configuration(particles: n, edge: edge, seed: UInt64(n))
            assertClose(try system.energy(x), bruteForce(x, edge: edge, cutoff: cutoff, kT: 1.5), relative: 1e-12)
            let (_, g) = try system.evaluate(x, batch: 1)
            let fd = try finiteDifferenceGradient(x, step: 1e-6) { try system.energy($0) }
            let norm = g.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for i in x.indices { assertClose(g[i], fd[i], absolute: 1e-6 * norm, "n=\(n) coordinate \(i)") }
        }
    }

    func testEnergyIsInvariantUnderAnyTranslationWithWrapping() throws {
        let edge = 6.5
        let system = try plugin().makeSystem(parameters: "particles=64 box=\(edge) cutoff=2.0")
        let x = configuration(particles: 64, edge: edge, seed: 3)
        let u = try system.energy(x)
        var rng = TestRandom(seed: 4)
        for _ in 0..<5 {
            let c = (0..<3).map { _ in 20 * (rng.uniform() - 0.5) }
            let moved = x.enumerated().map { i, v -> Double in
                let w = v + c[i % 3]
                return w - edge * (w / edge).rounded(.down)
            }
            assertClose(try system.energy(moved), u, relative: 1e-11)
        }
    }

    func testCutoffBeyondHalfTheBoxIsAClearError() throws {
        XCTAssertThrowsError(try plugin().makeSystem(parameters: "particles=32 box=5 cutoff=2.6")) { error in
            XCTAssertTrue("\(error)".contains("must be below half the box edge"), "\(error)")
        }
        XCTAssertThrowsError(try plugin().makeSystem(parameters: "particles=32 cutoff=2")) { error in
            XCTAssertTrue("\(error)".contains("needs a periodic system"), "\(error)")
        }
        XCTAssertThrowsError(try plugin().makeSystem(parameters: "particles=32 box=5 density=1")) { error in
            XCTAssertTrue("\(error)".contains("either 'box' or 'density'"), "\(error)")
        }
    }

    func testDensityAndRectangularBoxes() throws {
        let byDensity = try plugin().makeSystem(parameters: "particles=108 density=0.8 cutoff=2.5")
        XCTAssertEqual(try XCTUnwrap(byDensity.box)[0], pow(108 / 0.8, 1.0 / 3), accuracy: 1e-12)
        XCTAssertFalse(try byDensity.isTranslationInvariant(at: try XCTUnwrap(byDensity.initialPositions())),
                       "periodic systems are not projected: translations are a symmetry modulo the box")
        let rectangular = try plugin().makeSystem(parameters: "particles=20 dimension=2 box=6,8 cutoff=2.5")
        XCTAssertEqual(rectangular.box, [6, 8])
        let x = try XCTUnwrap(rectangular.initialPositions())
        XCTAssertTrue(try rectangular.energy(x).isFinite)
    }
}
