import Equivariant
import Foundation
import PluginHost

/// Everything of a training run that a bit-identical resume needs: the learnable parameters,
/// step, RNG, optimisers, buffer, adaptive step size, budget so far. The model only applies
/// the parameters it is handed (the `apply` of a (params, apply) pair).
public struct TrainerState: Codable, Equatable {
    /// The network's flat parameters (Equivariant's layout), as the network stores them: the
    /// Float engine's are Float values, so a Float run is bit-identical to its resumption.
    public var parameters: [Double]
    /// [log Z_θ, c_0 … c_{K−1}] (the Langevin scale table).
    public var scalars: [Double]
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
    /// Exponential moving average of `parameters` (with `averageHalfLife`; what sampling uses).
    public var averageParameters: [Double]? = nil
    /// σ_d: the rms coordinate of the training data after removing each frame's centre
    /// (EDM preconditioning), set when the data are made.
    public var dataScale: Double? = nil
    /// Held-out data frames [m, n·d] (with `validationFraction`), never trained on.
    public var validationData: [Double]? = nil
    /// (step, validation loss of the averaged parameters) every `validationEvery` steps.
    public var validationHistory: [ValidationPoint]? = nil
    /// ln β of each buffer entry's data (temperature-conditioned dsm: every PT replica).
    public var dataLogBetas: [Double]? = nil
}

/// A validation loss: the regression loss of held-out frames at fixed noise draws.
public struct ValidationPoint: Codable, Equatable, Sendable {
    public var step: Int
    public var loss: Double
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

    public var configuration: DiffusionConfiguration { model.configuration }
    /// What the step's method reads.
    public var context: TrainingContext { TrainingContext(model: model, system: system, reducer: reducer, step: state.step) }

    /// A fresh run.
    public convenience init(model: DiffusionModel, system: EnergySystem, explorationHorizon: Int = 1000) {
        let c = model.configuration
        var state = TrainerState(
            parameters: model.networkParameters, scalars: model.scalars,
            rng: SeededGenerator(seed: c.seed, stream: 1),
            optimizer: Adam(parameterCount: model.network.parameterCount, learningRate: c.learningRate,
                            clipNorm: c.gradientNormClip),
            scalarOptimizer: Adam(parameterCount: 1, learningRate: c.scalarLearningRate),
            tableOptimizer: Adam(parameterCount: c.timeSteps, learningRate: c.langevinLearningRate),
            buffer: ReplayBuffer(capacity: c.bufferCapacity, stride: model.space.coordinateCount))
        state.explorationHorizon = max(1, explorationHorizon)
        self.init(model: model, system: system, state: state)
    }

    /// Continues a run from a saved state (the model takes the state's parameters).
    public init(model: DiffusionModel, system: EnergySystem, state: TrainerState) {
        model.load(state)
        self.model = model
        self.system = system
        self.state = state
    }

    /// Joins a data-parallel group (or any reducer).
    func use(_ reducer: any GradientReducer) { self.reducer = reducer }

    /// Energy and gradient evaluations of the whole run (resumed runs and all ranks included),
    /// as of the last step.
    public var energyEvaluations: Int { state.energyEvaluations }
    public var gradientEvaluations: Int { state.gradientEvaluations }

    /// One optimisation step of `state`: the model takes the state's parameters, the method
    /// returns its loss and gradient, Adam moves the parameters; the returned state is the
    /// next one and `state` is left as it was. The model is left holding the parameters of
    /// the last state it computed with (the returned one after a step that finishes). Nothing
    /// is returned when the loss or a gradient is not finite (`DiffusionError.nonFinite`).
    public func step(_ state: TrainerState) throws -> (state: TrainerState, report: StepReport) {
        let clock = ContinuousClock.now
        let systemStart = (energy: system.energyEvaluations, gradient: system.gradientEvaluations)
        model.load(state)
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
        if let frames = next.validationData, next.step % configuration.validationEvery == 0 {
            let point = ValidationPoint(step: next.step, loss: validationLoss(frames, state: next))
            next.validationHistory = (next.validationHistory ?? []) + [point]
        }
        let counts = try reducer.sum([system.energyEvaluations - systemStart.energy,
                                      system.gradientEvaluations - systemStart.gradient])
        next.energyEvaluations = state.energyEvaluations + counts[0]
        next.gradientEvaluations = state.gradientEvaluations + counts[1]
        next.trainingSeconds += (ContinuousClock.now - clock).inSeconds
        let report = StepReport(step: next.step, loss: result.loss, essFraction: result.essFraction, elbo: result.elbo,
                                logZ: model.learnedLogZ ?? .nan,
                                energyEvaluations: next.energyEvaluations, gradientEvaluations: next.gradientEvaluations)
        return (next, report)
    }

