import Foundation
import PluginHost
import Sampling
import TestSupport
import XCTest

/// The replica-exchange ladder: its size from the degrees of freedom, its adaptation during
/// burn-in, and the exchange check of the convergence verdict.
final class TemperatureLadderTests: XCTestCase {
    static var harmonic: Plugin?

    func harmonicSystem(_ parameters: String) throws -> EnergySystem {
        if Self.harmonic == nil { Self.harmonic = try PluginLoader.load(path: try buildHarmonicPlugin().path) }
        return try Self.harmonic!.makeSystem(parameters: parameters)
    }

    /// The default replica count grows with the molecule (like √(3N)) and stays 4 for alanine
    /// dipeptide (22 atoms, 12 X–H constraints), the measured default.
    func testDefaultReplicaCountGrowsWithTheParticleCount() {
        func replicas(atoms: Int, hydrogens: Int) -> Int {
            TemperatureLadder.replicas(degreesOfFreedom: TemperatureLadder.degreesOfFreedom(atoms: atoms, constraints: hydrogens),
                                       maxTemperature: 2, minimum: 4)
        }
        XCTAssertEqual(replicas(atoms: 22, hydrogens: 12), 4)
        XCTAssertEqual(replicas(atoms: 22, hydrogens: 0), 4)
        XCTAssertEqual(replicas(atoms: 152, hydrogens: 77), 8)  // ACE-(ALA)14-NME
        var last = 0
        for atoms in stride(from: 10, through: 5000, by: 10) {
            let r = replicas(atoms: atoms, hydrogens: atoms / 2)
            XCTAssertGreaterThanOrEqual(r, last, "\(atoms) atoms")
            last = r
        }
        XCTAssertGreaterThan(replicas(atoms: 2603, hydrogens: 1300), 25)
        // Every pair of the sized geometric ladder is predicted at ≥ 0.3 on a harmonic system.
        for d in [10, 100, 1000, 10000] {
            let r = TemperatureLadder.replicas(degreesOfFreedom: d, maxTemperature: 2)
            let g = log(2.0) / Double(r - 1)
            XCTAssertGreaterThanOrEqual(TemperatureLadder.acceptance(mu: Double(d) / 2 * g * g), 0.3, "d = \(d)")
            let tighter = log(2.0) / Double(r - 2)
            if r > 2 { XCTAssertLessThan(TemperatureLadder.acceptance(mu: Double(d) / 2 * tighter * tighter), 0.3, "d = \(d)") }
        }
    }

    /// With a heat capacity that grows steeply with T (ū = a·T + b·T³, C = a + 3bT²), the
    /// geometric ladder starves its hot pairs; rounds of adaptation on the exact mean energies
    /// equalise the predicted acceptance of every pair, ends fixed.
    func testAdaptationEqualisesAcceptanceWithAVaryingHeatCapacity() throws {
        let a = 10.0, b = 4.0
        func meanEnergy(_ beta: Double) -> Double { a / beta + b / (beta * beta * beta) }
        let start = MCMCSettings.ladder(replicas: 6, maxTemperature: 3)
        var adaptation = try XCTUnwrap(LadderAdaptation(betas: start, burnInSteps: 4000))
        func predicted(_ betas: [Double]) -> [Double] {
            TemperatureLadder.mu(betas: betas, meanEnergies: betas.map(meanEnergy)).map(TemperatureLadder.acceptance(mu:))
        }
        let before = predicted(start)
        XCTAssertLessThan(before.last!, 0.2)
        XCTAssertGreaterThan(before.first! - before.last!, 0.2, "\(before)")
        for _ in 0..<adaptation.rounds {
            let betas = adaptation.betas
            _ = adaptation.endRound(total: betas.map { meanEnergy($0) * 100 } + betas.map { _ in 100 })
        }
        let after = predicted(adaptation.betas)
        XCTAssertEqual(adaptation.betas.first!, 1)
        XCTAssertEqual(adaptation.betas.last!, 1.0 / 3, accuracy: 1e-12)
        XCTAssertLessThan(after.max()! - after.min()!, 0.02, "\(after)")
        XCTAssertGreaterThan(after.min()!, before.min()!)
        for m in 1..<adaptation.betas.count { XCTAssertLessThan(adaptation.betas[m], adaptation.betas[m - 1]) }
    }

    /// A ladder whose every pair is predicted at ≥ 0.2 is left alone.
    func testAdaptationLeavesAGoodLadderAlone() throws {
        let betas = MCMCSettings.ladder(replicas: 4, maxTemperature: 2)
        var adaptation = try XCTUnwrap(LadderAdaptation(betas: betas, burnInSteps: 4000))
        // Harmonic, d = 48 (alanine dipeptide's): 0.42 per pair.
        XCTAssertNil(adaptation.endRound(total: betas.map { 24 / $0 * 100 } + betas.map { _ in 100 }))
        XCTAssertEqual(adaptation.betas, betas)
        XCTAssertEqual(adaptation.predicted.min()!, 0.42, accuracy: 0.01)
    }

