import Foundation
import PluginHost
import Sampling
import TestSupport
import XCTest

/// The probability-flow ODE sampler: its Jacobians are the network's derivatives, and its
/// log-density is exact, so importance weights recover an analytic log Z.
final class ProbabilityFlowTests: XCTestCase {
    static var harmonic: Plugin?

    func harmonicSystem(_ parameters: String) throws -> EnergySystem {
        if Self.harmonic == nil { Self.harmonic = try PluginLoader.load(path: try buildHarmonicPlugin().path) }
        return try Self.harmonic!.makeSystem(parameters: parameters)
    }

    func model(seed: UInt64 = 4) throws -> DiffusionModel {
        var c = DiffusionConfiguration(method: .dsm)
        c.hidden = 16
        c.layers = 2
        c.timeSteps = 40
        c.sigmaMin = 1e-3
        c.sigmaMax = 2
        c.seed = seed
        c.data = MCMCSettings()
        return try DiffusionModel(configuration: c, space: DiffusionSpace(particles: 3, dimension: 2, kind: .free))
    }

    /// J from D backward passes equals central finite differences of the field.
    func testJacobianMatchesFiniteDifferences() throws {
        let m = try model()
        var rng = SeededGenerator(seed: 2)
        let x = (0..<12).map { _ in rng.normal() }  // two configurations
        let times = [0.3, 0.8]
        let (_, jacobian) = m.fieldJacobian(positions: x, times: times)
        let h = 1e-6
        for b in 0..<2 { for j in 0..<6 {
            var plus = x, minus = x
            plus[b * 6 + j] += h
            minus[b * 6 + j] -= h
            let fp = m.networkField(positions: plus, times: times), fm = m.networkField(positions: minus, times: times)
            for i in 0..<6 {
                let numeric = (fp[b * 6 + i] - fm[b * 6 + i]) / (2 * h)
                assertClose(jacobian[(b * 6 + i) * 6 + j], numeric, relative: 1e-5, absolute: 1e-7)
            }
        } }
    }

    func testLogDeterminantByLU() {
        var a = [2.0, 1, 0, 1, 3, 1, 0, 1, 4]  // det = 2(12 − 1) − 1(4 − 0) = 18
        XCTAssertEqual(DiffusionModel.logAbsDeterminant(&a, size: 3), log(18), accuracy: 1e-12)
        var b = [0.0, 2, 3, 0]  // needs a pivot; det = −6
        XCTAssertEqual(DiffusionModel.logAbsDeterminant(&b, size: 2), log(6), accuracy: 1e-12)
    }

    /// An untrained (random) network moves the samples and changes the density — the
    /// log-Jacobian terms are far from zero — yet log Ẑ = logmeanexp(−u − log q) recovers the
    /// analytic log Z of a harmonic target within its bootstrap error: log q is exact.
    func testImportanceWeightsRecoverAnalyticLogZ() throws {
        // u = k|x|²/2 with k = 1/3 on 6 free coordinates: log Z = 3 log(2π/k).
        let system = try harmonicSystem("k=0.333333333333 temperature=1 particles=3 dimension=2")
        let m = try model()
        m.networkParameters = m.networkParameters.map { $0 * 3 }  // a field of order one
        var rng = SeededGenerator(seed: 9)
        let drawn = try m.generate(count: 3000, system: system, rng: &rng, probabilityFlow: true)
        var prior: [Double] = []
        var check = SeededGenerator(seed: 9)
        for _ in 0..<(3000 / 256 + 1) { prior += m.space.noise(batch: 256, rng: &check).map { $0 * 2 } }
        let moved = zip(drawn.samples, prior).map { abs($0 - $1) }.reduce(0, +) / Double(drawn.samples.count)
        let weights = ImportanceWeights(logWeights: drawn.logWeights)
        let logZ = 3 * log(2 * Double.pi / 0.333333333333)
        let spread = Statistics.meanAndDeviation(drawn.logWeights).deviation
        print("probability flow on a Gaussian: log Ẑ \(weights.logZ) ± \(weights.logZError()) (exact \(logZ)), ESS/N \(weights.effectiveSampleFraction), sd(log w) \(spread), mean |x_0 − x_K| \(moved)")
        XCTAssertGreaterThan(moved, 0.1, "the field should move the samples for this test to bite")
        XCTAssertGreaterThan(spread, 0.1)
        XCTAssertEqual(weights.logZ, logZ, accuracy: max(3 * weights.logZError(), 0.02))
    }

