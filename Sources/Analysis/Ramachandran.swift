import Foundation

// Ramachandran (φ, ψ) analysis of peptide samples: dihedral angles, a 60×60 histogram on
// (−π, π]², and the two distances the alanine-dipeptide literature reports between such
// histograms, KL(reference ‖ model) and total variation (docs/metrics.md).
// Pure functions of plain arrays: no plugin, no I/O.

/// Dihedral angle of four points in radians, in (−π, π], IUPAC sign convention
/// (positive = clockwise rotation of the far bond seen along p1→p2), as MDTraj's
/// `compute_dihedrals` computes it:
/// b₁ = p1 − p0, b₂ = p2 − p1, b₃ = p3 − p2, φ = atan2(|b₂| b₁·(b₂×b₃), (b₁×b₂)·(b₂×b₃)).
public func dihedralAngle(_ p0: SIMD3<Double>, _ p1: SIMD3<Double>, _ p2: SIMD3<Double>,
                          _ p3: SIMD3<Double>) -> Double {
    let b1 = p1 - p0, b2 = p2 - p1, b3 = p3 - p2
    func cross(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> SIMD3<Double> {
        SIMD3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x)
    }
    let n1 = cross(b1, b2), n2 = cross(b2, b3)
    let y = (b2 * b2).sum().squareRoot() * (b1 * n2).sum()
    let x = (n1 * n2).sum()
    return atan2(y, x)
}

/// Atom indices (0-based) of the φ and ψ dihedrals: φ = (C of the previous residue, N, CA, C),
/// ψ = (N, CA, C, N of the next residue). For alanine dipeptide φ = (C_ACE, N_ALA, CA, C_ALA),
/// ψ = (N_ALA, CA, C_ALA, N_NME).
public typealias RamachandranIndices = (phi: [Int], psi: [Int])

/// An error finding the backbone atoms of a φ/ψ pair.
public struct RamachandranError: Error, CustomStringConvertible {
    public var description: String
}

/// Find φ/ψ atom indices from a topology's atom names and residue numbers: the first residue
/// with atoms N, CA and C whose previous residue has a C and whose next residue has an N.
/// - Parameters:
///   - names: atom names, e.g. "CA".
///   - residueNumbers: residue number of each atom (any numbering, consecutive residues
///     differing by 1).
/// - Throws: `RamachandranError` when no such residue exists.
public func ramachandranIndices(names: [String], residueNumbers: [Int]) throws -> RamachandranIndices {
    precondition(names.count == residueNumbers.count, "names and residueNumbers differ in length")
    func find(_ name: String, _ residue: Int) -> Int? {
        names.indices.first { names[$0] == name && residueNumbers[$0] == residue }
    }
    for residue in Array(Set(residueNumbers)).sorted() {
        guard let n = find("N", residue), let ca = find("CA", residue), let c = find("C", residue),
              let cPrevious = find("C", residue - 1), let nNext = find("N", residue + 1) else { continue }
        return (phi: [cPrevious, n, ca, c], psi: [n, ca, c, nNext])
    }
    throw RamachandranError(description:
        "no residue with N, CA, C between a residue with C and one with N: cannot define φ/ψ")
}

/// One residue's backbone dihedrals: its label (residue name and number, e.g. "ALA2") and the
/// φ/ψ atom indices.
public struct RamachandranResidue: Sendable {
    public var label: String
    public var phi: [Int]
    public var psi: [Int]
    public var indices: RamachandranIndices { (phi: phi, psi: psi) }
}

/// Every residue with a φ/ψ pair (atoms N, CA and C, a previous residue with C and a next one
/// with N), in residue order: one for alanine dipeptide (ACE-ALA-NME), two for ACE-ALA-ALA-NME, …
/// - Parameters:
///   - residueNames: the residue name of each atom (e.g. "ALA"), for the labels; nil: "residue N".
/// - Throws: `RamachandranError` when there is none.
public func ramachandranResidues(names: [String], residueNumbers: [Int], residueNames: [String]? = nil) throws
    -> [RamachandranResidue] {
    precondition(names.count == residueNumbers.count, "names and residueNumbers differ in length")
    func find(_ name: String, _ residue: Int) -> Int? {
        names.indices.first { names[$0] == name && residueNumbers[$0] == residue }
    }
    var result: [RamachandranResidue] = []
    for residue in Array(Set(residueNumbers)).sorted() {
        guard let n = find("N", residue), let ca = find("CA", residue), let c = find("C", residue),
              let cPrevious = find("C", residue - 1), let nNext = find("N", residue + 1) else { continue }
        let label = residueNames.map { "\($0[ca].trimmingCharacters(in: .whitespaces))\(residue)" } ?? "residue \(residue)"
        result.append(RamachandranResidue(label: label, phi: [cPrevious, n, ca, c], psi: [n, ca, c, nNext]))
    }
    guard !result.isEmpty else {
        throw RamachandranError(description:
            "no residue with N, CA, C between a residue with C and one with N: cannot define φ/ψ")
    }
    return result
}

