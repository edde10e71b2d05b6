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
    public func gather(_ indices: [Int]) -> [Double] {
        var out: [Double] = []
        out.reserveCapacity(indices.count * stride)
        for i in indices { out.append(contentsOf: positions[(i * stride)..<((i + 1) * stride)]) }
        return out
    }
}

/// Adam with a Codable state, so a checkpoint restores it bit for bit (Equivariant's
/// `Adam` offers no way to set its moments). Same update, global-norm clipping included.
public struct AdamState: Codable, Equatable, Sendable {
    public var learningRate: Double
    public var beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8
    public var clipNorm: Double?
    public private(set) var firstMoment: [Double]
    public private(set) var secondMoment: [Double]
    public private(set) var stepCount = 0

    public init(count: Int, learningRate: Double, clipNorm: Double? = nil) {
        self.learningRate = learningRate
        self.clipNorm = clipNorm
        firstMoment = [Double](repeating: 0, count: count)
        secondMoment = [Double](repeating: 0, count: count)
    }

    /// One update; returns the gradient norm before clipping.
    @discardableResult
    public mutating func step(parameters: inout [Double], gradients: [Double]) -> Double {
        precondition(parameters.count == firstMoment.count && gradients.count == firstMoment.count)
        var sq = 0.0
        for g in gradients { sq += g * g }
        let norm = sq.squareRoot()
        var scale = 1.0
        if let clip = clipNorm, norm > clip { scale = clip / norm }
        stepCount += 1
        let t = Double(stepCount)
        let c1 = 1 - pow(beta1, t), c2 = 1 - pow(beta2, t)
        let b1 = beta1, b2 = beta2, stepSize = learningRate / c1, eps = epsilon
        parameters.withUnsafeMutableBufferPointer { p in
            firstMoment.withUnsafeMutableBufferPointer { m in
                secondMoment.withUnsafeMutableBufferPointer { v in
                    for i in 0..<p.count {
                        let gi = gradients[i] * scale
                        m[i] = b1 * m[i] + (1 - b1) * gi
                        v[i] = b2 * v[i] + (1 - b2) * gi * gi
                        p[i] -= stepSize * m[i] / ((v[i] / c2).squareRoot() + eps)
                    }
                }
            }
        }
        return norm
    }
}
