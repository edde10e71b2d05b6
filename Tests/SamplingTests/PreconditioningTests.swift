import Foundation
import PluginHost
import Sampling
import TestSupport
import XCTest

/// EDM preconditioning, the noise-level-grid integrators and the training stabilisers (parameter
/// average, learning-rate schedule, held-out validation data).
final class PreconditioningTests: XCTestCase {
    static var harmonic: Plugin?

    func harmonicSystem(_ parameters: String) throws -> EnergySystem {
        if Self.harmonic == nil { Self.harmonic = try PluginLoader.load(path: try buildHarmonicPlugin().path) }
        return try Self.harmonic!.makeSystem(parameters: parameters)
    }

    func model(kind: DiffusionSpace.Kind = .free, particles: Int = 3, seed: UInt64 = 4) throws -> DiffusionModel {
        try untrainedEDMModel(smallEDMConfiguration(sigmaMax: 4, seed: seed),
                              space: DiffusionSpace(particles: particles, dimension: 2, kind: kind), sigmaData: 1.3)
    }

    /// The coefficients are EDM's, and with F = 0 the denoiser of Gaussian data N(0, σ_d²) is exact:
    /// c_skip x is E[x_0 | x] for that law.
    func testCoefficientsAreEDMs() {
        let sigma = 0.7, sd = 1.3
        let c = EDMCoefficients(sigma: sigma, sigmaData: sd)
        XCTAssertEqual(c.skip, sd * sd / (sigma * sigma + sd * sd), accuracy: 1e-15)
        XCTAssertEqual(c.out, sigma * sd / (sigma * sigma + sd * sd).squareRoot(), accuracy: 1e-15)
        XCTAssertEqual(c.input, 1 / (sigma * sigma + sd * sd).squareRoot(), accuracy: 1e-15)
        XCTAssertEqual(c.noise, log(sigma) / 4, accuracy: 1e-15)
        // The EDM loss weight λ = (σ² + σ_d²)/(σ σ_d)² is 1/c_out²: unit-weight regression of F is EDM's loss.
        XCTAssertEqual(1 / (c.out * c.out), (sigma * sigma + sd * sd) / (sigma * sd * sigma * sd), accuracy: 1e-12)
    }

    /// ∂s/∂x from D backward passes equals central finite differences of s(x; σ), on a free and a
    /// centred space (where the score is translation invariant and the Jacobian keeps the projection).
    func testScoreJacobianMatchesFiniteDifferences() throws {
        let kinds: [DiffusionSpace.Kind] = [.free, .centred]
        for kind in kinds {
            let m = try model(kind: kind)
            var rng = SeededGenerator(seed: 2)
            let x = (0..<12).map { _ in rng.normal() }
            let sigmas = [0.05, 1.5]
            let (score, jacobian) = m.scoreJacobian(positions: x, sigmas: sigmas)
            let direct = m.scoreAt(positions: x, sigmas: sigmas)
            for i in score.indices { assertClose(score[i], direct[i], relative: 1e-12, absolute: 1e-12) }
            let h = 1e-6
            var largest = 0.0
            for b in 0..<2 { for j in 0..<6 {
                var plus = x, minus = x
                plus[b * 6 + j] += h
                minus[b * 6 + j] -= h
                let fp = m.scoreAt(positions: plus, sigmas: sigmas), fm = m.scoreAt(positions: minus, sigmas: sigmas)
                for i in 0..<6 {
                    let difference: Double = fp[b * 6 + i] - fm[b * 6 + i]
                    let numeric = difference / (2 * h)
                    largest = max(largest, abs(numeric))
                    assertClose(jacobian[(b * 6 + i) * 6 + j], numeric, relative: 1e-5, absolute: 1e-5)
                }
            } }
            XCTAssertGreaterThan(largest, 0.1, "the Jacobian should be far from zero for the test to bite (\(kind))")
        }
    }

    /// A noise-parameterized model read at the time of a noise level gives its own score there.
    func testNoiseLevelAndTimeAreInverse() throws {
        var c = DiffusionConfiguration(method: .dsm)
        c.data = MCMCSettings()
        c.sigmaMin = 1e-3
        c.sigmaMax = 3
        let m = try DiffusionModel(configuration: c, space: DiffusionSpace(particles: 3, dimension: 2, kind: .free))
        for t in [0.05, 0.3, 0.77, 1.0] { XCTAssertEqual(m.time(ofNoiseLevel: m.noiseLevel(t)), t, accuracy: 1e-12) }
        let grid = m.noiseLevels(steps: 10)
        XCTAssertEqual(grid.count, 11)
        XCTAssertEqual(grid[0], m.noiseLevel(1), accuracy: 1e-12)
        XCTAssertEqual(grid[9], 1e-3, accuracy: 1e-15)
        XCTAssertEqual(grid[10], 0)
        XCTAssertTrue(zip(grid, grid.dropFirst()).allSatisfy { $0 > $1 })
    }

    /// Exact weights of the deterministic Euler and Heun draws: an untrained network moves the
    /// samples far from the prior, yet log Ẑ = logmeanexp(−u − log q) recovers the analytic log Z
    /// of a harmonic target — log q of the discrete map (LU of every step's Jacobian) is exact.
    func testExactWeightsRecoverAnalyticLogZ() throws {
        let system = try harmonicSystem("k=0.333333333333 temperature=1 particles=3 dimension=2")
        let logZ = 3 * log(2 * Double.pi / 0.333333333333)
        for integrator in [Integrator.euler, .heun] {
            let drawn = try assertExactWeightsRecover(logZ: logZ, model: try model(), system: system, integrator: integrator,
                                                      seed: 9, label: "\(integrator) on a Gaussian")
            print("mean |x|² \(drawn.samples.reduce(0) { $0 + $1 * $1 } / 3000) (target 18)")
        }
    }

