import Foundation
import PluginHost
import Sampling
import TestSupport
import XCTest

/// Langevin dynamics (BAOAB + RATTLE) and its Metropolized variant (GHMC): energy conservation
/// without friction, constraints, the thermostat's temperature, exact invariance on Gaussians.
final class MolecularDynamicsTests: XCTestCase {
    static var harmonic: Plugin?
    static var alanine: Plugin?

    func harmonicSystem(_ parameters: String) throws -> EnergySystem {
        if Self.harmonic == nil { Self.harmonic = try PluginLoader.load(path: try buildHarmonicPlugin().path) }
        return try Self.harmonic!.makeSystem(parameters: parameters)
    }

    /// Alanine dipeptide, ff96 + OBC1 at 300 K, with its start structure and X–H constraints.
    func alanine(constraints: Bool = true) throws -> (EnergySystem, MolecularTopology, [Double]) {
        try requireBuilt(TestPaths.plugin("Alanine"))
        if Self.alanine == nil { Self.alanine = try PluginLoader.load(path: TestPaths.plugin("Alanine").path) }
        let system = try Self.alanine!.makeSystem(parameters: "")
        system.threads = 1
        let atoms = try XCTUnwrap(system.atoms()), start = try XCTUnwrap(system.initialPositions())
        let bonds = MolecularTopology.hydrogenBonds(elements: atoms.map(\.element), positions: start)
        return (system, MolecularTopology(masses: atoms.map(\.mass), temperature: 300, constraints: constraints ? bonds : []), start)
    }

    func testHydrogenBondsOfAlanineAreTheTwelveXHBonds() throws {
        let (_, topology, _) = try alanine()
        XCTAssertEqual(topology.constraints.count, 12)  // OpenMM's constraints=HBonds on this prmtop: 12
        for c in topology.constraints { XCTAssertTrue([1.09, 1.01].contains { abs(c.length - $0) < 1e-5 }, "\(c)") }
        let masses = MolecularTopology.repartition(topology.masses, bonds: topology.constraints, hydrogenMass: 3)
        assertClose(masses.reduce(0, +), topology.masses.reduce(0, +), relative: 1e-12)
        XCTAssertEqual(masses.filter { $0 == 3 }.count, 12)
    }

    /// Velocity Verlet with RATTLE (friction 0), 2 fs, 8 walkers × 50 ps from a 300 K start: the
    /// mean total energy drifts by less than 3 kT per ns (least-squares slope of H(t); measured
    /// −1.2 kT/ns, within ~2 fit errors of 0 over 50 ps) and fluctuates by less than 0.1 kT rms
    /// (measured 0.05 kT); a wrong force or a missing half kick drifts by thousands of kT/ns.
    /// The constraints hold to 1e-10 relative.
    func testNVEWithConstraintsConservesEnergyOnAlanine() throws {
        let (system, topology, start) = try alanine()
        let kernel = try LangevinDynamicsKernel(system: system, topology: topology, timeStep: 0.002, friction: 0)
        var rng = SeededGenerator(seed: 3)
        let walkers = 8
        var state = try kernel.initialize(Array([[Double]](repeating: start, count: walkers).joined()),
                                          temperatureScales: Array(repeating: 1, count: walkers), rng: &rng)
        var times: [Double] = [], energies: [Double] = []
        for step in 1...25_000 {
            try kernel.verlet(&state, steps: 1)
            if step % 10 == 0 {
                times.append(Double(step) * 0.002)
                energies.append((0..<walkers).map { kernel.totalEnergy(state, walker: $0) }.reduce(0, +) / Double(walkers) / topology.kT)
            }
        }
        let (slope, residual) = linearFit(times, energies)
        let driftPerNs = slope * 1000
        print(String(format: "NVE alanine (OBC1, 2 fs, RATTLE on 12 X–H): drift %.4f kT/ns, rms fluctuation %.4f kT over 50 ps, 8 walkers",
                     driftPerNs, residual))
        XCTAssertLessThan(abs(driftPerNs), 3)
        XCTAssertLessThan(residual, 0.1)
        XCTAssertLessThan(maximumConstraintError(state.positions, topology), 1e-10)
    }