    /// Running the flow backwards (fixed-point inversion of every Euler step) from the flow's own
    /// draws gives back the log-density the forward pass reported: log q is a function of x
    /// alone, which independence Metropolis needs at a walker's current place.
    func testInverseFlowRecoversTheForwardDensity() throws {
        let system = try harmonicSystem("k=0.333333333333 temperature=1 particles=3 dimension=2")
        let m = try model()
        m.networkParameters = m.networkParameters.map { $0 * 3 }
        var rng = SeededGenerator(seed: 5)
        let drawn = try m.generate(count: 40, system: system, rng: &rng, probabilityFlow: true)
        let forward = zip(drawn.energies, drawn.logWeights).map { -$0 - $1 }
        let inverse = m.probabilityFlowLogDensity(drawn.samples)
        XCTAssertTrue(inverse.inverted.allSatisfy { $0 })
        let worst = zip(forward, inverse.logDensity).map { abs($0 - $1) }.max()!
        let spread = Statistics.meanAndDeviation(forward).deviation
        print("inverse flow: max |log q_forward − log q_inverse| = \(worst), sd(log q) = \(spread)")
        XCTAssertGreaterThan(spread, 0.5)
        XCTAssertLessThan(worst, 1e-7)
    }

    /// Independence Metropolis with an untrained flow as the proposal leaves the target
    /// invariant: walkers that start as exact draws of a Gaussian (variance 1 per coordinate)
    /// keep its moments after only global moves, although the proposals themselves are far
    /// from it (their mean |x|² differs by many standard errors), and a good share moves.
    func testIndependenceMovesKeepTheTargetInvariant() throws {
        let system = try harmonicSystem("k=1 temperature=1 particles=3 dimension=2")
        let m = try model()
        m.networkParameters = m.networkParameters.map { $0 * 3 }
        let kernel = MALAKernel(space: m.space, system: system)
        let global = IndependenceKernel(model: m, kernel: kernel)
        var rng = SeededGenerator(seed: 21)
        let walkers = 400
        var state = try kernel.initialize((0..<(walkers * 6)).map { _ in rng.normal() })
        var moved = 0
        for _ in 0..<3 { moved += try global.step(&state, stepSize: 0, rng: &rng) }
        let squares = (0..<walkers).map { b in (0..<6).reduce(0.0) { $0 + state.positions[b * 6 + $1] * state.positions[b * 6 + $1] } }
        let proposals = try m.generate(count: walkers, system: system, rng: &rng, probabilityFlow: true).samples
        let proposalSquares = (0..<walkers).map { b in (0..<6).reduce(0.0) { $0 + proposals[b * 6 + $1] * proposals[b * 6 + $1] } }
        let (mean, sd) = Statistics.meanAndDeviation(squares)
        let proposalMean = Statistics.meanAndDeviation(proposalSquares).mean
        let error = sd / Double(walkers).squareRoot()
        print("independence Metropolis: mean |x|² \(mean) ± \(error) (exact 6), proposals' \(proposalMean), acceptance \(Double(moved) / Double(3 * walkers))")
        XCTAssertGreaterThan(Double(moved) / Double(3 * walkers), 0.1, "the global move should move walkers for this test to bite")
        XCTAssertGreaterThan(abs(proposalMean - 6), 8 * error, "the proposal should differ from the target")
        XCTAssertEqual(mean, 6, accuracy: 4 * error)
        let first = (0..<walkers).map { state.positions[$0 * 6] }
        XCTAssertEqual(Statistics.meanAndDeviation(first).deviation, 1, accuracy: 0.12)
    }
}
