import Distributed
import Foundation
import PluginHost

/// Data-parallel training over the ranks of a `Communicator`: the `GradientReducer` a trainer
/// is handed for an MPI run (`attach`).
///
/// The global batch B is cut into `shards` contiguous shards (sizes differ by at most one) and
/// rank r takes the contiguous block of shards `ChainRunner.block(shards, parts: ranks, part: r)`.
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
public final class DataParallelGroup: GradientReducer {
    public let communicator: Communicator
    /// Shards of the global batch (≥ ranks).
    public let shards: Int

    public init(communicator: Communicator, shards: Int) {
        precondition(shards >= communicator.size, "fewer shards than ranks")
        self.communicator = communicator
        self.shards = shards
    }

    /// This rank's shards.
    public var shardBlock: Range<Int> { ChainRunner.block(shards, parts: communicator.size, part: communicator.rank) }

    /// The items of the global `batch` this rank handles: its shards, in order.
    public func items(of batch: Int) -> Range<Int> {
        let block = shardBlock
        return ChainRunner.block(batch, parts: shards, part: block.lowerBound).lowerBound
            ..< ChainRunner.block(batch, parts: shards, part: block.upperBound - 1).upperBound
    }

    /// Hands `trainer` (fresh or resumed) this group as its reducer: rank r > 0 draws its
    /// buffer samples and local searches from a generator of its own.
    public func attach(_ trainer: DiffusionTrainer) {
        if communicator.rank > 0 {
            var parent = trainer.state.rng
            trainer.state.rng = SeededGenerator(seed: SeededGenerator.rankSeed(parent.next(), rank: communicator.rank))
        }
        trainer.use(self)
    }

    // MARK: - GradientReducer

    public var rank: Int { communicator.rank }
    public func share(of count: Int) -> Int { items(of: count).count }
    public func sum(_ values: [Double]) throws -> [Double] {
        communicator.isDistributed ? try communicator.sum(values) : values
    }
    public func sum(_ values: [Int]) throws -> [Int] { try communicator.sum(values) }
    public func gather(_ values: [Double]) throws -> [[Double]] { try communicator.allGather(values) }
    public var onPolicyShards: (count: Int, mine: Range<Int>)? { (shards, shardBlock) }
}
