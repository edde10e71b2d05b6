import Equivariant
import Foundation

/// A regression batch of a score model (iDEM, denoising score matching): noised points
/// x_t [m, n·d], their times [m], the targets [m, n·d] and a per-point loss weight λ [m].
public struct RegressionBatch {
    public var noised: [Double]
    public var times: [Double]
    public var target: [Double]
    public var weights: [Double]

    public init(noised: [Double], times: [Double], target: [Double], weights: [Double]) {
        self.noised = noised
        self.times = times
        self.target = target
        self.weights = weights
    }
}

extension DiffusionTrainer {
    /// The VE-noised batch x_t = x_0 + √h(t) ε, t ~ U(0, 1), with h(t) = σ(t)² − σ_min²:
    /// returns (x_t, t, ε) with ε projected onto the space (x_t wrapped on a torus).
    func noisedBatch(_ x0: [Double]) -> (noised: [Double], times: [Double], noise: [Double]) {
        let stride = model.space.coordinateCount, batch = x0.count / stride
        let times = (0..<batch).map { _ in state.rng.uniform() }
        let noise = model.space.noise(batch: batch, rng: &state.rng)
        var xt = x0
        for b in 0..<batch {
            let s = model.noiseVariance(times[b]).squareRoot()
            for i in 0..<stride { xt[b * stride + i] += s * noise[b * stride + i] }
        }
        model.space.constrain(&xt)
        return (xt, times, noise)
    }

    /// L = (1/(m·n·d)) Σ_b λ_b |s_θ(x_t,b, t_b) − target_b|² (the mean over coordinates, as DEM
    /// averages) and dL/ds. Runs the network forward; `backward` may follow.
    public func regressionLoss(_ regression: RegressionBatch) -> (loss: Double, outputGradient: [Double]) {
        let batch = regression.times.count, stride = model.space.coordinateCount
        let score = model.network.forward(positions: regression.noised, times: regression.times)
        let scale = 1 / Double(batch * stride)
        var loss = 0.0
        var outputGradient = [Double](repeating: 0, count: score.count)
        for b in 0..<batch {
            let lambda = regression.weights[b]
            for i in 0..<stride {
                let e = score[b * stride + i] - regression.target[b * stride + i]
                loss += lambda * e * e * scale
                outputGradient[b * stride + i] = 2 * lambda * e * scale
            }
        }
        return (loss, outputGradient)
    }

    /// One Adam step on a regression batch (ranks: share-weighted mean of losses and gradients).
    /// Returns the (global) loss.
    func regressionStep(_ regression: RegressionBatch) throws -> Double {
        let (loss, outputGradient) = regressionLoss(regression)
        guard loss.isFinite else { throw DiffusionError.nonFinite(step: state.step, what: "loss") }
        model.zeroGradients()
        model.network.backward(outputGradient: outputGradient)
        let weight = Double(regression.times.count) / Double(configuration.batch)
        let meanLoss = try group?.averageGradients(of: model, loss: loss, weight: weight) ?? loss
        guard model.network.gradients.allSatisfy(\.isFinite) else {
            throw DiffusionError.nonFinite(step: state.step, what: "gradient")
        }
        state.optimizer.step(parameters: &model.network.parameters, gradients: model.network.gradients)
        return meanLoss
    }
}
