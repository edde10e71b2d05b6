import Foundation
import PluginHost

/// Denoising score matching from tempered data (SAMPLERS.md; the "PT + generative model"
/// route of PTSD / PITA): the project's own parallel tempering makes `data.samples`
/// configurations at the target on the first step (its evaluations count in the budget);
/// each step regresses s_θ(x_t, t) on the exact target −ε/√h(t) of x_t = x_0 + √h(t) ε with
/// λ(t) = h(t), i.e. the loss is the mean over coordinates of |√h s_θ + ε|². The network
/// predicts the noise (s_θ = −ε_θ/√h, `DiffusionModel.scoreScale`), so the loss is
/// |ε_θ(x_t, t) − ε|², the same objective with a well-scaled output.
extension DiffusionTrainer {
    func scoreMatchingStep() throws -> StepReport {
        if state.buffer.count == 0 { try makeTemperedData() }
        let indices = state.buffer.sampleIndices(localBatch, priority: 0, rng: &state.rng)
        let (xt, times, noise) = noisedBatch(state.buffer.gather(indices))
        var target = noise, weights = [Double](repeating: 1, count: times.count)
        if configuration.predictsNoise == false {  // the network is the score: target −ε/√h, weight h
            let stride = model.space.coordinateCount
            for b in times.indices {
                let h = max(model.noiseVariance(times[b]), 1e-300)
                weights[b] = h
                for i in 0..<stride { target[b * stride + i] = -noise[b * stride + i] / h.squareRoot() }
            }
        }
        let loss = try regressionStep(RegressionBatch(noised: xt, times: times, target: target, weights: weights))
        return StepReport(step: state.step, loss: loss, essFraction: .nan, logZ: .nan,
                          energyEvaluations: 0, gradientEvaluations: 0)
    }

    /// This rank's share of the parallel-tempering data, into the buffer (which then stays fixed).
    func makeTemperedData() throws {
        var settings = configuration.data!
        settings.samples = localShare(of: settings.samples)
        settings.chains = max(1, min(settings.chains, settings.samples))
        settings.seed = SeededGenerator.rankSeed(settings.seed, rank: group?.communicator.rank ?? 0)
        let start = system.initialPositions() ?? [Double](repeating: 0, count: system.coordinateCount)
        try MCMCRunner(settings: settings).run(
            system: system, start: start, projectCentreOfMass: model.space.kind == .centred,
            record: { x, u in
                var y = x
                model.space.constrain(&y)
                state.buffer.add(y, logRewards: u.map { -$0 })
            })
    }
}
