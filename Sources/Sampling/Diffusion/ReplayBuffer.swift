import Foundation

/// A FIFO replay buffer of terminal samples with their log-rewards (−u), sampled by
/// reward rank: p(rank r) ∝ 1/(k·N + r), r = 0 for the best (gfn-diffusion's rank-based
/// prioritisation). Codable: it is part of the checkpoint.
public struct ReplayBuffer: Codable, Equatable, Sendable {
    public let capacity: Int
    public let stride: Int
    public private(set) var positions: [Double] = []
    public private(set) var logRewards: [Double] = []
    /// Next slot to overwrite once full.
    private var cursor = 0

    public init(capacity: Int, stride: Int) {
        self.capacity = capacity
        self.stride = stride
    }

    public var count: Int { logRewards.count }

    /// Adds configurations [m, n·d] with log-rewards [m]; the oldest go when full.
    public mutating func add(_ x: [Double], logRewards rewards: [Double]) {
        for b in 0..<rewards.count {
            let slice = x[(b * stride)..<((b + 1) * stride)]
            if count < capacity {
                positions.append(contentsOf: slice)
                logRewards.append(rewards[b])
            } else {
                positions.replaceSubrange((cursor * stride)..<((cursor + 1) * stride), with: slice)
                logRewards[cursor] = rewards[b]
                cursor = (cursor + 1) % capacity
            }
        }
    }

    /// Replaces entry `index` (e.g. after an accepted local-search move).
    public mutating func replace(_ index: Int, with x: ArraySlice<Double>, logReward: Double) {
        positions.replaceSubrange((index * stride)..<((index + 1) * stride), with: x)
        logRewards[index] = logReward
    }

    /// Indices of `m` entries drawn with replacement by rank priority (`k`), or uniformly when k ≤ 0.
    public func sampleIndices(_ m: Int, priority k: Double, rng: inout SeededGenerator) -> [Int] {
        precondition(count > 0, "sampling from an empty buffer")
        guard k > 0 else { return (0..<m).map { _ in Int(rng.next() % UInt64(count)) } }
        let order = (0..<count).sorted { logRewards[$0] > logRewards[$1] || (logRewards[$0] == logRewards[$1] && $0 < $1) }
        var cumulative = [Double](repeating: 0, count: count)
        var s = 0.0
        for r in 0..<count { s += 1 / (k * Double(count) + Double(r)); cumulative[r] = s }
        return (0..<m).map { _ in
            let u = rng.uniform() * s
            var lo = 0, hi = count - 1
            while lo < hi { let mid = (lo + hi) / 2; if cumulative[mid] > u { hi = mid } else { lo = mid + 1 } }
            return order[lo]
        }
    }

    /// Configurations of `indices`, [m, n·d].
    public func gather(_ indices: [Int]) -> [Double] { SampleBatch.rows(positions, stride: stride, indices) }
}
