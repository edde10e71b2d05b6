import Foundation
import PluginHost

/// iDEM, iterated denoising energy matching (Akhound-Sadegh et al. 2024), as DEM computes it
/// (docs/samplers.md): the buffer starts with `initialBuffer` prior draws and gains `refillSamples`
/// reverse-SDE samples every `refillEvery` steps (its own `Settings`); each step regresses s_θ(x_t, t) on the
/// Monte-Carlo score S_K(x_t, t) = Σ_j softmax_j(−u(y_j)) (−∇u(y_j)), y_j = x_t + √h(t) ε_j,
/// with each particle's d-vector clipped at `scoreClip`, unweighted (λ = 1) and averaged
/// over coordinates.
public struct EnergyMatching: TrainingMethod {
    public var process: DiffusionProcess { .varianceExploding }
    public init() {}

    /// iDEM's own settings (DEM's values by default). Checkpoints written before they were iDEM's
    /// hold them as fields of the configuration, under the same names.
    public struct Settings: MethodSettings {
        /// Monte-Carlo draws K per score target.
        public var monteCarloSamples = 100
        /// Training steps between two buffer refills by the reverse SDE (DEM: 100).
        public var refillEvery = 100
        /// Samples the reverse SDE adds at each refill (DEM: 1000; over all ranks).
        public var refillSamples = 1000
        /// Prior draws N(0, σ_max²) (uniform on a torus) in the buffer before the first refill
        /// (DEM: 1024; over all ranks).
        public var initialBuffer = 1024
        public init() {}
    }

    public func validate(_ c: DiffusionConfiguration) throws {
        if c.parameterization == .edm { throw DiffusionError.invalidConfiguration("the EDM parameterization is for dsm only") }
        let s: Settings
        do { s = try c.methodSettings?.decoded(as: Settings.self) ?? Settings() } catch {
            throw DiffusionError.invalidConfiguration("idem: the method settings do not read as iDEM's: \(error)")
        }
        if s.monteCarloSamples < 1 { throw DiffusionError.invalidConfiguration("Monte-Carlo samples must be ≥ 1") }
        if s.refillEvery < 1 || s.refillSamples < 1 || s.initialBuffer < 1 {
            throw DiffusionError.invalidConfiguration("refill interval, refill samples and initial buffer must be ≥ 1")
        }
    }

    /// K Monte-Carlo draws (positions and gradients) per regression point.
    public func batchFootprint(_ c: DiffusionConfiguration) -> (points: Int, arrays: Int, what: String) {
        (c.settings(Settings.self).monteCarloSamples, 2, "Monte-Carlo draws")
    }

    public struct Batch {
        public var regression: RegressionBatch
        /// Importance weights of the step's refill samples (nil on steps without a refill).
        public var refill: ImportanceWeights?
    }

    public func batch(_ state: inout TrainerState, _ context: TrainingContext) throws -> Batch {
        let s: Settings = context.configuration.settings()
        var weights: ImportanceWeights?
        if state.buffer.count == 0 { try addPriorDraws(context.share(of: s.initialBuffer), &state, context) }
        if state.step > 0 && state.step % s.refillEvery == 0 {
            weights = try refill(context.share(of: s.refillSamples), &state, context)
        }
        return Batch(regression: try regressionBatch(&state, context), refill: weights)
    }

    public func lossAndGradient(_ batch: Batch, _ context: TrainingContext) throws -> LossAndGradient {
        var result = try ScoreRegression.lossAndGradient(batch.regression, context)
        if let w = batch.refill {
            result.essFraction = w.effectiveSampleFraction
            result.elbo = w.meanLogWeight
        }
        return result
    }

    /// Prior draws N(0, σ_max²) (uniform on a torus) into the buffer, with their energies.
    func addPriorDraws(_ count: Int, _ state: inout TrainerState, _ context: TrainingContext) throws {
        let x = context.model.drawPrior(batch: count, rng: &state.rng).x
        let u = try context.system.evaluate(x, batch: count, withGradients: false).energies
        state.buffer.add(x, logRewards: u.map { -$0 })
    }

    /// Reverse-SDE samples into the buffer (chunks of 256); their importance weights.
    func refill(_ count: Int, _ state: inout TrainerState, _ context: TrainingContext) throws -> ImportanceWeights {
        var logWeights: [Double] = []
        while logWeights.count < count {
            let m = min(256, count - logWeights.count)
            let paths = try context.model.sampleReverseSDE(batch: m, system: context.system, rng: &state.rng, keepStates: false)
            state.buffer.add(paths.samples, logRewards: paths.sampleEnergies.map { -$0 })
            logWeights += paths.logWeights
        }
        return ImportanceWeights(logWeights: logWeights)
    }

