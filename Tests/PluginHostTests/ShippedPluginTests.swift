import Foundation
import PluginHost
import Sampling
import TestSupport
import XCTest

/// The shipped lennard-jones and double-well plugins, loaded through dlopen as a user would.
final class ShippedPluginTests: XCTestCase {
    func load(_ product: String) throws -> Plugin {
        let path = TestPaths.plugin(product)
        try requireBuilt(path)
        return try PluginLoader.load(path: path.path)
    }

    func randomCluster(particles: Int, dimension: Int, spread: Double, seed: UInt64) -> [Double] {
        // Jittered lattice: random but with no pair closer than ~0.8 spacing.
        var rng = TestRandom(seed: seed)
        let side = Int(ceil(pow(Double(particles), 1 / Double(dimension))))
        return (0..<particles).flatMap { i -> [Double] in
            var index = i
            return (0..<dimension).map { _ in
                let c = Double(index % side)
                index /= side
                return spread * (c + 0.2 * (rng.uniform() - 0.5))
            }
        }
    }

    /// Every coordinate of the analytic gradient against central differences.
    func checkGradient(_ system: EnergySystem, _ x: [Double], tolerance: Double = 1e-6,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let (_, g) = try system.evaluate(x, batch: 1)
        let fd = try finiteDifferenceGradient(x, step: 1e-5) { try system.energy($0) }
        let norm = g.reduce(0) { $0 + $1 * $1 }.squareRoot()
        for i in x.indices {
            assertClose(g[i], fd[i], absolute: tolerance * max(norm, 1), "coordinate \(i)", file: file, line: line)
        }
    }

    func testLennardJonesPairEnergyIsTheTextbookFormula() throws {
        let system = try load("LennardJones").makeSystem(parameters: "particles=2 epsilon=1.5 sigma=0.9 oscillator=0")
        for r in [0.95, 1.0, 1.2, 2.5] {
            let u = try system.energy([0, 0, 0, r, 0, 0])
            let s6 = pow(0.9 / r, 6)
            assertClose(u, 4 * 1.5 * (s6 * s6 - s6), relative: 1e-13)
        }
        // minimum at r = 2^(1/6) σ with u = −ε
        assertClose(try system.energy([0, 0, 0, pow(2, 1.0 / 6) * 0.9, 0, 0]), -1.5, relative: 1e-13)
    }

    func testLennardJonesGradientsMatchFiniteDifferences() throws {
        let plugin = try load("LennardJones")
        for (parameters, n, d) in [("preset=lj13", 13, 3), ("particles=7 dimension=2 oscillator=0.7 temperature=2", 7, 2),
                                   ("preset=lj55", 55, 3)] {
            let system = try plugin.makeSystem(parameters: parameters)
            try checkGradient(system, randomCluster(particles: n, dimension: d, spread: 1.1, seed: 7))
        }
    }

    func testDoubleWellEnergyAndGradients() throws {
        let plugin = try load("DoubleWell")
        let system = try plugin.makeSystem()
        XCTAssertEqual(system.particleCount, 4)
        XCTAssertEqual(system.dimension, 2)
        // Two particles at distance d: u = 0.9(d−4)⁴ − 4(d−4)² per pair; use a 4-particle line.
        let x = [0.0, 0, 3, 0, 7.5, 0, 12, 1]
        var expected = 0.0
        for i in 0..<4 {
            for j in (i + 1)..<4 {
                let d = hypot(x[2 * i] - x[2 * j], x[2 * i + 1] - x[2 * j + 1]) - 4
                expected += 0.9 * pow(d, 4) - 4 * d * d
            }
        }
        assertClose(try system.energy(x), expected, relative: 1e-13)
        try checkGradient(system, x)
        let other = try plugin.makeSystem(parameters: "particles=5 dimension=3 a=0.3 b=-2 c=0.5 d0=2 temperature=1.7")
        try checkGradient(other, randomCluster(particles: 5, dimension: 3, spread: 1.5, seed: 3))
    }