    /// Without weights the draws carry nan (no weight), and the stochastic integrators run.
    func testStochasticIntegratorsDrawWithoutWeights() throws {
        let system = try harmonicSystem("k=1 temperature=1 particles=3 dimension=2")
        let m = try model()
        for integrator in [Integrator.euler, .heun, .pc] {
            var rng = SeededGenerator(seed: 3)
            let drawn = try m.sampleNoiseLevels(batch: 50, system: system,
                                                settings: DrawSettings(integrator: integrator, steps: 8, stochastic: true), rng: &rng)
            XCTAssertEqual(drawn.samples.count, 300)
            XCTAssertTrue(drawn.samples.allSatisfy { $0.isFinite })
            XCTAssertTrue(drawn.logWeights.allSatisfy { $0.isNaN })
        }
        XCTAssertEqual(DrawSettings(integrator: .heun, steps: 18).networkEvaluations, 35)
        XCTAssertEqual(DrawSettings(integrator: .pc, steps: 18).networkEvaluations, 35)
    }

    /// Scales given in units of the data's rms coordinate become absolute once: σ range and force
    /// blend multiply by σ_d, a log-normal noise mean shifts by ln σ_d.
    func testDataRelativeScalesResolveOnce() {
        var c = DiffusionConfiguration(method: .dsm)
        c.scalesFromData = true
        c.sigmaMin = 1.5e-3
        c.sigmaMax = 4
        c.forceBlendSigma = 0.15
        c.noiseLevels = .logNormal(mean: -3, std: 1.5)
        let r = c.resolvingScales(dataScale: 0.5)
        XCTAssertEqual(r.sigmaMin, 7.5e-4, accuracy: 1e-18)
        XCTAssertEqual(r.sigmaMax, 2, accuracy: 1e-15)
        XCTAssertEqual(r.forceBlendSigma!, 0.075, accuracy: 1e-15)
        XCTAssertEqual(r.noiseLevels, .logNormal(mean: -3 + log(0.5), std: 1.5))
        XCTAssertNil(r.scalesFromData)
        XCTAssertEqual(r.resolvingScales(dataScale: 0.5), r, "resolved scales stay as they are")
    }

    /// The learning rate warms up linearly, holds, then decays as √(start/step).
    func testLearningRateSchedule() {
        var c = DiffusionConfiguration(method: .dsm)
        c.learningRate = 1e-3
        c.warmupSteps = 10
        c.decayStart = 100
        XCTAssertEqual(c.learningRate(atStep: 0), 1e-4, accuracy: 1e-18)
        XCTAssertEqual(c.learningRate(atStep: 9), 1e-3, accuracy: 1e-18)
        XCTAssertEqual(c.learningRate(atStep: 50), 1e-3, accuracy: 1e-18)
        XCTAssertEqual(c.learningRate(atStep: 400), 5e-4, accuracy: 1e-15)
    }

    /// EDM dsm on DW-4: the data are split by chain (no held-out frame in the buffer), σ_d is
    /// the training data's rms coordinate, the validation loss falls, the parameter average
    /// differs from the parameters and is what a checkpoint's model samples with, while a
    /// trainer made from the checkpoint continues from the parameters themselves.
    func testTrainingKeepsValidationDataAndAverage() throws {
        try requireBuilt(TestPaths.plugin("DoubleWell"))
        let plugin = try PluginLoader.load(path: TestPaths.plugin("DoubleWell").path)
        let system = try plugin.makeSystem(parameters: "")
        var c = smallDW4Configuration()
        c.averageHalfLife = 20
        c.warmupSteps = 10
        c.validationEvery = 50
        let model = try DiffusionModel(configuration: c, space: DiffusionSpace(particles: 4, dimension: 2, kind: .centred))
        let trainer = DiffusionTrainer(model: model, system: system)
        for _ in 0..<400 { try trainer.step() }
        let state = trainer.state
        XCTAssertEqual(state.validationData?.count, 100 * 8, "one of four chains held out")
        XCTAssertEqual(state.buffer.count, 300)
        let held = Set(stride(from: 0, to: state.validationData!.count, by: 8).map { state.validationData![$0] })
        let kept = Set(stride(from: 0, to: state.buffer.positions.count, by: 8).map { state.buffer.positions[$0] })
        XCTAssertTrue(held.isDisjoint(with: kept))
        let rms = (state.buffer.positions.reduce(0) { $0 + $1 * $1 } / Double(state.buffer.positions.count)).squareRoot()
        XCTAssertEqual(state.dataScale!, rms, accuracy: 1e-12 * rms, "buffer frames are centred: σ_d is their rms")
        let history = try XCTUnwrap(state.validationHistory)
        XCTAssertEqual(history.map(\.step), Array(stride(from: 50, through: 400, by: 50)))
        print("validation loss: \(history.map { String(format: "%.4f", $0.loss) })")
        XCTAssertLessThan(history.last!.loss, 0.9 * history.first!.loss)
        let average = try XCTUnwrap(state.averageParameters)
        XCTAssertNotEqual(average, state.parameters)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("edm-\(UUID()).ckpt").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try DiffusionCheckpoint(trainer: trainer).write(to: path)
        let read = try DiffusionCheckpoint.read(from: path)
        let sampling = try read.makeModel()
        for (a, b) in zip(sampling.networkParameters, average) { XCTAssertEqual(a, b, accuracy: 1e-12) }
        XCTAssertEqual(sampling.sigmaData, state.dataScale!)
        XCTAssertEqual(try read.makeTrainer(system: system).model.networkParameters, state.parameters)
    }
}
