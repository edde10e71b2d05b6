import Foundation
import PluginHost

/// iDEM, iterated denoising energy matching (Akhound-Sadegh et al. 2024), as DEM computes it
/// (SAMPLERS.md): the buffer starts with `initialBuffer` prior draws and gains `refillSamples`
/// reverse-SDE samples every `refillEvery` steps; each step regresses s_θ(x_t, t) on the
/// Monte-Carlo score S_K(x_t, t) = Σ_j softmax_j(−u(y_j)) (−∇u(y_j)), y_j = x_t + √h(t) ε_j,
/// with each particle's d-vector clipped at `scoreClip`, unweighted (λ = 1) and averaged
/// over coordinates.
extension DiffusionTrainer {
    func energyMatchingStep() throws -> StepReport {
        let c = configuration
        var ess = Double.nan, elbo = Double.nan
        if state.buffer.count == 0 { try addPriorDraws(localShare(of: c.initialBuffer)) }
        if state.step > 0 && state.step % c.refillEvery == 0 {
            let weights = try refill(localShare(of: c.refillSamples))
            ess = weights.effectiveSampleFraction
            elbo = weights.meanLogWeight
        }
        let loss = try regressionStep(try energyMatchingBatch())
        return StepReport(step: state.step, loss: loss, essFraction: ess, elbo: elbo, logZ: .nan,
                          energyEvaluations: 0, gradientEvaluations: 0)
    }

    /// Prior draws N(0, σ_max²) (uniform on a torus) into the buffer, with their energies.
    func addPriorDraws(_ count: Int) throws {
        let x = model.drawPrior(batch: count, rng: &state.rng).x
        let u = try system.evaluate(x, batch: count, withGradients: false).energies
        state.buffer.add(x, logRewards: u.map { -$0 })
    }

    /// Reverse-SDE samples into the buffer (chunks of 256); their importance weights.
    func refill(_ count: Int) throws -> ImportanceWeights {
        var logWeights: [Double] = []
        while logWeights.count < count {
            let m = min(256, count - logWeights.count)
            let paths = try model.sampleReverseSDE(batch: m, system: system, rng: &state.rng, keepStates: false)
            state.buffer.add(paths.samples, logRewards: paths.sampleEnergies.map { -$0 })
            logWeights += paths.logWeights
        }
        return ImportanceWeights(logWeights: logWeights)
    }

    /// A regression batch of iDEM from uniform buffer draws.
    public func energyMatchingBatch() throws -> RegressionBatch {
        let batch = localBatch
        let indices = state.buffer.sampleIndices(batch, priority: 0, rng: &state.rng)
        let (xt, times, _) = noisedBatch(state.buffer.gather(indices))
        let target = try monteCarloScore(at: xt, times: times)
        return RegressionBatch(noised: xt, times: times, target: target,
                               weights: [Double](repeating: 1, count: batch))
    }

    /// S_K at the points x_t [m, n·d] (times [m]), projected and clipped per particle.
    public func monteCarloScore(at xt: [Double], times: [Double]) throws -> [Double] {
        let stride = model.space.coordinateCount, batch = times.count, m = configuration.monteCarloSamples
        let draws = model.space.noise(batch: batch * m, rng: &state.rng)
        var y = [Double](repeating: 0, count: batch * m * stride)
        for b in 0..<batch {
            let s = model.noiseVariance(times[b]).squareRoot()
            for j in 0..<m {
                let base = (b * m + j) * stride
                for i in 0..<stride { y[base + i] = xt[b * stride + i] + s * draws[base + i] }
            }
        }
        model.space.constrain(&y)  // periodic: the energy is periodic, so S_K carries over
        let (u, g) = try system.evaluate(y, batch: batch * m, withGradients: true)
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
        model.space.project(&target)
        model.space.clipParticles(&target, maxNorm: configuration.scoreClip)
        return target
    }
}