    /// A regression batch of iDEM from uniform buffer draws.
    public func regressionBatch(_ state: inout TrainerState, _ context: TrainingContext) throws -> RegressionBatch {
        let batch = context.localBatch
        let indices = state.buffer.sampleIndices(batch, priority: 0, rng: &state.rng)
        let (xt, times, _) = ScoreRegression.noisedBatch(state.buffer.gather(indices), model: context.model, rng: &state.rng)
        let target = try monteCarloScore(at: xt, times: times, &state.rng, context)
        return RegressionBatch(noised: xt, times: times, target: target,
                               weights: [Double](repeating: 1, count: batch))
    }

    /// S_K at the points x_t [m, n·d] (times [m]), projected and clipped per particle. The
    /// points go through in chunks of about `chunkDraws` energy evaluations (the draws come from
    /// `rng` in the same order as in one piece, so the result does not depend on the chunking):
    /// memory stays at a few MB whatever K and the batch are.
    public func monteCarloScore(at xt: [Double], times: [Double], _ rng: inout SeededGenerator,
                                _ context: TrainingContext, chunkDraws: Int = 16_384) throws -> [Double] {
        let space = context.model.space, stride = space.coordinateCount
        let m = context.configuration.settings(Settings.self).monteCarloSamples, points = max(1, chunkDraws / m)
        var target: [Double] = []
        target.reserveCapacity(xt.count)
        for start in Swift.stride(from: 0, to: times.count, by: points) {
            let end = min(times.count, start + points)
            target += try monteCarloChunk(Array(xt[(start * stride)..<(end * stride)]), times: Array(times[start..<end]),
                                          &rng, context)
        }
        space.project(&target)
        space.clipParticles(&target, maxNorm: context.configuration.scoreClip)
        return target
    }

    /// Σ_j softmax_j(−u(y_j)) (−∇u(y_j)) for a few points (unprojected, unclipped).
    func monteCarloChunk(_ xt: [Double], times: [Double], _ rng: inout SeededGenerator,
                         _ context: TrainingContext) throws -> [Double] {
        let model = context.model, space = model.space
        let stride = space.coordinateCount, batch = times.count, m = context.configuration.settings(Settings.self).monteCarloSamples
        let draws = space.noise(batch: batch * m, rng: &rng)
        var y = [Double](repeating: 0, count: batch * m * stride)
        for b in 0..<batch {
            let s = model.noiseVariance(times[b]).squareRoot()
            for j in 0..<m {
                let base = (b * m + j) * stride
                for i in 0..<stride { y[base + i] = xt[b * stride + i] + s * draws[base + i] }
            }
        }
        space.constrain(&y)  // periodic: the energy is periodic, so S_K carries over
        let (u, g) = try context.system.evaluate(y, batch: batch * m, withGradients: true)
        var target = [Double](repeating: 0, count: batch * stride)
        for b in 0..<batch {
            let logits = (0..<m).map { -u[b * m + $0] }
            let lse = ImportanceWeights.logSumExp(logits)
            for j in 0..<m {
                let w = exp(logits[j] - lse)
                guard w > 0 else { continue }
                for i in 0..<stride { target[b * stride + i] -= w * g[(b * m + j) * stride + i] }
            }
        }
        return target
    }
}

extension DiffusionTrainer {
    /// An iDEM regression batch drawn with the trainer's state (tests, diagnostics).
    public func energyMatchingBatch() throws -> RegressionBatch { try EnergyMatching().regressionBatch(&state, context) }

    /// S_K at x_t drawn with the trainer's generator (tests, diagnostics).
    public func monteCarloScore(at xt: [Double], times: [Double]) throws -> [Double] {
        try EnergyMatching().monteCarloScore(at: xt, times: times, &state.rng, context)
    }
}

extension DiffusionMethod {
    /// `--method idem`.
    public static let idem = DiffusionMethod(declaring: "idem")
}

extension TrainingMethodRegistration {
    public static let energyMatching = TrainingMethodRegistration(
        method: .idem,
        summary: "VE noising, Monte-Carlo score target, regression, buffer from the reverse SDE",
        training: EnergyMatching(),
        options: ["--sigma-min", "--sigma-max"],
        settings: EnergyMatching.Settings.self,
        settingsOptions: [
            .positive("--monte-carlo-samples", \.monteCarloSamples, help: "Monte-Carlo draws per score target"),
            .positive("--refill-every", \.refillEvery, help: "Training steps between buffer refills by the reverse SDE (DEM: 100)"),
            .positive("--refill-samples", \.refillSamples, help: "Samples added at each refill (reverse SDE with --time-steps steps; DEM: 1000)"),
            .positive("--initial-buffer", \.initialBuffer, help: "Prior draws N(0, σ_max²) in the buffer before the first refill (DEM: 1024)"),
        ])
}
