import Distributed
import Foundation

/// How a training step's gradients (and its budget counters) are combined over the processes
/// that share the batch: one process (`LocalReducer`: identity), or the ranks of an MPI run
/// (`DataParallelGroup`: all-reduce in rank order). The trainer is handed one and calls
/// nothing else of the group.
public protocol GradientReducer: AnyObject {
    /// This process's rank (0 alone).
    var rank: Int { get }
    /// How many of a global count (batch, buffer draws, data) this process handles.
    func share(of count: Int) -> Int
    /// Element-wise sum over the processes, added in rank order (identity alone).
    func sum(_ values: [Double]) throws -> [Double]
    /// Integer counts summed over the processes.
    func sum(_ values: [Int]) throws -> [Int]
    /// Every process's values, in rank order (`[values]` alone).
    func gather(_ values: [Double]) throws -> [[Double]]
    /// The shards of the global batch whose on-policy draws come from their own streams, and
    /// which of them are this process's; nil: draw from the trainer's generator.
    var onPolicyShards: (count: Int, mine: Range<Int>)? { get }
}

/// One process: every reduction is the identity.
public final class LocalReducer: GradientReducer {
    public init() {}
    public var rank: Int { 0 }
    public func share(of count: Int) -> Int { count }
    public func sum(_ values: [Double]) throws -> [Double] { values }
    public func sum(_ values: [Int]) throws -> [Int] { values }
    public func gather(_ values: [Double]) throws -> [[Double]] { [values] }
    public var onPolicyShards: (count: Int, mine: Range<Int>)? { nil }
}