    /// Icosahedral (Mackay) starts: 13 = centre + 12 vertices; 55 adds the 42-atom second shell.
    func mackay(shells: Int, radius: Double) -> [Double] {
        let phi = (1 + 5.0.squareRoot()) / 2
        var vertices: [[Double]] = []
        for a in [-1.0, 1] {
            for b in [-phi, phi] { vertices += [[0, a, b], [a, b, 0], [b, 0, a]] }
        }
        let norm = (1 + phi * phi).squareRoot()
        vertices = vertices.map { $0.map { $0 / norm } }
        var points: [[Double]] = [[0, 0, 0]] + vertices.map { $0.map { $0 * radius } }
        if shells >= 2 {
            let outer = vertices.map { $0.map { $0 * 2 * radius } }
            points += outer
            let edge = (0..<12).compactMap { j in j == 0 ? nil : dist(outer[0], outer[j]) }.min()!
            for i in 0..<12 {
                for j in (i + 1)..<12 where abs(dist(outer[i], outer[j]) - edge) < 1e-9 {
                    points.append(zip(outer[i], outer[j]).map { ($0 + $1) / 2 })
                }
            }
        }
        return points.flatMap { $0 }
    }

    func dist(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot() }

    func testLennardJonesGlobalMinimaMatchTheCambridgeClusterDatabase() throws {
        let plugin = try load("LennardJones")
        for (n, shells, expected) in [(13, 1, -44.326801), (55, 2, -279.248470)] {
            let system = try plugin.makeSystem(parameters: "particles=\(n) oscillator=0")
            let start = mackay(shells: shells, radius: 1.08)
            XCTAssertEqual(start.count, 3 * n)
            let result = try LBFGSMinimizer(gradientTolerance: 1e-9).minimize(start) { x in
                let (u, g) = try system.evaluate(x, batch: 1)
                return (u[0], g)
            }
            assertClose(result.value, expected, absolute: 5e-7, "LJ-\(n) after \(result.iterations) iterations")
        }
    }

    func testPresetsReproduceTheBenchmarkConvention() throws {
        // iDEM/DEM: Σ_{i≠j} (r⁻¹² − 2r⁻⁶) + ½Σ|x_i − x̄|², computed independently here.
        let system = try load("LennardJones").makeSystem(parameters: "preset=lj13")
        let x = randomCluster(particles: 13, dimension: 3, spread: 1.05, seed: 11)
        var expected = 0.0
        var centre = [0.0, 0, 0]
        for i in 0..<13 { for k in 0..<3 { centre[k] += x[3 * i + k] / 13 } }
        for i in 0..<13 {
            for j in 0..<13 where i != j {
                let r = dist(Array(x[(3 * i)..<(3 * i + 3)]), Array(x[(3 * j)..<(3 * j + 3)]))
                expected += pow(r, -12) - 2 * pow(r, -6)
            }
            for k in 0..<3 { expected += 0.5 * pow(x[3 * i + k] - centre[k], 2) }
        }
        assertClose(try system.energy(x), expected, relative: 1e-12)
        XCTAssertTrue(try system.isTranslationInvariant(at: x))
    }

    /// Issue 23: the lj13/lj55 presets use the benchmark's r_m = 1, so one of their units is
    /// r_m = 2^(1/6)σ = 3.822 Å for argon, not σ = 3.405 Å. Whatever the parameters, the pair
    /// minimum lands at argon's r_m in the written Å (VMD draws the cluster at its real size).
    func testLengthUnitPutsThePairMinimumAtArgonsRm() throws {
        let plugin = try load("LennardJones")
        let argonRm = pow(2, 1.0 / 6) * 3.405  // 3.8220 Å
        // Two particles of the preset's pair potential (ε = 2, σ = 2^(−1/6)), and of the defaults (σ = 1).
        for (parameters, preset) in [("particles=2 epsilon=2 sigma=\(pow(2, -1.0 / 6)) oscillator=0", "preset=lj13"),
                                     ("particles=2 oscillator=0", "particles=13")] {
            let pair = try plugin.makeSystem(parameters: parameters)
            // Golden-section search of u(r) for the minimum.
            var (a, b) = (0.5, 2.5)
            let g = (5.0.squareRoot() - 1) / 2
            for _ in 0..<200 {
                let c = b - g * (b - a), d = a + g * (b - a)
                if try pair.energy([0, 0, 0, c, 0, 0]) < pair.energy([0, 0, 0, d, 0, 0]) { b = d } else { a = c }
            }
            let minimum = (a + b) / 2
            XCTAssertEqual(minimum * pair.lengthUnitAngstrom, argonRm, accuracy: 1e-6, parameters)
            let cluster = try plugin.makeSystem(parameters: preset)
            XCTAssertEqual(cluster.lengthUnitAngstrom, pair.lengthUnitAngstrom, accuracy: 1e-12, preset)
        }
        XCTAssertEqual(try plugin.makeSystem(parameters: "preset=lj13").lengthUnitAngstrom, 3.822, accuracy: 5e-4)
        XCTAssertEqual(try plugin.makeSystem(parameters: "preset=lj55").lengthUnitAngstrom, 3.822, accuracy: 5e-4)
        XCTAssertEqual(try plugin.makeSystem(parameters: "preset=fcc256").lengthUnitAngstrom, 3.405)
        XCTAssertEqual(try plugin.makeSystem(parameters: "preset=lj13 length_unit=2").lengthUnitAngstrom, 2)
    }

