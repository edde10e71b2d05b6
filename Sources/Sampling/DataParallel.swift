import Distributed
import Foundation
import PluginHost

/// Data-parallel training over the ranks of a `Communicator` (set as `DiffusionTrainer.group`).
///
/// The global batch B is cut into `shards` contiguous shards (sizes differ by at most one) and
/// rank r takes the contiguous block of shards `MCMCRunner.block(shards, parts: ranks, part: r)`.
/// On-policy trajectories of shard k at step s are drawn from their own stream
/// (configuration seed, s, k), whichever rank runs them, so the same seed and shard count give
/// the same batch with 1 rank (`--shards S`) or S ranks. The path objective is evaluated on
/// every rank's residuals (gathered in shard order), each rank back-propagates its slice of
/// dL/dr, and the gradients are summed over ranks in rank order on rank 0 and broadcast:
/// every rank applies the same Adam step and keeps the same parameters. Runs of different
/// rank counts then differ only in the order the per-trajectory gradients are added.
///
/// Off-policy parts are per rank: each rank keeps its own replay buffer (filled with its own
/// samples) and its own generator for buffer draws and local search (rank 0 the
/// checkpoint's; rank r > 0 one derived from it and r). iDEM likewise: each rank regresses on
/// its share of the points from its own buffer; the loss and gradients are averaged with
/// weights share/B.
public final class DataParallelGroup {
    public let communicator: Communicator
    /// Shards of the global batch (≥ ranks).
    public let shards: Int
    private var baseEnergy = 0, baseGradient = 0

    public init(communicator: Communicator, shards: Int) {
        precondition(shards >= communicator.size, "fewer shards than ranks")
        self.communicator = communicator
        self.shards = shards
    }

    /// This rank's shards.
    public var shardBlock: Range<Int> { MCMCRunner.block(shards, parts: communicator.size, part: communicator.rank) }

    /// The items of the global `batch` this rank handles: its shards, in order.
    public func items(of batch: Int) -> Range<Int> {
        let block = shardBlock
        return MCMCRunner.block(batch, parts: shards, part: block.lowerBound).lowerBound
            ..< MCMCRunner.block(batch, parts: shards, part: block.upperBound - 1).upperBound
    }

    /// How many of the global `batch` this rank handles.
    public func share(of batch: Int) -> Int { items(of: batch).count }

    /// Joins `trainer` (fresh or resumed): rank r > 0 draws its buffer samples and local
    /// searches from a generator of its own.
    public func attach(_ trainer: DiffusionTrainer) {
        trainer.group = self
        if communicator.rank > 0 {
            var parent = trainer.state.rng
            trainer.state.rng = SeededGenerator(seed: SeededGenerator.rankSeed(parent.next(), rank: communicator.rank))
        }
        baseEnergy = trainer.state.energyEvaluations
        baseGradient = trainer.state.gradientEvaluations
    }

    /// One training step of every rank; the budget counters become totals over all ranks.
    public func step(_ trainer: DiffusionTrainer) throws -> StepReport {
        var report = try trainer.step()
        let counts = try communicator.sum([trainer.energyEvaluations - baseEnergy,
                                           trainer.gradientEvaluations - baseGradient])
        trainer.state.energyEvaluations = baseEnergy + counts[0]
        trainer.state.gradientEvaluations = baseGradient + counts[1]
        report.energyEvaluations = trainer.state.energyEvaluations
        report.gradientEvaluations = trainer.state.gradientEvaluations
        return report
    }

    // MARK: - Hooks of DiffusionTrainer

    /// On-policy PIS paths of this rank's shards at training step `step`.
    func onPolicyPaths(model: DiffusionModel, system: EnergySystem, batch: Int, step: Int,
                       exploration: Double) throws -> DiffusionPaths {
        var joined: DiffusionPaths?
        for shard in shardBlock {
            var rng = SeededGenerator(seed: SeededGenerator.derivedSeed(
                model.configuration.seed, 0x5348_4152_44, UInt64(step), UInt64(shard)))  // "SHARD"
            let size = MCMCRunner.block(batch, parts: shards, part: shard).count
            let paths = try model.samplePIS(batch: size, system: system, rng: &rng, exploration: exploration)
            joined = joined.map { Self.concatenate($0, paths) } ?? paths
        }
        return joined!
    }

    /// Every rank's path residuals (as trained on) and log-weights (exact), in shard order, from
    /// one all-gather; and where this rank's begin.
    func allResiduals(_ residuals: [Double], logWeights: [Double]) throws
        -> (residuals: [Double], logWeights: [Double], offset: Int) {
        precondition(residuals.count == logWeights.count)
        let parts = try communicator.allGather(residuals + logWeights)
        let offset = parts[..<communicator.rank].reduce(0) { $0 + $1.count / 2 }
        var all: [Double] = [], weights: [Double] = []
        for part in parts {
            all += part[..<(part.count / 2)]
            weights += part[(part.count / 2)...]
        }
        return (all, weights, offset)
    }

    /// Sums the network's gradients and the Langevin table's over ranks (rank order).
    func sumGradients(of model: DiffusionModel, table: inout [Double]) throws {
        guard communicator.isDistributed else { return }
        let count = model.network.gradients.count
        let total = try communicator.sum(model.network.gradients + table)
        model.network.gradients = Array(total[..<count])
        table = Array(total[count...])
    }

    /// iDEM: the share-weighted mean of every rank's loss and gradients (weight = share/B).
    func averageGradients(of model: DiffusionModel, loss: Double, weight: Double) throws -> Double {
        guard communicator.isDistributed else { return loss }
        let count = model.network.gradients.count
        let total = try communicator.sum(model.network.gradients.map { $0 * weight } + [loss * weight])
        model.network.gradients = Array(total[..<count])
        return total[count]
    }

    /// Paths of two batches as one batch (a's trajectories first).
    static func concatenate(_ a: DiffusionPaths, _ b: DiffusionPaths) -> DiffusionPaths {
        DiffusionPaths(batch: a.batch + b.batch,
                       states: zip(a.states, b.states).map { $0 + $1 },
                       sampleEnergies: a.sampleEnergies + b.sampleEnergies,
                       energyGradients: zip(a.energyGradients, b.energyGradients).map { $0 + $1 },
                       logWeights: a.logWeights + b.logWeights)
    }
}
