import Foundation
import PluginHost

/// The handedness of a molecule, and the fold of its mirror images back onto it.
///
/// An E(3)-equivariant sampler (the EGNN is equivariant under reflections too) draws both
/// enantiomers of a chiral molecule equally often, while the target of interest is the one
/// handedness of the start structure: dynamics never inverts a tetrahedral centre. Inversion
/// x ↦ 2x̄ − x maps one handedness onto the other and leaves the sampler's density unchanged,
/// q(Rx) = q(x), so the folded sampler has density 2q(x) on the start structure's side. A folded
/// sample's log-weight −u − log q changes only by the energy difference u(y) − u(Ry) (zero for a
/// force field whose torsion phases are 0 or π), which `fold` evaluates: the weights stay exact.
///
/// Handedness: at every stereocentre (an atom bonded to four others of which at most one is a
/// hydrogen, bonds read from the start structure's distances; a methyl or methylene carbon is not
/// one: swapping two of its equivalent hydrogens changes no physics), the sign of the signed volume
/// (a − c)·((b − c) × (e − c)) of its first three neighbours a, b, e, heavy atoms first, in index order. A
/// configuration is a mirror image when most centres disagree with the start structure (all of
/// them do after an inversion).
public struct MirrorFold: Sendable {
    /// [centre, a, b, e] per stereocentre.
    public let centres: [[Int]]
    /// The start structure's sign (volume > 0) at each centre.
    public let reference: [Bool]
    public let particles: Int

    /// - Parameters:
    ///   - elements: element symbols [n].
    ///   - start: the start structure [n·3] in Å; bonds: X–H closer than 1.3 Å, heavy atoms
    ///     closer than 1.75 Å.
    /// - Returns: nil when the molecule has no stereocentre (no handedness to keep).
    public init?(elements: [String], start: [Double]) {
        let n = elements.count
        precondition(start.count == 3 * n, "start: [n·3]")
        let hydrogen = elements.map { $0.uppercased() == "H" }
        func distance(_ i: Int, _ j: Int) -> Double {
            (0..<3).map { start[3 * i + $0] - start[3 * j + $0] }.map { $0 * $0 }.reduce(0, +).squareRoot()
        }
        var bonds: [(Int, Int)] = []
        for i in 0..<n {
            for j in (i + 1)..<n where !(hydrogen[i] && hydrogen[j])
                && distance(i, j) < (hydrogen[i] || hydrogen[j] ? 1.3 : 1.75) { bonds.append((i, j)) }
        }
        // The graph's rule and order: heavy neighbours first (a hydrogen is the last atom a
        // sampler places precisely), the same centres the EGNN's handedness feature uses.
        let centres = BondGraph(particles: n, bonds: bonds).stereocentres(hydrogen: hydrogen)
        guard !centres.isEmpty else { return nil }
        self.centres = centres
        self.particles = n
        reference = Self.signs(centres, start[...])
    }

    static func signs(_ centres: [[Int]], _ x: ArraySlice<Double>) -> [Bool] {
        let base = x.startIndex
        func vector(_ i: Int, from c: Int) -> (Double, Double, Double) {
            (x[base + 3 * i] - x[base + 3 * c], x[base + 3 * i + 1] - x[base + 3 * c + 1], x[base + 3 * i + 2] - x[base + 3 * c + 2])
        }
        return centres.map { q in
            let a = vector(q[1], from: q[0]), b = vector(q[2], from: q[0]), e = vector(q[3], from: q[0])
            let volume = a.0 * (b.1 * e.2 - b.2 * e.1) - a.1 * (b.0 * e.2 - b.2 * e.0) + a.2 * (b.0 * e.1 - b.1 * e.0)
            return volume > 0
        }
    }

    /// Whether a configuration [n·3] (any length unit) has the other handedness.
    public func isMirrored(_ x: ArraySlice<Double>) -> Bool {
        let flipped = zip(Self.signs(centres, x), reference).filter { $0 != $1 }.count
        return 2 * flipped > centres.count
    }

    /// Inverts every mirror image of `samples` through its centroid, re-evaluates its energy and
    /// moves its log-weight by β(u(y) − u(Ry)) (see the type's note; β of the law the weights
    /// are for, 1 at the target).
    /// - Returns: how many samples were inverted.
    /// - Throws: what `EnergySystem.evaluate` throws.
    @discardableResult
    public func fold(_ samples: inout SampleBatch, system: EnergySystem, beta: Double = 1) throws -> Int {
        let stride = 3 * particles
        precondition(samples.stride == stride && system.dimension == 3)
        let mirrored = (0..<samples.count).filter { isMirrored(samples.positions[($0 * stride)..<(($0 + 1) * stride)]) }
        guard !mirrored.isEmpty else { return 0 }
        var inverted = SampleBatch.rows(samples.positions, stride: stride, mirrored)
        for m in mirrored.indices {
            for k in 0..<3 {
                let mean = (0..<particles).map { inverted[m * stride + 3 * $0 + k] }.reduce(0, +) / Double(particles)
                for i in 0..<particles { inverted[m * stride + 3 * i + k] = 2 * mean - inverted[m * stride + 3 * i + k] }
            }
        }
        let energies = try system.evaluate(inverted, batch: mirrored.count, withGradients: false).energies
        for (m, s) in mirrored.enumerated() {
            samples.positions.replaceSubrange((s * stride)..<((s + 1) * stride), with: inverted[(m * stride)..<((m + 1) * stride)])
            if !samples.logWeights.isEmpty { samples.logWeights[s] += beta * (samples.energies[s] - energies[m]) }
            samples.energies[s] = energies[m]
        }
        return mirrored.count
    }
}