    /// Issue 23: preset=lj13 particles=20 silently sampled 20 atoms; a parameter that contradicts
    /// the preset is an error, one that repeats it is fine.
    func testPresetConflictsAreErrors() throws {
        let plugin = try load("LennardJones")
        for (parameters, expected) in [("preset=lj13 particles=20", "preset=lj13 sets particles=13; particles=20 contradicts it"),
                                       ("preset=lj55 epsilon=1", "preset=lj55 sets epsilon=2; epsilon=1 contradicts it"),
                                       ("preset=fcc256 density=1", "preset=fcc256 sets density=1.28; density=1 contradicts it")] {
            XCTAssertThrowsError(try plugin.makeSystem(parameters: parameters), parameters) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(parameters): \(error)")
            }
        }
        XCTAssertEqual(try plugin.makeSystem(parameters: "preset=lj13 particles=13").particleCount, 13)
        XCTAssertEqual(try plugin.makeSystem(parameters: "preset=lj13 temperature=2").particleCount, 13)
    }

    func testInitialPositionsAreOverlapFree() throws {
        for (product, parameters) in [("LennardJones", "preset=lj55"), ("LennardJones", "particles=30 dimension=2 oscillator=0"),
                                      ("DoubleWell", "")] {
            let system = try load(product).makeSystem(parameters: parameters)
            let x = try XCTUnwrap(system.initialPositions())
            let u = try system.energy(x)
            XCTAssertLessThan(u, 0, "\(product) \(parameters) start energy \(u)")
            XCTAssertEqual(system.atoms()?.count, system.particleCount)
        }
    }

    func testBadParametersAreClearErrors() throws {
        let plugin = try load("LennardJones")
        let cases: [(String, String)] = [
            ("particle=13", "unknown parameter 'particle' (valid: preset, particles,"),
            ("particles=0", "parameter 'particles' must be in 2..."),
            ("particles=-3", "parameter 'particles' must be in 2..."),
            ("sigma=abc", "parameter 'sigma': 'abc' is not a finite number"),
            ("epsilon=0", "parameter 'epsilon' must be > 0"),
            ("preset=lj38", "unknown preset 'lj38'"),
            ("sigma", "malformed parameter 'sigma'"),
            ("sigma=1 sigma=2", "given twice"),
        ]
        for (parameters, expected) in cases {
            XCTAssertThrowsError(try plugin.makeSystem(parameters: parameters), parameters) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(parameters): \(error)")
            }
        }
    }

    func testBatchesSplitAcrossThreadsGiveIdenticalResults() throws {
        let system = try load("LennardJones").makeSystem(parameters: "preset=lj13")
        var rng = TestRandom(seed: 5)
        let base = randomCluster(particles: 13, dimension: 3, spread: 1.1, seed: 1)
        let batch = 37
        let x = (0..<batch).flatMap { _ in base.map { $0 + 0.05 * rng.normal() } }
        system.threads = 1
        let one = try system.evaluate(x, batch: batch)
        system.threads = 2
        let two = try system.evaluate(x, batch: batch)
        XCTAssertEqual(one.energies, two.energies)
        XCTAssertEqual(one.gradients, two.gradients)
        XCTAssertEqual(system.energyEvaluations, 2 * batch)
        XCTAssertEqual(system.gradientEvaluations, 2 * batch)
        _ = try system.evaluate(x, batch: batch, withGradients: false)
        XCTAssertEqual(system.energyEvaluations, 3 * batch)
        XCTAssertEqual(system.gradientEvaluations, 2 * batch)
    }

    func testNonFiniteEnergyIsReportedNotPassedOn() throws {
        let system = try load("LennardJones").makeSystem(parameters: "particles=2 oscillator=0")
        XCTAssertThrowsError(try system.evaluate([0, 0, 0, 0, 0, 0], batch: 1)) { error in
            XCTAssertTrue("\(error)".contains("non-finite"), "\(error)")
        }
    }
}