    /// BAOAB at γ = 5/ps and Δt = 0.5 fs: the kinetic temperature 2⟨K⟩/(N_dof k_B) is 300 K within
    /// 2 % (at 2 fs the end-of-step velocities of BAOAB run ~3 % cold, an O(Δt²) effect on momenta
    /// only: its positions are the accurate part).
    func testThermostatHoldsTheTemperatureOfAlanine() throws {
        let (system, topology, start) = try alanine()
        let kernel = try LangevinDynamicsKernel(system: system, topology: topology, timeStep: 0.0005, friction: 5)
        var rng = SeededGenerator(seed: 4)
        var state = try kernel.initialize(Array([[Double]](repeating: start, count: 8).joined()),
                                          temperatureScales: Array(repeating: 1, count: 8), rng: &rng)
        var kinetic: [Double] = []
        for step in 1...3000 {
            try kernel.step(&state, rng: &rng)
            if step > 500 && step % 5 == 0 {
                kinetic.append((0..<8).map { kernel.kineticEnergy(state, walker: $0) }.reduce(0, +) / 8)
            }
        }
        let temperature = 2 * kinetic.reduce(0, +) / Double(kinetic.count) / Double(kernel.degreesOfFreedom) / MolecularTopology.boltzmann
        print(String(format: "kinetic temperature of alanine (BAOAB, 2 fs, γ 5/ps): %.1f K", temperature))
        XCTAssertEqual(temperature, 300, accuracy: 6)
        XCTAssertLessThan(maximumConstraintError(state.positions, topology), 1e-10)
    }

    /// GHMC on a Gaussian with unequal masses and a step (ωΔt up to 1) at which unadjusted BAOAB is
    /// visibly biased: ⟨x²⟩ = kT/k and ⟨x⁴⟩ = 3(kT/k)² within 4 standard errors.
    func testGHMCIsExactOnAHarmonicMolecule() throws {
        let system = try harmonicSystem("k=2 temperature=0.5 particles=4")
        let topology = MolecularTopology(masses: [1, 2, 3, 4], temperature: 1 / MolecularTopology.boltzmann)
        let kernel = try LangevinDynamicsKernel(system: system, topology: topology, timeStep: 0.5, friction: 0.5)
        let (m2, e2, m4, e4, acceptance) = try moments(kernel, walkers: 16, moves: 6000) { try kernel.trajectory(&$0, steps: 5, rng: &$1) }
        print(String(format: "GHMC harmonic: ⟨x²⟩ %.4f ± %.4f (0.25), ⟨x⁴⟩ %.4f ± %.4f (0.1875), acceptance %.3f", m2, e2, m4, e4, acceptance))
        XCTAssertLessThan(abs(m2 - 0.25), 4 * e2)
        XCTAssertLessThan(abs(m4 - 0.1875), 4 * e4)
        XCTAssertLessThan(e2, 0.005)
        XCTAssert(acceptance > 0.3 && acceptance < 0.99, "acceptance \(acceptance)")
    }

    /// Two equal masses in the harmonic well joined by a rigid bond of length d: the centre is
    /// Gaussian with variance kT/(2k) per coordinate, the bond direction uniform, so
    /// ⟨|x₁|²⟩ = 3kT/(2k) + d²/4. GHMC with RATTLE reproduces it (measured 0.9373 ± 0.0008 against
    /// 0.9375); the bond holds.
    func testGHMCWithARigidBondMatchesTheAnalyticMoment() throws {
        let system = try harmonicSystem("k=2 temperature=0.5 particles=2")
        let d = 1.5
        let topology = MolecularTopology(masses: [2, 2], temperature: 1 / MolecularTopology.boltzmann,
                                         constraints: [BondConstraint(0, 1, length: d)])
        let kernel = try LangevinDynamicsKernel(system: system, topology: topology, timeStep: 0.2, friction: 1)
        var rng = SeededGenerator(seed: 19)
        let walkers = 16
        var state = try kernel.initialize((0..<(walkers * 6)).map { _ in 0.3 * rng.normal() }, temperatureScales: Array(repeating: 1, count: walkers), rng: &rng)
        var series: [Double] = []
        for move in 0..<40000 {
            try kernel.trajectory(&state, steps: 8, rng: &rng)
            guard move >= 200 else { continue }
            var sum = 0.0
            for w in 0..<walkers { for k in 0..<3 { sum += state.positions[6 * w + k] * state.positions[6 * w + k] } }
            series.append(sum / Double(walkers))
        }
        let (mean, error) = Statistics.meanAndError(series)
        let expected = 3 * 0.25 / 2 + d * d / 4
        print(String(format: "GHMC rigid dimer: ⟨|x₁|²⟩ %.4f ± %.4f (exact %.4f)", mean, error, expected))
        XCTAssertLessThan(abs(mean - expected), 4 * error)
        XCTAssertLessThan(error, 0.002)
        XCTAssertLessThan(maximumConstraintError(state.positions, topology), 1e-10)
    }

