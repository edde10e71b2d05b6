import Foundation
import PluginHost

/// What a training method reads besides the trainer's state: the model, the energy, the
/// gradient reducer and the step being made.
public struct TrainingContext {
    public let model: DiffusionModel
    public let system: EnergySystem
    public let reducer: any GradientReducer
    /// The step being made (0-based), for messages and schedules.
    public let step: Int

    public var configuration: DiffusionConfiguration { model.configuration }
    /// This process's share of a count split over the ranks.
    public func share(of count: Int) -> Int { reducer.share(of: count) }
    /// The part of the batch this process handles.
    public var localBatch: Int { share(of: configuration.batch) }
}

/// A step's loss and its gradients, already combined over the ranks, with what the step
/// learned about the sampler on the way.
public struct LossAndGradient {
    /// The loss of the global batch.
    public var loss: Double
    /// dL/dθ of the network (Equivariant's flat layout).
    public var network: [Double]
    /// dL/d log Z_θ, for methods that learn log Z (trajectory balance).
    public var logZ: Double? = nil
    /// dL/dc of the Langevin scale table (path methods with preconditioning).
    public var table: [Double]? = nil
    /// ESS/N and mean log-weight of the step's on-policy samples (nan when none).
    public var essFraction = Double.nan
    public var elbo = Double.nan
}

/// A training method as a value: it makes its batch (paths or regression points; this is
/// where it draws from the generator, the buffer and the energy) and returns the loss and
/// its gradient; the trainer applies the optimisers and keeps the books. Adding a method is
/// one file (the conformance, its name and its `TrainingMethodRegistration`) plus one line in
/// `TrainingMethodRegistry.all`.
public protocol TrainingMethod {
    associatedtype Batch
    /// The step's batch; may draw from and add to the state's generator and buffer.
    func batch(_ state: inout TrainerState, _ context: TrainingContext) throws -> Batch
    /// The loss on `batch` and its gradients, reduced over the ranks.
    /// - Throws: `DiffusionError.nonFinite` when the loss is not finite.
    func lossAndGradient(_ batch: Batch, _ context: TrainingContext) throws -> LossAndGradient
    /// Work after the parameter update (local search); none by default.
    func finish(_ state: inout TrainerState, _ context: TrainingContext) throws
    /// Whether the method learns log Z_θ (false by default).
    var learnsLogZ: Bool { get }
    /// The process its model samples by: the VE reverse SDE of a score model, or the PIS
    /// forward policy of a path model.
    var process: DiffusionProcess { get }
    /// Whether the network of a model of `configuration` predicts the noise ε, so that the score
    /// is −ε_θ/√h (false by default: the network is the score).
    func predictsNoise(_ configuration: DiffusionConfiguration) -> Bool
    /// Refuses a configuration this method cannot train (called by `DiffusionConfiguration.validate`
    /// after the checks every method shares). By default: no EDM parameterization.
    /// - Throws: `DiffusionError.invalidConfiguration` naming the field.
    func validate(_ configuration: DiffusionConfiguration) throws
    /// What one element of the batch holds at once, for the memory check of `ensemble train`:
    /// `points` configurations of `arrays` coordinate arrays each, named `what`. By default: a
    /// path's time points (path models) or one noised point (score models).
    func batchFootprint(_ configuration: DiffusionConfiguration) -> (points: Int, arrays: Int, what: String)
}

/// How a trained model samples.
public enum DiffusionProcess: Sendable {
    /// A score model: the variance-exploding reverse SDE (or its probability flow).
    case varianceExploding
    /// A path model: the PIS forward policy from a pinned-Brownian reference, trained on path log-ratios.
    case pinnedBrownian
}

extension TrainingMethod {
    public var learnsLogZ: Bool { false }
    public func predictsNoise(_ configuration: DiffusionConfiguration) -> Bool { false }
    public func finish(_ state: inout TrainerState, _ context: TrainingContext) throws {}
    public func validate(_ configuration: DiffusionConfiguration) throws {
        if configuration.parameterization == .edm {
            throw DiffusionError.invalidConfiguration("the EDM parameterization is for dsm only")
        }
    }
    public func batchFootprint(_ configuration: DiffusionConfiguration) -> (points: Int, arrays: Int, what: String) {
        process == .pinnedBrownian ? (configuration.timeSteps + 1, 3, "time points") : (1, 4, "point")
    }

    /// Batch, then loss and gradient (opens the existential for the trainer).
    func lossAndGradient(_ state: inout TrainerState, _ context: TrainingContext) throws -> LossAndGradient {
        try lossAndGradient(batch(&state, context), context)
    }
}
