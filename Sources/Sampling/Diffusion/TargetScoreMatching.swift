import Foundation
import PluginHost

/// Target score matching (De Bortoli et al. 2024): for the VE noising x_t = x_0 + √h(t) ε of
/// x_0 ~ π, the score of the noised density is the posterior mean of the target's score,
///
///     ∇log p_t(x_t) = E[∇log π(x_0) | x_t] = E[−∇u(x_0) | x_t],
///
/// so s_θ(x_t, t) is regressed on −∇u(x_0) (projected, each particle's d-vector clipped at
/// `scoreClip`, unit weight, the mean over coordinates as iDEM averages). The data x_0 are made
/// on the first step by the method's own MALA chains (`Settings`: every evaluation counts in the
/// budget) and stay in the buffer; each step costs one gradient evaluation per point. Unlike the
/// noise target −ε/√h of dsm, the target's variance does not grow as h → 0, where the force is
/// the score. The network is the score; sampled by the VE reverse SDE like iDEM and dsm.
public struct TargetScoreMatching: TrainingMethod {
    /// The method's own settings: how its MALA data are made.
    public struct Settings: MethodSettings {
        /// Configurations of data (over all ranks), kept in the buffer.
        public var samples = 2000
        /// Independent MALA chains that make them.
        public var chains = 8
        /// MALA steps per chain before recording (step size adapted toward 0.574).
        public var burnIn = 2000
        /// Record every this many MALA steps.
        public var thin = 10
        public init() {}
    }

    public var process: DiffusionProcess { .varianceExploding }
    public init() {}

    public func validate(_ c: DiffusionConfiguration) throws {
        func fail(_ s: String) throws -> Never { throw DiffusionError.invalidConfiguration(s) }
        if c.parameterization == .edm { try fail("the EDM parameterization is for dsm only") }
        let s: Settings
        do { s = try c.methodSettings?.decoded(as: Settings.self) ?? Settings() } catch {
            try fail("tsm: the method settings do not read as target score matching's: \(error)")
        }
        if s.samples < 2 || s.chains < 1 || s.burnIn < 0 || s.thin < 1 {
            try fail("tsm needs ≥ 2 data samples, ≥ 1 chain, burn-in ≥ 0 and thin ≥ 1")
        }
        if s.samples > c.bufferCapacity {
            try fail("tsm keeps its \(s.samples) data samples in the buffer: buffer capacity \(c.bufferCapacity) is too small")
        }
    }

    public func batch(_ state: inout TrainerState, _ context: TrainingContext) throws -> RegressionBatch {
        if state.buffer.count == 0 { try makeData(&state, context) }
        let model = context.model, space = model.space, stride = space.coordinateCount
        let indices = state.buffer.sampleIndices(context.localBatch, priority: 0, rng: &state.rng)
        let x0 = state.buffer.gather(indices)
        var target = try context.system.evaluate(x0, batch: indices.count, withGradients: true).gradients
        for i in target.indices { target[i] = -target[i] }
        space.project(&target)
        space.clipParticles(&target, maxNorm: context.configuration.scoreClip)
        let (xt, times, _) = ScoreRegression.noisedBatch(x0, model: model, rng: &state.rng)
        precondition(target.count == indices.count * stride)
        return RegressionBatch(noised: xt, times: times, target: target,
                               weights: [Double](repeating: 1, count: indices.count))
    }

    public func lossAndGradient(_ batch: RegressionBatch, _ context: TrainingContext) throws -> LossAndGradient {
        try ScoreRegression.lossAndGradient(batch, context)
    }

    /// This rank's share of the MALA data, into the buffer (which then stays fixed).
    func makeData(_ state: inout TrainerState, _ context: TrainingContext) throws {
        let own: Settings = context.configuration.settings()
        var settings = MCMCSettings()
        settings.samples = context.share(of: own.samples)
        settings.chains = max(1, min(own.chains, settings.samples))
        settings.burnIn = own.burnIn
        settings.thin = own.thin
        settings.seed = SeededGenerator.rankSeed(SeededGenerator.derivedSeed(context.configuration.seed, 0x54_534D),  // "TSM"
                                                 rank: context.reducer.rank)
        let system = context.system, space = context.model.space
        let start = system.initialPositions() ?? [Double](repeating: 0, count: system.coordinateCount)
        var buffer = state.buffer
        _ = try ChainRunner(settings: settings).run(
            system: system, space: space, start: start,
            record: { x, u in
                var y = x
                space.constrain(&y)
                buffer.add(y, logRewards: u.map { -$0 })
            })
        state.buffer = buffer
    }
}

extension DiffusionMethod {
    /// `--method tsm`.
    public static let tsm = DiffusionMethod(declaring: "tsm")
}

extension TrainingMethodRegistration {
    public static let targetScoreMatching = TrainingMethodRegistration(
        method: .tsm,
        summary: "target score matching: the score regressed on the force −∇u at MALA data points",
        training: TargetScoreMatching(),
        options: ["--sigma-min", "--sigma-max"],
        settings: TargetScoreMatching.Settings.self,
        settingsOptions: [
            .positive("--tsm-samples", \.samples, help: "Configurations of MALA data (over all ranks)"),
            .positive("--tsm-chains", \.chains, help: "MALA chains that make them"),
            .count("--tsm-burn-in", \.burnIn, help: "MALA steps per chain before recording"),
            .positive("--tsm-thin", \.thin, help: "Record every this many MALA steps"),
        ])
}
