import Foundation

/// Conformational basins of a peptide residue on the Ramachandran plane (φ, ψ in degrees,
/// (−180, 180]), as a coarse partition of the whole plane so the populations sum to 1:
///
/// - αR (right-handed helix): φ < 0 and −120° ≤ ψ < 50°
/// - β/PII (extended: β, polyproline II, C5 and C7eq): φ < 0 and ψ outside [−120°, 50°)
/// - αL (left-handed, with C7ax): φ ≥ 0
///
/// The boundaries follow the low-density valleys of alanine dipeptide's free-energy surface
/// (e.g. Bolhuis, Dellago and Chandler, PNAS 97, 5877 (2000), Fig. 1; the ψ split at −120°/50°
/// and the φ = 0 line) and are meant for comparing two sample sets, not as a physical definition.
public enum RamachandranBasin: String, CaseIterable, Codable, Sendable {
    case alphaR = "αR"
    case betaPII = "β/PII"
    case alphaL = "αL"

    /// The basin of (φ, ψ) in degrees.
    public static func of(phi: Double, psi: Double) -> RamachandranBasin {
        if phi >= 0 { return .alphaL }
        return psi >= -120 && psi < 50 ? .alphaR : .betaPII
    }

    /// Population of each basin: the (normalised) weight of the frames in it.
    /// - Parameters:
    ///   - phi, psi: one pair per frame, degrees.
    ///   - weights: per-frame weights (e.g. self-normalised importance weights), or nil for equal.
    public static func populations(phi: [Double], psi: [Double], weights: [Double]? = nil) -> [RamachandranBasin: Double] {
        var result = Dictionary(uniqueKeysWithValues: allCases.map { ($0, 0.0) })
        var total = 0.0
        for i in phi.indices where phi[i].isFinite && psi[i].isFinite {
            let w = weights?[i] ?? 1
            result[of(phi: phi[i], psi: psi[i]), default: 0] += w
            total += w
        }
        guard total > 0 else { return result }
        return result.mapValues { $0 / total }
    }
}
