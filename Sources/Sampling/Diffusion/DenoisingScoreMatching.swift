import Foundation
import PluginHost

/// Denoising score matching from tempered data (SAMPLERS.md; the "PT + generative model"
/// route of PTSD / PITA): the project's own parallel tempering makes `data.samples`
/// configurations at the target on the first step (its evaluations count in the budget);
/// each step regresses s_θ(x_t, t) on the exact target −ε/√h(t) of x_t = x_0 + √h(t) ε with
/// λ(t) = h(t), i.e. the loss is the mean over coordinates of |√h s_θ + ε|². The network
/// predicts the noise (s_θ = −ε_θ/√h, `DiffusionModel.scoreScale`), so the loss is
/// |ε_θ(x_t, t) − ε|², the same objective with a well-scaled output. With `forceBlendSigma` the
/// target blends in the force at the data point (target score matching), which keeps the small-σ
/// score learnable: there the noise target's variance grows like 1/h.
public struct DenoisingScoreMatching: TrainingMethod {
    public init() {}

    public func batch(_ state: inout TrainerState, _ context: TrainingContext) throws -> RegressionBatch {
        if state.buffer.count == 0 { try makeTemperedData(&state, context) }
        let model = context.model, c = context.configuration
        let indices = state.buffer.sampleIndices(context.localBatch, priority: 0, rng: &state.rng)
        let x0 = state.buffer.gather(indices)
        let (xt, times, noise) = ScoreRegression.noisedBatch(x0, model: model, rng: &state.rng)
        let stride = model.space.coordinateCount
        var force: [Double]? = nil
        if c.forceBlendSigma != nil {
            var g = try context.system.evaluate(x0, batch: times.count, withGradients: true).gradients
            model.space.project(&g)
            force = g
        }
        // Score target a·(−ε/√h) + (1 − a)·(−∇u(x_0)); the network predicts −√h × it (noise) or it.
        var target = noise, weights = [Double](repeating: 1, count: times.count)
        let scoreNetwork = c.predictsNoise == false
        for b in times.indices {
            let h = max(model.noiseVariance(times[b]), 1e-300), s = h.squareRoot()
            let a = c.forceBlendSigma.map { h / (h + $0 * $0) } ?? 1
            if scoreNetwork { weights[b] = h }
            for i in 0..<stride {
                let j = b * stride + i
                let score = -a * noise[j] / s - (1 - a) * (force?[j] ?? 0)
                target[j] = scoreNetwork ? score : -s * score
            }
        }
        return RegressionBatch(noised: xt, times: times, target: target, weights: weights)
    }

    public func lossAndGradient(_ batch: RegressionBatch, _ context: TrainingContext) throws -> LossAndGradient {
        try ScoreRegression.lossAndGradient(batch, context)
    }

    /// This rank's share of the parallel-tempering data, into the buffer (which then stays fixed).
    func makeTemperedData(_ state: inout TrainerState, _ context: TrainingContext) throws {
        guard var settings = context.configuration.data else {
            throw DiffusionError.invalidConfiguration("dsm on a data trajectory: start the run with DiffusionTrainer.denoising(model:system:data:energies:)")
        }
        settings.samples = context.share(of: settings.samples)
        settings.chains = max(1, min(settings.chains, settings.samples))
        settings.seed = SeededGenerator.rankSeed(settings.seed, rank: context.reducer.rank)
        let system = context.system, space = context.model.space
        let start = system.initialPositions() ?? [Double](repeating: 0, count: system.coordinateCount)
        var buffer = state.buffer
        _ = try MCMCRunner(settings: settings).run(
            system: system, space: space, start: start,
            record: { x, u in
                var y = x
                space.constrain(&y)
                buffer.add(y, logRewards: u.map { -$0 })
            })
        state.buffer = buffer
    }
}

extension DiffusionTrainer {
    /// A fresh dsm run on data made elsewhere (`configuration.dataFile`, e.g. a molecule's Langevin
    /// replica exchange written by `ensemble sample`): the configurations fill the buffer, which
    /// then stays fixed, and what making them cost starts the run's budget.
    /// - Parameters:
    ///   - data: configurations [m, n·d] in the plugin's length unit; m = `dataFile.frames`.
    ///   - energies: their reduced energies u [m] (the buffer's log-rewards −u).
    /// - Throws: `DiffusionError.invalidConfiguration` when the model is not dsm on a data file or
    ///   the shapes disagree.
    public static func denoising(model: DiffusionModel, system: EnergySystem, data: [Double], energies: [Double],
                                 explorationHorizon: Int = 1000) throws -> DiffusionTrainer {
        let c = model.configuration, stride = model.space.coordinateCount
        guard c.method == .dsm, let file = c.dataFile else {
            throw DiffusionError.invalidConfiguration("training from a data trajectory needs --method dsm and its dataFile")
        }
        guard data.count == energies.count * stride, energies.count == file.frames else {
            throw DiffusionError.invalidConfiguration("data: \(data.count) coordinates and \(energies.count) energies for \(file.frames) frames of \(stride) coordinates")
        }
        var state = DiffusionTrainer(model: model, system: system, explorationHorizon: explorationHorizon).state
        for f in 0..<file.frames {
            var y = Array(data[(f * stride)..<((f + 1) * stride)])
            model.space.constrain(&y)
            state.buffer.add(y, logRewards: [-energies[f]])
        }
        state.energyEvaluations = file.energyEvaluations
        state.gradientEvaluations = file.gradientEvaluations
        return DiffusionTrainer(model: model, system: system, state: state)
    }
}
