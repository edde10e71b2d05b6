import Equivariant
import Foundation

/// A regression batch of a score model (iDEM, denoising score matching): noised points
/// x_t [m, n·d], their times [m], the targets [m, n·d] and a per-point loss weight λ [m].
public struct RegressionBatch {
    public var noised: [Double]
    public var times: [Double]
    public var target: [Double]
    public var weights: [Double]
    /// ln β of each point's data (temperature-conditioned models); nil: the model's `logBeta`.
    public var logBetas: [Double]?

    public init(noised: [Double], times: [Double], target: [Double], weights: [Double], logBetas: [Double]? = nil) {
        self.noised = noised
        self.times = times
        self.target = target
        self.weights = weights
        self.logBetas = logBetas
    }
}

/// What the score methods (iDEM, dsm) share: VE-noised batches and the regression loss.
public enum ScoreRegression {
    /// The VE-noised batch x_t = x_0 + √h(t) ε, t ~ U(0, 1), with h(t) = σ(t)² − σ_min²:
    /// returns (x_t, t, ε) with ε projected onto the space (x_t wrapped on a torus).
    static func noisedBatch(_ x0: [Double], model: DiffusionModel, rng: inout SeededGenerator)
        -> (noised: [Double], times: [Double], noise: [Double]) {
        let stride = model.space.coordinateCount, batch = x0.count / stride
        let times = (0..<batch).map { _ in rng.uniform() }
        let noise = model.space.noise(batch: batch, rng: &rng)
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
    public static func loss(_ regression: RegressionBatch, model: DiffusionModel) -> (loss: Double, outputGradient: [Double]) {
        let batch = regression.times.count, stride = model.space.coordinateCount
        let conditions = model.isTemperatureConditioned ? regression.logBetas ?? model.conditions(batch) : []
        let score = model.network.forward(positions: regression.noised, times: regression.times, conditions: conditions)
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

    /// The loss and gradient of a regression batch; over ranks the share-weighted mean of the
    /// losses and gradients (weight = share/B; exactly 1 alone).
    static func lossAndGradient(_ regression: RegressionBatch, _ context: TrainingContext) throws -> LossAndGradient {
        let model = context.model
        let (loss, outputGradient) = Self.loss(regression, model: model)
        guard loss.isFinite else { throw DiffusionError.nonFinite(step: context.step, what: "loss") }
        model.zeroGradients()
        model.network.backward(outputGradient: outputGradient)
        let weight = Double(regression.times.count) / Double(context.configuration.batch)
        let count = model.network.gradients.count
        let total = try context.reducer.sum(model.network.gradients.map { $0 * weight } + [loss * weight])
        return LossAndGradient(loss: total[count], network: Array(total[..<count]))
    }
}

extension DiffusionTrainer {
    /// The regression loss of `regression` under the current network (see `ScoreRegression.loss`).
    public func regressionLoss(_ regression: RegressionBatch) -> (loss: Double, outputGradient: [Double]) {
        ScoreRegression.loss(regression, model: model)
    }
}
