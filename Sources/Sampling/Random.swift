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
