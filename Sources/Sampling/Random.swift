import Equivariant
import Foundation

/// xoshiro256** seeded through SplitMix64: fast, reproducible across platforms,
/// and its whole state is four words (checkpointable).
public struct SeededGenerator: RandomNumberGenerator, Codable, Equatable, Sendable {
    public private(set) var state: [UInt64]
    private var spareNormal: Double?

    /// - Parameter seed: any 64-bit seed; equal seeds give equal streams.
    public init(seed: UInt64) {
        var seeder = SplitMix64(seed: seed)
        state = (0..<4).map { _ in seeder.next() }
    }

    /// An independent stream for `index` (e.g. a chain or an MPI rank), derived from `seed`.
    public init(seed: UInt64, stream index: UInt64) {
        self.init(seed: seed ^ (index &* 0xD1B5_4A32_D192_ED03) &+ index)
    }

    /// A seed derived from `seed` and `keys` (e.g. a step and a shard) by SplitMix64 mixing:
    /// distinct key tuples give unrelated streams, the same tuple the same stream.
    public static func derivedSeed(_ seed: UInt64, _ keys: UInt64...) -> UInt64 {
        var value = seed
        for key in keys {
            var mixer = SplitMix64(seed: value ^ (key &* 0x9E37_79B9_7F4A_7C15))
            value = mixer.next()
        }
        return value
    }

    /// The seed of an MPI rank: `seed` itself on rank 0 (so one rank reproduces a run
    /// without mpirun exactly), a SplitMix64 mix of (seed, rank) on the others.
    public static func rankSeed(_ seed: UInt64, rank: Int) -> UInt64 {
        rank == 0 ? seed : derivedSeed(seed, 0x5241_4E4B, UInt64(rank))
    }

    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = rotl(state[1] &* 5, 7) &* 9
        let t = state[1] << 17
        state[2] ^= state[0]
        state[3] ^= state[1]
        state[1] ^= state[2]
        state[0] ^= state[3]
        state[2] ^= t
        state[3] = rotl(state[3], 45)
        return result
    }

    /// Uniform in [0, 1) with 53 random bits.
    @inline(__always)
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Standard normal (polar Box–Muller; the second value is kept for the next call).
    public mutating func normal() -> Double {
        if let spare = spareNormal { spareNormal = nil; return spare }
        while true {
            let u = 2 * uniform() - 1, v = 2 * uniform() - 1
            let s = u * u + v * v
            if s > 0 && s < 1 {
                let f = (-2 * log(s) / s).squareRoot()
                spareNormal = v * f
                return u * f
            }
        }
    }

    /// Fill `buffer` with standard normals.
    public mutating func fillNormal(_ buffer: inout [Double]) {
        for i in buffer.indices { buffer[i] = normal() }
    }

    @inline(__always) private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}
