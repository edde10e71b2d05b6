import Equivariant
import Foundation
import PluginHost

/// Everything of a training run besides the network's parameters that a bit-identical
/// resume needs: step, RNG, optimisers, buffer, adaptive step size, budget so far.
public struct TrainerState: Codable, Equatable {
    public var step = 0
    public var rng: SeededGenerator
    public var optimizer: Adam<Double>
    /// log Z_θ.
    public var scalarOptimizer: Adam<Double>
    /// The Langevin scale table c_k.
    public var tableOptimizer: Adam<Double>
    public var buffer: ReplayBuffer
    public var localSearchStepSize = 1e-3
    /// The budget of the whole run, all ranks together: the trainer's books, the only ones.
    public var energyEvaluations = 0
    public var gradientEvaluations = 0
    public var trainingSeconds = 0.0
    /// Steps over which the exploration noise decays to zero.
    public var explorationHorizon = 1000
    /// Loss of every step so far (nil in checkpoints written before it was kept).
    public var lossHistory: [Double]? = []
}

/// What one training step did.
public struct StepReport {
    public var step: Int
    public var loss: Double
    /// ESS/N of the step's on-policy batch (nan for off-policy or regression steps).
    public var essFraction: Double
    /// Mean log-weight (ELBO, ≤ log Z) of the same batch; nan where essFraction is.
    public var elbo: Double = .nan
    public var logZ: Double
    public var energyEvaluations: Int
    public var gradientEvaluations: Int
}

/// The one training loop of every diffusion method: `step(state) -> state`. The method
/// (`configuration.method.training`) makes its batch and returns its loss and gradient; the
/// trainer applies the one Adam (Equivariant's) to the network, log Z and the Langevin table,
/// and keeps the evaluation counters, summed over ranks through the `reducer`.
public final class DiffusionTrainer {
    public let model: DiffusionModel
    public let system: EnergySystem
    public var state: TrainerState
    /// Combines gradients and counters over the ranks sharing each step's batch.
    public internal(set) var reducer: any GradientReducer = LocalReducer()
    /// The plugin's counters when this process started counting, and the run's totals then.
    private var systemStart: (energy: Int, gradient: Int)
    private var base: (energy: Int, gradient: Int)

    public var configuration: DiffusionConfiguration { model.configuration }
    /// What the step's method reads.
    public var context: TrainingContext { TrainingContext(model: model, system: system, reducer: reducer, step: state.step) }

    /// A fresh run.
    public convenience init(model: DiffusionModel, system: EnergySystem, explorationHorizon: Int = 1000) {
        let c = model.configuration
        var state = TrainerState(
            rng: SeededGenerator(seed: c.seed, stream: 1),
            optimizer: Adam(parameterCount: model.network.parameterCount, learningRate: c.learningRate,
                            clipNorm: c.gradientNormClip),
            scalarOptimizer: Adam(parameterCount: 1, learningRate: c.scalarLearningRate),
            tableOptimizer: Adam(parameterCount: c.timeSteps, learningRate: c.langevinLearningRate),
            buffer: ReplayBuffer(capacity: c.bufferCapacity, stride: model.space.coordinateCount))
        state.explorationHorizon = max(1, explorationHorizon)
        self.init(model: model, system: system, state: state)
    }

    /// Continues a run from a saved state (the model's parameters already restored).
    public init(model: DiffusionModel, system: EnergySystem, state: TrainerState) {
        self.model = model
        self.system = system
        self.state = state
        systemStart = (system.energyEvaluations, system.gradientEvaluations)
        base = (state.energyEvaluations, state.gradientEvaluations)
    }

    /// Joins a data-parallel group (or any reducer); counting restarts from the state's totals.
    func use(_ reducer: any GradientReducer) {
        self.reducer = reducer
        systemStart = (system.energyEvaluations, system.gradientEvaluations)
        base = (state.energyEvaluations, state.gradientEvaluations)
    }

    /// Energy and gradient evaluations of the whole run (resumed runs and all ranks included),
    /// as of the last step.
    public var energyEvaluations: Int { state.energyEvaluations }
    public var gradientEvaluations: Int { state.gradientEvaluations }

    /// One optimisation step of `state`: the method's loss and gradient, then Adam. The
    /// network's parameters, log Z and the Langevin table live in `model` and are updated in
    /// place; everything else of the run is in the returned state. Nothing is updated when the
    /// loss or a gradient is not finite (`DiffusionError.nonFinite`).
    public func step(_ state: TrainerState) throws -> (state: TrainerState, report: StepReport) {
        let clock = ContinuousClock.now
        var next = state
        let method = configuration.method.training
        let context = TrainingContext(model: model, system: system, reducer: reducer, step: state.step)
        let result: LossAndGradient
        do {
            result = try method.lossAndGradient(&next, context)
        } catch DiffusionError.divergedPositions(let k) {
            throw DiffusionError.nonFinite(step: state.step, what: "positions (the drift diverged at time step \(k); --tanh-range 15 bounds it)")
        }
        try apply(result, to: &next)
        try method.finish(&next, context)
        next.step += 1
        next.lossHistory?.append(result.loss)
        let counts = try reducer.sum([system.energyEvaluations - systemStart.energy,
                                      system.gradientEvaluations - systemStart.gradient])
        next.energyEvaluations = base.energy + counts[0]
        next.gradientEvaluations = base.gradient + counts[1]
        next.trainingSeconds += (ContinuousClock.now - clock).inSeconds
        let report = StepReport(step: next.step, loss: result.loss, essFraction: result.essFraction, elbo: result.elbo,
                                logZ: model.learnedLogZ ?? .nan,
                                energyEvaluations: next.energyEvaluations, gradientEvaluations: next.gradientEvaluations)
        return (next, report)
    }

    /// One step of the trainer's own state.
    @discardableResult
    public func step() throws -> StepReport {
        let (next, report) = try step(state)
        state = next
        return report
    }

    /// The optimisers' update from a step's gradients.
    private func apply(_ result: LossAndGradient, to state: inout TrainerState) throws {
        guard result.loss.isFinite else { throw DiffusionError.nonFinite(step: state.step, what: "loss") }
        guard result.network.allSatisfy(\.isFinite), result.table?.allSatisfy(\.isFinite) ?? true else {
            throw DiffusionError.nonFinite(step: state.step, what: "gradient")
        }
        state.optimizer.step(parameters: &model.network.parameters, gradients: result.network)
        if let dz = result.logZ {
            var logZ = [model.logZ]
            state.scalarOptimizer.step(parameters: &logZ, gradients: [dz])
            model.logZ = logZ[0]
        }
        if let table = result.table {
            state.tableOptimizer.step(parameters: &model.langevinScale, gradients: table)
        }
    }
}