    /// Replica exchange over dynamics records the T walker of every chain, with time in ps, and its
    /// exchanges are accepted at a rate between 0 and 1.
    func testReplicaExchangeOverDynamicsRecordsTimeInPicoseconds() throws {
        let system = try harmonicSystem("k=2 temperature=0.5 particles=3")
        var settings = MCMCSettings()
        settings.chains = 2
        settings.replicas = 3
        settings.maxTemperature = 2
        settings.exchangeEvery = 5
        settings.burnIn = 100
        settings.thin = 20
        settings.samples = 10
        var dynamics = DynamicsSettings()
        dynamics.timeStep = 0.05
        var times: [Double] = []
        let kernel = try LangevinDynamicsKernel(system: system, topology: MolecularTopology(masses: [1, 1, 1], temperature: 300),
                                                settings: dynamics)
        let summary = try ChainRunner(settings: settings).run(
            kernel: kernel, start: [Double](repeating: 0, count: 9),
            record: { x, u, tick in
                XCTAssertEqual(x.count, 2 * 9)
                XCTAssertEqual(u.count, 2)
                times.append(Double(tick) * dynamics.timeStep)
            })
        XCTAssertEqual(summary.frames, 10)
        XCTAssertEqual(times.count, 5)
        for (k, t) in times.enumerated() { XCTAssertEqual(t, Double(100 + 20 * (k + 1)) * 0.05, accuracy: 1e-9) }
        XCTAssertEqual(summary.exchangeAcceptance.count, 2)
        XCTAssert(summary.exchangeAcceptance.allSatisfy { $0 > 0 && $0 < 1 }, "\(summary.exchangeAcceptance)")
    }

    // MARK: - Helpers

    /// ⟨x²⟩ and ⟨x⁴⟩ per coordinate with batch-means errors, and the acceptance, after `moves` moves.
    func moments(_ kernel: LangevinDynamicsKernel, walkers: Int, moves: Int,
                 move: (inout LangevinDynamicsKernel.State, inout SeededGenerator) throws -> [Bool])
        throws -> (Double, Double, Double, Double, Double) {
        var rng = SeededGenerator(seed: 7)
        let n = kernel.system.coordinateCount
        var state = try kernel.initialize((0..<(walkers * n)).map { _ in 0.5 * rng.normal() },
                                          temperatureScales: Array(repeating: 1, count: walkers), rng: &rng)
        var second: [Double] = [], fourth: [Double] = [], accepted = 0, proposed = 0
        for t in 0..<moves {
            let result = try move(&state, &rng)
            guard t >= moves / 10 else { continue }
            accepted += result.filter { $0 }.count
            proposed += result.count
            second.append(state.positions.reduce(0) { $0 + $1 * $1 } / Double(state.positions.count))
            fourth.append(state.positions.reduce(0) { $0 + $1 * $1 * $1 * $1 } / Double(state.positions.count))
        }
        let (m2, e2) = Statistics.meanAndError(second), (m4, e4) = Statistics.meanAndError(fourth)
        return (m2, e2, m4, e4, Double(accepted) / Double(proposed))
    }

    /// Largest |r_ij − d| / d over the constraints and walkers.
    func maximumConstraintError(_ x: [Double], _ topology: MolecularTopology) -> Double {
        let stride = 3 * topology.masses.count
        var worst = 0.0
        for w in 0..<(x.count / stride) {
            for c in topology.constraints {
                var s = 0.0
                for k in 0..<3 { let d = x[w * stride + 3 * c.i + k] - x[w * stride + 3 * c.j + k]; s += d * d }
                worst = max(worst, abs(s.squareRoot() - c.length) / c.length)
            }
        }
        return worst
    }

    /// Least-squares slope of y(x) and the rms residual about the line.
    func linearFit(_ x: [Double], _ y: [Double]) -> (slope: Double, residual: Double) {
        let n = Double(x.count), mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
        let sxy = zip(x, y).reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) }, sxx = x.reduce(0) { $0 + ($1 - mx) * ($1 - mx) }
        let slope = sxy / sxx
        let residual = (zip(x, y).reduce(0) { $0 + pow($1.1 - my - slope * ($1.0 - mx), 2) } / n).squareRoot()
        return (slope, residual)
    }
}
