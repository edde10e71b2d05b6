import Foundation
import PluginHost
import Sampling
import TestSupport
import XCTest

/// Denoising score matching learns the exact score of smoothed data, and the SMC correction
/// turns wrong samples into samples of π.
final class CorrectionTests: XCTestCase {
    static var harmonic: Plugin?

    /// u = (k/2) Σ|x_i − x̄|² on 4 particles in 2-D: Gaussian with variance 1/k per coordinate
    /// in the zero-centre-of-mass subspace (D' = 6), ⟨u⟩ = D'/2 = 3.
    func centredHarmonic(k: Double = 2) throws -> EnergySystem {
        if Self.harmonic == nil { Self.harmonic = try PluginLoader.load(path: try buildHarmonicPlugin().path) }
        return try Self.harmonic!.makeSystem(parameters: "k=\(k) temperature=1 particles=4 dimension=2 centred=1")
    }

    let space = DiffusionSpace(particles: 4, dimension: 2, kind: .centred)

    /// dsm trained on parallel-tempering data of a centred Gaussian (variance 1/k) matches the
    /// exact score of the smoothed data, −P x / (1/k + h(t)), at held-out points, for noise
    /// levels σ ≥ 0.15 (below, s = −ε_θ/√h magnifies the ε-network's error by 1/√h; those
    /// levels move samples by less than σ each step).
    func testDenoisingScoreMatchingLearnsTheSmoothedGaussianScore() throws {
        try learnSmoothedGaussianScore(predictsNoise: nil)
    }

    /// The same with the network as the score itself (`--predict-score`).
    func testDenoisingScoreMatchingWithAScoreNetwork() throws {
        try learnSmoothedGaussianScore(predictsNoise: false)
    }

    /// The same with the force blended into the target (target score matching below σ* = 0.5):
    /// the blend is unbiased, so the same exact score is learned.
    func testDenoisingScoreMatchingWithForceBlend() throws {
        try learnSmoothedGaussianScore(predictsNoise: nil, forceBlend: 0.5)
    }

    func learnSmoothedGaussianScore(predictsNoise: Bool?, forceBlend: Double? = nil) throws {
        let k = 2.0
        let system = try centredHarmonic(k: k)
        var c = DiffusionConfiguration(method: .dsm)
        c.hidden = 32
        c.layers = 2
        c.batch = 64
        c.learningRate = 3e-3
        c.sigmaMin = 0.01
        c.sigmaMax = 3
        var data = MCMCSettings()
        data.samples = 2000
        data.chains = 16
        data.replicas = 1
        data.burnIn = 500
        data.thin = 10
        data.initialStepSize = 0.05
        c.data = data
        c.bufferCapacity = 2000
        c.predictsNoise = predictsNoise
        c.forceBlendSigma = forceBlend
        let model = try DiffusionModel(configuration: c, space: space)
        let trainer = DiffusionTrainer(model: model, system: system)
        for _ in 0..<1500 { try trainer.step() }
        XCTAssertEqual(trainer.state.buffer.count, 2000, "the PT data fill the buffer once")
        XCTAssertGreaterThan(trainer.energyEvaluations, 16 * 500, "PT evaluations count in the budget")
        var rng = SeededGenerator(seed: 8)
        for t in [0.5, 0.7, 0.9] {
            let h = model.noiseVariance(t)
            let x = space.noise(batch: 200, rng: &rng).map { $0 * (1 / k + h).squareRoot() }
            let s = model.score(positions: x, times: [Double](repeating: t, count: 200))
            let exact = x.map { -$0 / (1 / k + h) }
            let error = zip(s, exact).map { ($0 - $1) * ($0 - $1) }.reduce(0, +)
            let norm = exact.map { $0 * $0 }.reduce(0, +)
            print("dsm on a Gaussian, t = \(t) (σ = \(model.sigma(t))): relative squared score error \(error / norm)")
            XCTAssertLessThan(error / norm, 0.05, "t = \(t)")
        }
    }

