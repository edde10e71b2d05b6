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

/// The path objectives (one file each: `TrajectoryBalance.swift`, `LogVariance.swift`).
public enum PathObjective {
    /// The options of `ensemble train` that every path method reads (its registration's `options`).
    public static let commandLineOptions: Set<String> = [
        "--langevin-preconditioning", "--noise-scale", "--exploration", "--exploration-steps", "--no-replay",
        "--local-search-every", "--energy-clip", "--langevin-clip", "--langevin-init",
    ]
}

/// The path methods (tb, logvar; docs/samplers.md): a batch of trajectories — on-policy PIS paths
/// on even steps, on odd steps (with `useBuffer`) paths of the reference's backward process
/// from prioritised buffer samples — and a path objective of their log-ratios. Local search
/// (MALA on buffer samples) follows the update every `localSearchEvery` steps.
public struct PathTraining: TrainingMethod {
    /// The objective of the residuals and log Z.
    public var objective: ([Double], Double) -> ObjectiveValue
    /// Whether log Z_θ is learned (its gradient is applied).
    public var learnsLogZ: Bool
    public var process: DiffusionProcess { .pinnedBrownian }

    public struct Batch {
        public var paths: DiffusionPaths
        public var onPolicy: Bool
    }

    public func batch(_ state: inout TrainerState, _ context: TrainingContext) throws -> Batch {
        let c = context.configuration, batch = context.localBatch, model = context.model
        if c.useBuffer && state.step % 2 == 1 && state.buffer.count >= batch {
            let indices = state.buffer.sampleIndices(batch, priority: c.rankPriority, rng: &state.rng)
            let x = state.buffer.gather(indices)
            let energies = indices.map { -state.buffer.logRewards[$0] }
            let paths = try model.backwardPaths(from: x, energies: energies, system: context.system, rng: &state.rng)
            return Batch(paths: paths, onPolicy: false)
        }
        let decay = max(0, 1 - Double(state.step) / Double(state.explorationHorizon))
        let exploration = c.exploration * decay
        let paths: DiffusionPaths
        if let shards = context.reducer.onPolicyShards {
            paths = try Self.shardedPaths(shards, context: context, exploration: exploration)
        } else {
            paths = try model.samplePIS(batch: batch, system: context.system, rng: &state.rng, exploration: exploration)
        }
        state.buffer.add(paths.samples, logRewards: paths.sampleEnergies.map { -$0 })
        return Batch(paths: paths, onPolicy: true)
    }

    public func lossAndGradient(_ batch: Batch, _ context: TrainingContext) throws -> LossAndGradient {
        let model = context.model, c = context.configuration, paths = batch.paths
        let forward = model.pathResiduals(paths)
        var residuals = forward.residuals
        if let u0 = c.energyClip {  // training reward only (u is data: the gradient is unchanged in form)
            for b in residuals.indices where paths.sampleEnergies[b] > u0 {
                let u = paths.sampleEnergies[b]
                residuals[b] += u0 + log1p(u - u0) - u
            }
        }
        // Every rank's residuals and exact log-weights, in shard order, from one gather.
        let parts = try context.reducer.gather(residuals + forward.residuals.map { -$0 })
        let offset = parts[..<context.reducer.rank].reduce(0) { $0 + $1.count / 2 }
        let all = parts.flatMap { $0[..<($0.count / 2)] }, weights = parts.flatMap { $0[($0.count / 2)...] }
        var result = LossAndGradient(loss: 0, network: [])
        if batch.onPolicy {
            let w = ImportanceWeights(logWeights: weights)
            result.essFraction = w.effectiveSampleFraction
            result.elbo = w.meanLogWeight
        }
        let value = objective(all, model.logZ)
        guard value.loss.isFinite else { throw DiffusionError.nonFinite(step: context.step, what: "loss") }
        model.zeroGradients()
        let table = model.backpropagate(forward,
                                        residualGradient: Array(value.residualGradient[offset..<(offset + paths.batch)]))
        let count = model.network.gradients.count
        let total = try context.reducer.sum(model.network.gradients + table)
        result.loss = value.loss
        result.network = Array(total[..<count])
        result.table = c.langevinPreconditioning ? Array(total[count...]) : nil
        result.logZ = learnsLogZ ? value.logZGradient : nil
        return result
    }

    /// Local search when due: MALA on prioritised buffer samples; the results enter the buffer.
    public func finish(_ state: inout TrainerState, _ context: TrainingContext) throws {
        let c = context.configuration, batch = context.localBatch
        guard c.localSearchEvery > 0 && (state.step + 1) % c.localSearchEvery == 0 && state.buffer.count >= batch else { return }
        let indices = state.buffer.sampleIndices(batch, priority: c.rankPriority, rng: &state.rng)
        var x = state.buffer.gather(indices)
        let result = try LocalSearch.mala(&x, batch: batch, steps: c.localSearchSteps,
                                          stepSize: &state.localSearchStepSize, space: context.model.space,
                                          system: context.system, rng: &state.rng)
        state.buffer.add(x, logRewards: result.energies.map { -$0 })
    }

    /// On-policy PIS paths of this process's shards: shard k at step s draws from its own
    /// stream (seed, s, k), whichever rank runs it, so 1 rank with S shards and S ranks make
    /// the same batch.
    static func shardedPaths(_ shards: (count: Int, mine: Range<Int>), context: TrainingContext,
                             exploration: Double) throws -> DiffusionPaths {
        let model = context.model
        var joined: DiffusionPaths?
        for shard in shards.mine {
            var rng = SeededGenerator(seed: SeededGenerator.derivedSeed(
                model.configuration.seed, 0x5348_4152_44, UInt64(context.step), UInt64(shard)))  // "SHARD"
            let size = ChainRunner.block(context.configuration.batch, parts: shards.count, part: shard).count
            let paths = try model.samplePIS(batch: size, system: context.system, rng: &rng, exploration: exploration)
            joined = joined.map { $0.appending(paths) } ?? paths
        }
        return joined!
    }
}

extension DiffusionPaths {
    /// This batch followed by `other`'s trajectories.
    func appending(_ other: DiffusionPaths) -> DiffusionPaths {
        DiffusionPaths(batch: batch + other.batch,
                       states: zip(states, other.states).map { $0 + $1 },
                       sampleEnergies: sampleEnergies + other.sampleEnergies,
                       energyGradients: zip(energyGradients, other.energyGradients).map { $0 + $1 },
                       logWeights: logWeights + other.logWeights)
    }
}
