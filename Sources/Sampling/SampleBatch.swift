import Distributed
import Foundation

/// Samples with their reduced energies and log importance weights: positions [count, n·d],
/// energies [count], logWeights [count] (empty when the samples carry no weights). The one
/// layout samples travel in between ranks (`gathered(on:)`), instead of arrays packed by hand.
public struct SampleBatch: Equatable {
    /// Coordinates per sample, n·d.
    public var stride: Int
    public var positions: [Double]
    public var energies: [Double]
    public var logWeights: [Double]

    public init(stride: Int, positions: [Double] = [], energies: [Double] = [], logWeights: [Double] = []) {
        precondition(positions.count == energies.count * stride, "positions must be [count, stride]")
        precondition(logWeights.isEmpty || logWeights.count == energies.count, "one log-weight per sample, or none")
        self.stride = stride
        self.positions = positions
        self.energies = energies
        self.logWeights = logWeights
    }

    public var count: Int { energies.count }

    /// The rows `indices` of a row-major [count, stride] array, in that order (resampling,
    /// subsampling, buffer draws): the one gather of configurations by index.
    public static func rows<Indices: Sequence>(_ x: [Double], stride: Int, _ indices: Indices) -> [Double]
        where Indices.Element == Int {
        var out: [Double] = []
        out.reserveCapacity(indices.underestimatedCount * stride)
        for i in indices { out.append(contentsOf: x[(i * stride)..<((i + 1) * stride)]) }
        return out
    }

    /// This batch followed by `other`'s samples (both weighted, or both not).
    public mutating func append(_ other: SampleBatch) {
        precondition(other.stride == stride && (count == 0 || other.count == 0 || logWeights.isEmpty == other.logWeights.isEmpty))
        positions += other.positions
        energies += other.energies
        logWeights += other.logWeights
    }

    /// Collective: every rank's batch, in rank order, on rank 0 (nil on the other ranks); the
    /// batch itself when there is one rank. One gather.
    public func gathered(on communicator: Communicator) throws -> SampleBatch? {
        guard communicator.isDistributed else { return self }
        let parts = try communicator.gather(packed)
        guard communicator.isRoot else { return nil }
        var all = SampleBatch(stride: stride)
        for part in parts { all.append(SampleBatch(packed: part, stride: stride)) }
        return all
    }

    /// [count, weighted (0/1), energies, logWeights, positions].
    var packed: [Double] { [Double(count), logWeights.isEmpty ? 0 : 1] + energies + logWeights + positions }

    init(packed p: [Double], stride: Int) {
        let count = Int(p[0]), weights = p[1] == 0 ? 0 : count
        self.init(stride: stride, positions: Array(p[(2 + count + weights)...]), energies: Array(p[2..<(2 + count)]),
                  logWeights: Array(p[(2 + count)..<(2 + count + weights)]))
    }
}