    /// Samples twice too wide (weights unusable, so kept as drawn) relax to π under the
    /// corrected MALA: ⟨u⟩ after K steps is D'/2 = 3 within 4 standard errors, and the report
    /// carries both checkpoints and the evaluations spent.
    func testCorrectionRelaxesWrongSamplesToTarget() throws {
        let system = try centredHarmonic()
        var rng = SeededGenerator(seed: 4)
        let n = 2000
        let x = space.noise(batch: n, rng: &rng).map { $0 * 2 / 2.0.squareRoot() }  // variance 2 = 4/k
        let u = try system.evaluate(x, batch: n, withGradients: false).energies
        let logW = (0..<n).map { $0 == 0 ? 0.0 : -50.0 }  // ESS ≈ 1
        var settings = CorrectionSettings(steps: 60)
        settings.initialStepSize = 0.05
        let correction = SMCCorrection(settings: settings, kernel: MALAKernel(space: space, system: system))
        XCTAssertEqual(u.reduce(0, +) / Double(n), 12, accuracy: 0.5, "the start is 4× too hot")
        let (positions, energies, report) = try correction.run(positions: x, energies: u, logWeights: logW, rng: &rng)
        XCTAssertFalse(report.resampled)
        XCTAssertEqual(positions.count, x.count)
        XCTAssertEqual(report.final.steps, 60)
        XCTAssertEqual(report.halfway.steps, 30)
        XCTAssertEqual(report.final.meanEnergy, energies.reduce(0, +) / Double(n), accuracy: 1e-9)
        print("correction: ⟨u⟩ \(report.halfway.meanEnergy) ± \(report.halfway.energyError) after 30, \(report.final.meanEnergy) ± \(report.final.energyError) after 60 (exact 3); acceptance \(report.final.acceptance)")
        XCTAssertEqual(report.final.meanEnergy, 3, accuracy: 4 * report.final.energyError)
        XCTAssertEqual(report.energyEvaluations, 61 * n)
    }

    /// With one step size per sample (each adapted over the first quarter, then frozen) the
    /// same wrong start still relaxes to ⟨u⟩ = D'/2 = 3 within 4 standard errors, MALA and HMC.
    func testPerSampleStepSizesKeepTheTarget() throws {
        let system = try centredHarmonic()
        for leapfrog in [0, 5] {
            var rng = SeededGenerator(seed: 24)
            let n = 2000
            let x = space.noise(batch: n, rng: &rng).map { $0 * 2 / 2.0.squareRoot() }
            let u = try system.evaluate(x, batch: n, withGradients: false).energies
            var settings = CorrectionSettings(steps: 60)
            settings.initialStepSize = leapfrog > 0 ? HMCKernel.stepSize(equivalentToMALA: 0.05) : 0.05
            settings.stepSizePerSample = true
            settings.resampleThreshold = 2
            let kernel: any MCMCKernel = leapfrog > 0
                ? HMCKernel(space: space, system: system, leapfrogSteps: leapfrog) : MALAKernel(space: space, system: system)
            let (_, _, report) = try SMCCorrection(settings: settings, kernel: kernel)
                .run(positions: x, energies: u, logWeights: [Double](repeating: 0, count: n), rng: &rng)
            print("per-sample steps, leapfrog \(leapfrog): ⟨u⟩ \(report.final.meanEnergy) ± \(report.final.energyError) (exact 3), range \(report.stepSizeRange ?? [])")
            XCTAssertEqual(report.final.meanEnergy, 3, accuracy: 4 * report.final.energyError)
        }
    }