/// (φ, ψ) of every frame, radians in (−π, π].
/// - Parameters:
///   - positions: [frames][atoms][3] (any length unit).
///   - frames: number of frames; atoms: atoms per frame.
///   - indices: from `ramachandranIndices`.
public func ramachandranAngles(positions: [Double], frames: Int, atoms: Int,
                               indices: RamachandranIndices) -> [(phi: Double, psi: Double)] {
    precondition(positions.count == frames * atoms * 3, "positions must hold frames × atoms × 3 values")
    precondition(indices.phi.count == 4 && indices.psi.count == 4, "φ and ψ need 4 atoms each")
    return (0..<frames).map { f in
        func point(_ a: Int) -> SIMD3<Double> {
            let o = (f * atoms + a) * 3
            return SIMD3(positions[o], positions[o + 1], positions[o + 2])
        }
        let phi = indices.phi.map(point), psi = indices.psi.map(point)
        return (phi: dihedralAngle(phi[0], phi[1], phi[2], phi[3]),
                psi: dihedralAngle(psi[0], psi[1], psi[2], psi[3]))
    }
}

/// A 2-D histogram of (φ, ψ) on a `bins`×`bins` grid over (−π, π]², bins half-open on the
/// left: bin k covers (−π + k·w, −π + (k+1)·w], w = 2π/bins; an angle of exactly −π counts
/// as +π. `counts[φBin * bins + ψBin]`.
public struct RamachandranHistogram: Equatable {
    /// Bins per axis (60 in the alanine-dipeptide literature).
    public let bins: Int
    /// Weighted counts, row-major [φ bin][ψ bin].
    public private(set) var counts: [Double]
    /// Sum of the weights.
    public private(set) var total: Double = 0

    public init(bins: Int = 60) {
        precondition(bins > 0)
        self.bins = bins
        counts = [Double](repeating: 0, count: bins * bins)
    }

    /// Histogram of angle pairs, each with weight 1 (or the given importance weights).
    public init(angles: [(phi: Double, psi: Double)], weights: [Double]? = nil, bins: Int = 60) {
        self.init(bins: bins)
        for (k, a) in angles.enumerated() { add(phi: a.phi, psi: a.psi, weight: weights?[k] ?? 1) }
    }

    /// Bin of an angle in radians (periodic: any real angle is first wrapped into (−π, π]).
    public func bin(_ angle: Double) -> Int {
        var a = angle.truncatingRemainder(dividingBy: 2 * .pi)
        if a <= -.pi { a += 2 * .pi } else if a > .pi { a -= 2 * .pi }
        let k = Int(((a + .pi) / (2 * .pi) * Double(bins)).rounded(.up)) - 1
        return k < 0 ? bins - 1 : min(k, bins - 1)
    }

    public mutating func add(phi: Double, psi: Double, weight: Double = 1) {
        guard phi.isFinite, psi.isFinite, weight.isFinite else { return }
        counts[bin(phi) * bins + bin(psi)] += weight
        total += weight
    }

    /// Normalised probabilities (all zero for an empty histogram).
    public var probabilities: [Double] {
        total > 0 ? counts.map { $0 / total } : counts.map { _ in 0 }
    }
}

/// KL(reference ‖ model) = Σₖ pₖ ln((pₖ + ε)/(qₖ + ε)) over bins with pₖ > 0, p the reference's
/// and q the model's normalised histogram; the floor ε (default 1e-10) keeps bins the model
/// never visits finite (ln(1e-10) ≈ −23 per unit of missed mass). In nats.
/// Identical histograms give exactly 0.
public func klDivergence(reference: RamachandranHistogram, model: RamachandranHistogram,
                         floor epsilon: Double = 1e-10) -> Double {
    precondition(reference.bins == model.bins, "histograms differ in bins")
    let p = reference.probabilities, q = model.probabilities
    var kl = 0.0
    for k in p.indices where p[k] > 0 { kl += p[k] * log((p[k] + epsilon) / (q[k] + epsilon)) }
    return kl
}

/// Total variation ½ Σₖ |pₖ − qₖ| between two normalised histograms, in [0, 1].
public func totalVariation(_ a: RamachandranHistogram, _ b: RamachandranHistogram) -> Double {
    precondition(a.bins == b.bins, "histograms differ in bins")
    let p = a.probabilities, q = b.probabilities
    return 0.5 * zip(p, q).reduce(0) { $0 + abs($1.0 - $1.1) }
}
