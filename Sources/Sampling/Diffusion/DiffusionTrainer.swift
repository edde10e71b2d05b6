import Equivariant
import Foundation
import PluginHost

/// A loss over a batch of path log-ratios r_b = log p_F − log p_B + u(x_K), with its
/// gradients: one signature for every path objective, so they are interchangeable.
public struct ObjectiveValue {
    public var loss: Double
    /// dL/dr_b.
    public var residualGradient: [Double]
    /// dL/d log Z_θ (0 when the objective has no log Z).
    public var logZGradient: Double
}

public enum PathObjective {
    /// Trajectory balance: L = mean_b (log Z_θ + r_b)².
    public static func trajectoryBalance(residuals r: [Double], logZ: Double) -> ObjectiveValue {
        let n = Double(r.count)
        var loss = 0.0, dz = 0.0
        var dr = [Double](repeating: 0, count: r.count)
        for b in r.indices {
            let e = logZ + r[b]
            loss += e * e / n
            dr[b] = 2 * e / n
            dz += 2 * e / n
        }
        return ObjectiveValue(loss: loss, residualGradient: dr, logZGradient: dz)
    }

    /// Log-variance (VarGrad): L = mean_b (r_b − r̄)²; log Z is not used.
    public static func logVariance(residuals r: [Double], logZ: Double) -> ObjectiveValue {
        let n = Double(r.count)
        let mean = r.reduce(0, +) / n
        var loss = 0.0
        var dr = [Double](repeating: 0, count: r.count)
        for b in r.indices {
            let e = r[b] - mean
            loss += e * e / n
            dr[b] = 2 * e / n  // the mean's own derivative sums to zero
        }
        return ObjectiveValue(loss: loss, residualGradient: dr, logZGradient: 0)
    }

    public static func function(for method: DiffusionMethod) -> (([Double], Double) -> ObjectiveValue)? {
        switch method {
        case .tb: return trajectoryBalance
        case .logvar: return logVariance
        case .idem, .dsm: return nil
        }
    }
}

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

/// The one training loop of every diffusion objective.
public final class DiffusionTrainer {
    public let model: DiffusionModel
    public let system: EnergySystem
    public var state: TrainerState
    /// Data-parallel ranks sharing each step's batch (nil: this process alone).
    public internal(set) var group: DataParallelGroup?
    private var systemEnergyStart: Int
    private var systemGradientStart: Int
    private var baseEnergy: Int
    private var baseGradient: Int

    public var configuration: DiffusionConfiguration { model.configuration }
    /// The part of the batch this process handles: all of it, or its ranks' share.
    var localBatch: Int { localShare(of: configuration.batch) }
    /// This process's share of a count split over the data-parallel ranks.
    func localShare(of count: Int) -> Int { group?.share(of: count) ?? count }

    /// A fresh run.
    public init(model: DiffusionModel, system: EnergySystem, explorationHorizon: Int = 1000) {
        self.model = model
        self.system = system
        let c = model.configuration
        state = TrainerState(
            rng: SeededGenerator(seed: c.seed, stream: 1),
            optimizer: Adam(parameterCount: model.network.parameterCount, learningRate: c.learningRate,
                            clipNorm: c.gradientNormClip),
            scalarOptimizer: Adam(parameterCount: 1, learningRate: c.scalarLearningRate),
            tableOptimizer: Adam(parameterCount: c.timeSteps, learningRate: c.langevinLearningRate),
            buffer: ReplayBuffer(capacity: c.bufferCapacity, stride: model.space.coordinateCount))
        state.explorationHorizon = max(1, explorationHorizon)
        systemEnergyStart = system.energyEvaluations
        systemGradientStart = system.gradientEvaluations
        baseEnergy = 0
        baseGradient = 0
    }

    /// Continues a run from a saved state (the model's parameters already restored).
    public init(model: DiffusionModel, system: EnergySystem, state: TrainerState) {
        self.model = model
        self.system = system
        self.state = state
        systemEnergyStart = system.energyEvaluations
        systemGradientStart = system.gradientEvaluations
        baseEnergy = state.energyEvaluations
        baseGradient = state.gradientEvaluations
    }

    /// Energy and gradient evaluations of the whole run (resumed runs included).
    public var energyEvaluations: Int { baseEnergy + system.energyEvaluations - systemEnergyStart }
    public var gradientEvaluations: Int { baseGradient + system.gradientEvaluations - systemGradientStart }