    /// The HMC variant (5 leapfrog steps per proposal) relaxes the same wrong start to ⟨u⟩ = 3
    /// and counts its 5 gradient evaluations per step.
    func testHMCCorrectionRelaxesWrongSamplesToTarget() throws {
        let system = try centredHarmonic()
        var rng = SeededGenerator(seed: 14)
        let n = 2000
        let x = space.noise(batch: n, rng: &rng).map { $0 * 2 / 2.0.squareRoot() }
        let u = try system.evaluate(x, batch: n, withGradients: false).energies
        var settings = CorrectionSettings(steps: 40)
        settings.initialStepSize = HMCKernel.stepSize(equivalentToMALA: 0.02)
        let (_, _, report) = try SMCCorrection(settings: settings,
                                               kernel: HMCKernel(space: space, system: system, leapfrogSteps: 5))
            .run(positions: x, energies: u, logWeights: [Double](repeating: 0, count: n), rng: &rng)
        print("HMC correction: ⟨u⟩ \(report.final.meanEnergy) ± \(report.final.energyError) (exact 3), acceptance \(report.final.acceptance), step \(report.stepSize)")
        XCTAssertTrue(report.resampled, "equal weights are usable (ESS/N = 1)")
        XCTAssertEqual(report.final.meanEnergy, 3, accuracy: 4 * report.final.energyError)
        XCTAssertEqual(report.energyEvaluations, (1 + 40 * 5) * n)
    }

    /// One step size per sample frees what a shared one cannot: LJ-13 walkers near a minimum,
    /// four of them with an overlapping pair (r = 0.4, u ≈ 10⁵). The population's step (tuned to
    /// the relaxed walkers) throws every proposal of an overlapping walker far uphill, so with
    /// one shared step they stay at u > 0; with their own step sizes they shrink them until
    /// they move, and every walker ends at u < 0. The per-sample range is reported.
    func testPerSampleStepSizesFreeOverlappingSamples() throws {
        try requireBuilt(TestPaths.plugin("LennardJones"))
        let system = try PluginLoader.load(path: TestPaths.plugin("LennardJones").path).makeSystem(parameters: "preset=lj13")
        let space13 = DiffusionSpace.of(system)
        var rng = SeededGenerator(seed: 21)
        let start = try XCTUnwrap(system.initialPositions())
        let n = 64, stride = start.count
        var x = (0..<n).flatMap { _ in start.map { $0 + 0.01 * rng.normal() } }
        for b in 0..<4 {  // atom 1 moved to 0.4 from atom 0
            for a in 0..<3 { x[b * stride + 3 + a] = x[b * stride + a] + (a == 0 ? 0.4 : 0) }
        }
        let u = try system.evaluate(x, batch: n, withGradients: false).energies
        XCTAssertTrue(u.prefix(4).allSatisfy { $0 > 100 } && u.dropFirst(4).allSatisfy { $0 < 0 }, "\(u.prefix(6))")
        func corrected(perSample: Bool) throws -> ([Double], CorrectionReport) {
            var settings = CorrectionSettings(steps: 200)
            settings.initialStepSize = 1e-3
            settings.stepSizePerSample = perSample
            settings.resampleThreshold = 2  // keep every walker as it is (equal weights would resample)
            var generator = SeededGenerator(seed: 5)
            let (_, energies, report) = try SMCCorrection(settings: settings, kernel: MALAKernel(space: space13, system: system))
                .run(positions: x, energies: u, logWeights: [Double](repeating: 0, count: n), rng: &generator)
            return (energies, report)
        }
        let (shared, sharedReport) = try corrected(perSample: false)
        let (own, ownReport) = try corrected(perSample: true)
        print("overlapping walkers after 200 MALA steps: shared step \(sharedReport.stepSize): u \(shared.prefix(4)); per sample (range \(ownReport.stepSizeRange ?? [])): u \(own.prefix(4))")
        XCTAssertGreaterThan(shared.prefix(4).filter { $0 > 0 }.count, 0, "a shared step leaves overlapping walkers stuck")
        XCTAssertTrue(own.allSatisfy { $0 < 0 }, "\(own.prefix(4))")
        XCTAssertNil(sharedReport.stepSizeRange)
        let range = try XCTUnwrap(ownReport.stepSizeRange)
        XCTAssertLessThan(range[0], 0.5 * sharedReport.stepSize, "the stuck walkers shrank their steps")
        XCTAssertLessThan(range[0], range[1])
    }