    /// Replica-exchange Langevin dynamics on a harmonic system of known energy variance
    /// (d = 192, C = 96): the geometric 8-level ladder to 4 T is predicted at erfc(ln 4/7·√24) =
    /// 0.17 per pair, so burn-in adapts it; a harmonic system's optimum is geometric, so the
    /// adapted ladder stays near it and every pair accepts ≈ 0.17 in production.
    func testAdaptedLadderOfAHarmonicSystemAcceptsEquallyAsPredicted() throws {
        let system = try harmonicSystem("k=2 temperature=0.5 particles=64 dimension=3")
        var settings = MCMCSettings()
        settings.chains = 4
        settings.replicas = 8
        settings.maxTemperature = 4
        settings.exchangeEvery = 10
        settings.burnIn = 8000
        settings.thin = 100
        settings.samples = 4 * 200
        var dynamics = DynamicsSettings()
        dynamics.timeStep = 0.01
        dynamics.friction = 10
        let kernel = try LangevinDynamicsKernel(system: system, topology: MolecularTopology(
            masses: [Double](repeating: 1, count: 64), temperature: 300), settings: dynamics)
        var runner = ChainRunner(settings: settings)
        runner.adaptsLadder = true
        let summary = try runner.run(kernel: kernel, start: [Double](repeating: 0, count: 192), record: { _, _, _ in })
        let gap = log(4.0) / 7, predicted = erfc(gap * 96.0.squareRoot() / 2)
        XCTAssertEqual(predicted, 0.17, accuracy: 0.01)
        XCTAssertNotEqual(summary.betas, settings.betas, "the ladder was not adapted")
        XCTAssertEqual(summary.betas.first!, 1)
        XCTAssertEqual(summary.betas.last!, 0.25, accuracy: 1e-12)
        for m in 1..<8 {
            XCTAssertEqual(log(summary.betas[m - 1] / summary.betas[m]), gap, accuracy: 0.15 * gap, "\(summary.betas)")
        }
        for rate in summary.exchangeAcceptance { XCTAssertEqual(rate, predicted, accuracy: 0.05, "\(summary.exchangeAcceptance)") }
    }

    /// Where every pair accepts enough the adaptation only measures: the run is the one without it.
    func testAdaptationOfAGoodLadderChangesNothing() throws {
        let system = try harmonicSystem("k=2 temperature=0.5 particles=8 dimension=3")
        var settings = MCMCSettings()
        settings.chains = 2
        settings.replicas = 4
        settings.maxTemperature = 2
        settings.burnIn = 2000
        settings.thin = 50
        settings.samples = 40
        var dynamics = DynamicsSettings()
        dynamics.timeStep = 0.01
        let kernel = try LangevinDynamicsKernel(system: system, topology: MolecularTopology(
            masses: [Double](repeating: 1, count: 8), temperature: 300), settings: dynamics)
        func run(adapt: Bool) throws -> ([Double], MCMCSummary) {
            var runner = ChainRunner(settings: settings)
            runner.adaptsLadder = adapt
            var frames: [Double] = []
            let summary = try runner.run(kernel: kernel, start: [Double](repeating: 0, count: 24),
                                         record: { x, _, _ in frames += x })
            return (frames, summary)
        }
        let (plain, plainSummary) = try run(adapt: false), (adapted, adaptedSummary) = try run(adapt: true)
        XCTAssertEqual(adaptedSummary.betas, settings.betas)
        XCTAssertEqual(plainSummary.betas, settings.betas)
        XCTAssertEqual(plain, adapted)
        XCTAssertEqual(plainSummary.exchangeAcceptance, adaptedSummary.exchangeAcceptance)
    }

    func testExchangeVerdictNamesTheStarvedPair() {
        XCTAssertNil(TemperatureLadder.exchangeVerdict([0.3, 0.25, 0.06]))
        XCTAssertNil(TemperatureLadder.exchangeVerdict([]))
        let verdict = TemperatureLadder.exchangeVerdict([0.3, 0.02, 0.4]) ?? ""
        XCTAssert(verdict.hasPrefix("NOT CONVERGED (replica exchange): replica exchange 1↔2 accepts 0.020 < 0.05"), verdict)
        XCTAssert(verdict.contains("more --replicas"), verdict)
        XCTAssertEqual(TemperatureLadder.exchangeProblems([0.01, 0.5, 0.04]).count, 2)
    }
}