    /// One optimisation step. Parameters are left untouched when the loss or a gradient is
    /// not finite (`DiffusionError.nonFinite`).
    @discardableResult
    public func step() throws -> StepReport {
        let clock = ContinuousClock.now
        var report: StepReport
        do {
            switch configuration.method {
            case .tb, .logvar: report = try pathStep()
            case .idem: report = try energyMatchingStep()
            case .dsm: report = try scoreMatchingStep()
            }
        } catch DiffusionError.divergedPositions(let k) {
            throw DiffusionError.nonFinite(step: state.step, what: "positions (the drift diverged at time step \(k); --tanh-range 15 bounds it)")
        }
        state.step += 1
        state.lossHistory?.append(report.loss)
        state.energyEvaluations = energyEvaluations
        state.gradientEvaluations = gradientEvaluations
        let elapsed = ContinuousClock.now - clock
        state.trainingSeconds += elapsed.inSeconds
        report.step = state.step
        report.energyEvaluations = energyEvaluations
        report.gradientEvaluations = gradientEvaluations
        return report
    }

    // MARK: - Trajectory balance / log-variance

    private func pathStep() throws -> StepReport {
        let c = configuration, batch = localBatch
        let fromBuffer = c.useBuffer && state.step % 2 == 1 && state.buffer.count >= batch
        let paths: DiffusionPaths
        var ess = Double.nan
        if fromBuffer {
            let indices = state.buffer.sampleIndices(batch, priority: c.rankPriority, rng: &state.rng)
            let x = state.buffer.gather(indices)
            let energies = indices.map { -state.buffer.logRewards[$0] }
            paths = try model.backwardPaths(from: x, energies: energies, system: system, rng: &state.rng)
        } else {
            let decay = max(0, 1 - Double(state.step) / Double(state.explorationHorizon))
            if let group {
                paths = try group.onPolicyPaths(model: model, system: system, batch: c.batch, step: state.step,
                                                exploration: c.exploration * decay)
            } else {
                paths = try model.samplePIS(batch: batch, system: system, rng: &state.rng,
                                            exploration: c.exploration * decay)
            }
            state.buffer.add(paths.samples, logRewards: paths.sampleEnergies.map { -$0 })
        }
        let exact = model.pathResiduals(paths)
        var residuals = exact, offset = 0
        if let u0 = c.energyClip {  // training reward only (u is data: the gradient is unchanged in form)
            for b in residuals.indices where paths.sampleEnergies[b] > u0 {
                let u = paths.sampleEnergies[b]
                residuals[b] += u0 + log1p(u - u0) - u
            }
        }
        var weights = exact.map { -$0 }
        if let group { (residuals, weights, offset) = try group.allResiduals(residuals, logWeights: weights) }
        var elbo = Double.nan
        if !fromBuffer {
            let w = ImportanceWeights(logWeights: weights)
            ess = w.effectiveSampleFraction
            elbo = w.meanLogWeight
        }
        let objective = PathObjective.function(for: c.method)!(residuals, model.logZ)
        guard objective.loss.isFinite else { throw DiffusionError.nonFinite(step: state.step, what: "loss") }
        model.zeroGradients()
        var tableGradient = model.backpropagate(
            residualGradient: Array(objective.residualGradient[offset..<(offset + batch)]))
        try group?.sumGradients(of: model, table: &tableGradient)
        guard model.network.gradients.allSatisfy(\.isFinite), tableGradient.allSatisfy(\.isFinite) else {
            throw DiffusionError.nonFinite(step: state.step, what: "gradient")
        }
        state.optimizer.step(parameters: &model.network.parameters, gradients: model.network.gradients)
        if c.method == .tb {
            var logZ = [model.logZ]
            state.scalarOptimizer.step(parameters: &logZ, gradients: [objective.logZGradient])
            model.logZ = logZ[0]
        }
        if c.langevinPreconditioning {
            state.tableOptimizer.step(parameters: &model.langevinScale, gradients: tableGradient)
        }
        if c.localSearchEvery > 0 && (state.step + 1) % c.localSearchEvery == 0 && state.buffer.count >= batch {
            try localSearch()
        }
        return StepReport(step: state.step, loss: objective.loss, essFraction: ess, elbo: elbo, logZ: model.logZ,
                          energyEvaluations: 0, gradientEvaluations: 0)
    }

    /// MALA on prioritised buffer samples; the results enter the buffer.
    private func localSearch() throws {
        let c = configuration, batch = localBatch
        let indices = state.buffer.sampleIndices(batch, priority: c.rankPriority, rng: &state.rng)
        var x = state.buffer.gather(indices)
        let result = try LocalSearch.mala(&x, batch: batch, steps: c.localSearchSteps,
                                          stepSize: &state.localSearchStepSize, space: model.space,
                                          system: system, rng: &state.rng)
        state.buffer.add(x, logRewards: result.energies.map { -$0 })
    }
}