    /// `count` draws of the centred Gaussian N(0, variance) in D' = 6, their energies and their
    /// exact log-weights −u − log q.
    func gaussianProposal(count n: Int, variance: Double, system: EnergySystem, rng: inout SeededGenerator) throws
        -> (x: [Double], u: [Double], logW: [Double]) {
        let x = space.noise(batch: n, rng: &rng).map { $0 * variance.squareRoot() }
        let u = try system.evaluate(x, batch: n, withGradients: false).energies
        let logW = (0..<n).map { b -> Double in
            let sq = (0..<8).map { x[b * 8 + $0] * x[b * 8 + $0] }.reduce(0, +)
            return -u[b] - space.logNormal(squaredDistance: sq, variance: variance)
        }
        return (x, u, logW)
    }

    /// Annealed start: samples 4× too hot with their exact weights (ESS/N well below ½) are
    /// tempered down to π through β < 1 — increasing β, each stage resampled and moved by MALA
    /// at exp(−βu) — and, after only 2 steps at the target, ⟨u⟩ = 3 within 4 standard errors.
    func testAnnealedCorrectionCoolsTooHotSamples() throws {
        let system = try centredHarmonic()
        var rng = SeededGenerator(seed: 16)
        let (x, u, logW) = try gaussianProposal(count: 3000, variance: 2, system: system, rng: &rng)  // π: 1/k = 0.5
        var settings = CorrectionSettings(steps: 2)
        settings.initialStepSize = 0.05
        settings.annealSteps = 5
        let (_, _, report) = try SMCCorrection(settings: settings, kernel: MALAKernel(space: space, system: system))
            .run(positions: x, energies: u, logWeights: logW, rng: &rng)
        let betas = report.annealingBetas
        print("annealed correction: ESS/N \(report.essFraction), β = \(betas), ⟨u⟩ \(report.final.meanEnergy) ± \(report.final.energyError) (exact 3)")
        XCTAssertLessThan(report.essFraction, 0.3, "the weights alone are poor")
        XCTAssertGreaterThanOrEqual(betas.count, 3)
        XCTAssertLessThan(betas[0], 0.6, "starts near the proposal's own temperature (β = 0.25)")
        XCTAssertEqual(betas.last, 1)
        XCTAssertTrue(zip(betas, betas.dropFirst()).allSatisfy { $0 < $1 })
        XCTAssertEqual(report.final.meanEnergy, 3, accuracy: 4 * report.final.energyError)
    }

    /// With usable weights (exact log-weights of a too-wide Gaussian proposal) the correction
    /// resamples by them: already after 0 MCMC steps the population is π-distributed.
    func testCorrectionResamplesByUsableWeights() throws {
        let system = try centredHarmonic()
        var rng = SeededGenerator(seed: 6)
        // proposal N(0, 0.8) in D' = 6; π has variance 0.5
        let (x, u, logW) = try gaussianProposal(count: 4000, variance: 0.8, system: system, rng: &rng)
        var settings = CorrectionSettings(steps: 2)
        settings.initialStepSize = 1e-6  // MCMC does (almost) nothing: the resampling must do the work
        let (_, energies, report) = try SMCCorrection(settings: settings, kernel: MALAKernel(space: space, system: system))
            .run(positions: x, energies: u, logWeights: logW, rng: &rng)
        XCTAssertTrue(report.resampled)
        XCTAssertGreaterThan(report.essFraction, 0.3)
        let mean = energies.reduce(0, +) / Double(energies.count)
        print("resampled: ESS/N \(report.essFraction), ⟨u⟩ \(mean) (exact 3, proposal 4.8)")
        XCTAssertEqual(mean, 3, accuracy: 0.25)
    }
}
