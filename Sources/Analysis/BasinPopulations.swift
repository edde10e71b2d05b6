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

/// Basin populations of a multi-chain run with their standard errors, and whether the chains
/// agree on them: for each basin the per-chain indicator series 1[(φ, ψ) ∈ basin] is diagnosed
/// like the energy (τ, ESS, split-R̂), and the error is √(p(1−p)/ESS). A run whose chains never
/// leave one basin has indicators with a tiny ESS or chains that disagree: "not converged".
public struct BasinReport: Codable, Equatable, Sendable {
    public struct Basin: Codable, Equatable, Sendable {
        public var name: String
        public var population: Double
        /// Standard error √(p(1−p)/ESS) (NaN when the indicator never changes).
        public var error: Double
        /// Transitions into the basin, summed over chains: with few, neither p nor its error is known.
        public var entries: Int
        public var convergence: ConvergenceDiagnostics.Report
    }
    public var basins: [Basin]
    /// Every failed basin criterion, in words.
    public var problems: [String]
    /// Rare basins (< 1%) entered too few times to resolve: said, but not a failure.
    public var notes: [String]
    public var converged: Bool { problems.isEmpty }
    /// Transitions into a visited basin needed before its population counts as sampled.
    public static let minimumEntries = 10
    /// Basins below this population are minor: few entries give a note, not a failure.
    public static let minorPopulation = 0.01

    /// - Parameter chains: per chain, the (φ, ψ) of its frames in recording order, degrees.
    public init(chains: [[(phi: Double, psi: Double)]], thresholds: ConvergenceDiagnostics.Thresholds = .init()) {
        let all = chains.joined()
        let populations = RamachandranBasin.populations(phi: all.map(\.phi), psi: all.map(\.psi))
        basins = RamachandranBasin.allCases.map { basin in
            let indicators = chains.map { $0.map { RamachandranBasin.of(phi: $0.phi, psi: $0.psi) == basin ? 1.0 : 0.0 } }
            let p = populations[basin] ?? 0
            let report = ConvergenceDiagnostics.diagnose(indicators, thresholds: thresholds)
            let entries = indicators.map { chain in zip(chain.dropFirst(), chain).filter { $0 == 1 && $1 == 0 }.count }.reduce(0, +)
            return Basin(name: basin.rawValue, population: p, error: (p * (1 - p) / report.effectiveSampleSize).squareRoot(),
                         entries: entries, convergence: report)
        }
        // A basin nobody visits (p = 0) says nothing either way. One that holds ≥ 1% must be sampled
        // as well as the energy and entered often enough (≥ minimumEntries) for τ to mean anything;
        // a rarer one that is entered only a few times gets a note: its population is below 1% and
        // not resolved, which moves TV by less than that.
        problems = basins.filter { $0.population >= Self.minorPopulation }.compactMap { basin in
            var failed = basin.convergence.problems
            if basin.entries < Self.minimumEntries {
                failed.append("entered \(basin.entries) times (< \(Self.minimumEntries)): its population is not determined")
            }
            guard !failed.isEmpty else { return nil }
            return String(format: "basin %@ (p = %.4f): %@", basin.name, basin.population, failed.joined(separator: ", "))
        }
        notes = basins.filter { $0.population > 0 && $0.population < Self.minorPopulation && $0.entries < Self.minimumEntries }.map {
            String(format: "basin %@ holds %.4f and was entered %d times: below 1%%, not resolved by this run", $0.name, $0.population, $0.entries)
        }
    }

    /// One line per basin for the `sample` summary; `residue` (e.g. "ALA2") names the residue
    /// of a peptide with more than one φ/ψ pair.
    public func printed(residue: String? = nil) -> String {
        let lines = basins.map {
            String(format: "  %-6@ %.4f ± %.4f  (ESS %.0f, split-R̂ %.3f, entered %d times)", $0.name as NSString,
                   $0.population, $0.error, $0.convergence.effectiveSampleSize, $0.convergence.splitRHat, $0.entries)
        }
        let header = residue.map { "basin populations of \($0) (its φ/ψ; ± one standard error from the indicator's ESS):" }
            ?? "basin populations (φ/ψ; ± one standard error from the indicator's ESS):"
        return ([header] + lines).joined(separator: "\n")
    }
}