    /// The validation loss of held-out frames (at most 1000) under the state's averaged
    /// parameters (its parameters without an average); the model is left holding the state's parameters.
    public func validationLoss(_ frames: [Double], state: TrainerState) -> Double {
        let stride = model.space.coordinateCount
        let used = Array(frames.prefix(1000 * stride))
        model.loadForSampling(state)
        defer { model.load(state) }
        return DenoisingScoreMatching.validationLoss(used, model: model, seed: configuration.seed)
    }

    /// One step of the trainer's own state.
    @discardableResult
    public func step() throws -> StepReport {
        let (next, report) = try step(state)
        state = next
        return report
    }

    /// The optimisers' update of the state's parameters from a step's gradients; the model
    /// takes the new parameters, and the state keeps them as the model stores them.
    private func apply(_ result: LossAndGradient, to state: inout TrainerState) throws {
        guard result.loss.isFinite else { throw DiffusionError.nonFinite(step: state.step, what: "loss") }
        guard result.network.allSatisfy(\.isFinite), result.table?.allSatisfy(\.isFinite) ?? true else {
            throw DiffusionError.nonFinite(step: state.step, what: "gradient")
        }
        state.optimizer.learningRate = configuration.learningRate(atStep: state.step)
        state.optimizer.step(parameters: &state.parameters, gradients: result.network)
        if let dz = result.logZ {
            var logZ = [state.scalars[0]]
            state.scalarOptimizer.step(parameters: &logZ, gradients: [dz])
            state.scalars[0] = logZ[0]
        }
        if let table = result.table {
            var scale = Array(state.scalars.dropFirst())
            state.tableOptimizer.step(parameters: &scale, gradients: table)
            state.scalars = [state.scalars[0]] + scale
        }
        model.load(state)
        state.parameters = model.networkParameters
        if let halfLife = configuration.averageHalfLife {
            state.averageParameters = Self.average(state.averageParameters, state.parameters, step: state.step,
                                                   halfLife: halfLife)
        }
    }

    /// ema ← δ ema + (1 − δ) θ with δ = min(2^(−1/halfLife), (1 + t)/(10 + t)): the warm-up term
    /// keeps the first steps' parameters from lingering in a short run's average.
    static func average(_ ema: [Double]?, _ parameters: [Double], step t: Int, halfLife: Double) -> [Double] {
        guard var ema, ema.count == parameters.count else { return parameters }
        let decay = min(pow(2, -1 / halfLife), Double(1 + t) / Double(10 + t))
        for i in ema.indices { ema[i] = decay * ema[i] + (1 - decay) * parameters[i] }
        return ema
    }
}

extension DiffusionConfiguration {
    /// A training noise level σ of an EDM model (`noiseLevels`, within [σ_min, σ_max]).
    func drawNoiseLevel(rng: inout SeededGenerator) -> Double {
        let lo = log(sigmaMin), hi = log(sigmaMax)
        var levels = noiseLevels ?? .logUniform
        if case .mixture(let mean, let std, let uniform) = levels {
            levels = rng.uniform() < uniform ? .logUniform : .logNormal(mean: mean, std: std)
        }
        switch levels {
        case .logUniform, .mixture: return exp(lo + (hi - lo) * rng.uniform())
        case .logNormal(let mean, let std):
            for _ in 0..<1000 {
                let v = mean + std * rng.normal()
                if v >= lo && v <= hi { return exp(v) }
            }
            return exp(min(max(mean, lo), hi))
        }
    }

    /// The network's learning rate at a step: linear warm-up over `warmupSteps`, constant, then
    /// lr·√(decayStart/step) after `decayStart`.
    public func learningRate(atStep step: Int) -> Double {
        var rate = learningRate
        if let w = warmupSteps, w > 0, step < w { rate *= Double(step + 1) / Double(w) }
        if let d = decayStart, step > d { rate *= (Double(d) / Double(step)).squareRoot() }
        return rate
    }
}
