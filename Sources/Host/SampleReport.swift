import Analysis
import Foundation
import PluginHost
import Sampling

/// The reduced energy of every recorded frame, one series per chain (PT: per ladder, the kT walker).
final class ChainSeries {
    private(set) var chains: [[Double]] = []

    /// One recorded step: the energies of chains 0..<k (the last step may hold fewer chains).
    func append(_ energies: [Double]) {
        if chains.count < energies.count { chains += Array(repeating: [], count: energies.count - chains.count) }
        for (c, u) in energies.enumerated() { chains[c].append(u) }
    }
}

/// The (φ, ψ) of every recorded frame in degrees, one series per chain, for a molecule with a
/// backbone (atom names N, CA, C of consecutive residues); `init` throws for any other system.
/// A peptide larger than the dipeptide has one φ/ψ pair per inner residue (`residues`); `chains`
/// holds the first residue's.
final class AngleSeries {
    let residues: [RamachandranResidue]
    let atoms: Int
    /// Per residue, per chain, the (φ, ψ) of its frames.
    private(set) var residueChains: [[[(phi: Double, psi: Double)]]]
    var chains: [[(phi: Double, psi: Double)]] { residueChains[0] }

    init(system: EnergySystem) throws {
        guard let table = system.atoms(), system.dimension == 3 else { throw FailureMessage("no atom table") }
        residues = try ramachandranResidues(names: table.map(\.name), residueNumbers: table.map(\.residueNumber),
                                            residueNames: table.map(\.residue))
        atoms = system.particleCount
        residueChains = residues.map { _ in [] }
    }

    /// One recorded step: frames [k·n·3] of chains 0..<k.
    func append(_ positions: [Double]) {
        let frames = positions.count / (3 * atoms)
        for (r, residue) in residues.enumerated() {
            let angles = ramachandranAngles(positions: positions, frames: frames, atoms: atoms, indices: residue.indices)
            if residueChains[r].count < frames { residueChains[r] += Array(repeating: [], count: frames - residueChains[r].count) }
            for (c, a) in angles.enumerated() { residueChains[r][c].append((phi: a.phi * 180 / .pi, psi: a.psi * 180 / .pi)) }
        }
    }

    /// Basin populations with errors per residue, named (one for the dipeptide).
    func residueReports() -> [ResidueBasinReport] {
        zip(residues, residueChains).map { ResidueBasinReport(residue: $0.label, basins: BasinReport(chains: $1)) }
    }
}

/// One residue's basin populations, named ("ALA2").
struct ResidueBasinReport: Codable {
    var residue: String
    var basins: BasinReport
}

/// What `ensemble sample` prints for an MCMC run, as JSON (`--json`, snake_case keys).
struct MCMCSampleReport: Codable {
    var command = "sample"
    var sampler: String
    var plugin: String
    var pluginParameters: String
    var out: String
    var topology: String
    var frames: Int
    var chains: Int
    var seed: UInt64
    var burnIn: Int
    var thin: Int
    /// Mean reduced energy u = U/kT and its batch-means standard error.
    var energyMean: Double
    var energyError: Double
    var acceptance: [Double]
    var stepSizes: [Double]
    var zeroCentreOfMassMoves: Bool
    var exchangeAcceptance: [Double]?
    /// PT temperatures as multiples of the plugin's kT.
    var temperatures: [Double]?
    var convergence: ConvergenceDiagnostics.Report
    /// Molecules: Ramachandran basin populations with errors and their convergence (the first
    /// residue's φ/ψ; the only one of alanine dipeptide).
    var basins: BasinReport?
    /// Peptides with more than one φ/ψ pair: every residue's basins, named (e.g. "ALA2", "ALA3").
    var residueBasins: [ResidueBasinReport]? = nil
    /// Energy and (molecules) basin populations converged.
    var converged: Bool
    /// langevin/ghmc: the dynamics settings and the simulated time per chain.
    var dynamics: DynamicsSettings?
    var picosecondsPerChain: Double?
    var energyEvaluations: Int
    var gradientEvaluations: Int
    var wallSeconds: Double
    var threads: Int
    var ranks: Int
}

/// What `ensemble sample --model` prints, as JSON.
struct ModelSampleReport: Codable {
    var command = "sample"
    var model: String
    var method: String
    var plugin: String
    var pluginParameters: String
    var out: String
    var frames: Int
    var resampled: Bool
    var interrupted: Bool
    var ess: Double
    var essFraction: Double
    var logZ: Double
    var logZError: Double
    /// Mean log-weight (the ELBO).
    var elbo: Double
    var energyMean: Double
    var reweightedEnergyMean: Double
    var energyEvaluations: Int
    var gradientEvaluations: Int
    var trainingEnergyEvaluations: Int
    var trainingGradientEvaluations: Int
    var trainingSeconds: Double
    var wallSeconds: Double
    var threads: Int
    /// The SMC correction (--correct-steps): the population after K/2 and K steps.
    var correction: CorrectionReport? = nil
    /// Molecules: drawn mirror images inverted onto the start structure's handedness (nil: not a molecule, or kept).
    var mirrored: Int? = nil
    /// Molecules with bonds: the drawn (uncorrected) samples' bond lengths against the start structure's.
    var bonds: BondCheck? = nil
    /// Whether the draws carry importance weights (else ess, log Z and ELBO are nan).
    var weighted = true
    /// Draws on the noise-level grid: the integrator, sde or ode, the levels and the network
    /// evaluations per sample (nil: the model's own time grid).
    var integrator: String? = nil
    var process: String? = nil
    var noiseLevels: Int? = nil
    var networkEvaluationsPerSample: Int? = nil
    /// The temperature (× kT) a temperature-conditioned model drew at (nil: the target).
    var temperature: Double? = nil
}

extension ConvergenceDiagnostics.Report {
    /// Two or three lines for the `sample` summary; the last says plainly whether to trust the run.
    func printed(quantity: String = "energy u") -> String {
        var text = String(format: "convergence of %@ (%d chains × %d frames): autocorrelation time τ = %.3g frames (Sokal window %d), ESS %.0f, split-R̂ %.4f (rank-normalised; bulk %.4f, tail %.4f)",
                          quantity, chains, drawsPerChain, integratedAutocorrelationTime, window,
                          effectiveSampleSize, splitRHat, bulkRHat, tailRHat)
        if converged {
            text += String(format: "\nconverged by these checks (split-R̂ ≤ %.2f, ESS ≥ %.0f, chains ≥ %.0f τ)",
                           thresholds.maximumRHat, thresholds.minimumESS, thresholds.minimumChainLengthInTau)
        } else {
            text += "\nNOT CONVERGED: " + problems.joined(separator: "; ")
                + ". Run longer (more --samples, a larger --thin or --burn-in; for PT, more --replicas or a higher --max-temperature) before trusting the mean."
        }
        return text
    }
}

extension BasinReport {
    /// The basin lines and, when a basin is not converged, what that means for the user.
    /// - Parameter dynamics: whether the run already used the dynamics sampler (else it is advised).
    func printedWithVerdict(dynamics: Bool, residue: String? = nil) -> String {
        printed(residue: residue) + notes.map { "\nnote: " + $0 }.joined() + (converged ? "" : "\nNOT CONVERGED (basins): " + problems.joined(separator: "; ")
            + ". The chains do not agree on how often each conformation is visited: run longer (more --samples)"
            + (dynamics ? "." : ", or use the dynamics sampler (--sampler langevin, the default for molecules)."))
    }
}

/// Writes `value` as pretty JSON with snake_case keys (the one key style of every command),
/// whole to a temporary file renamed into place: an existing file is replaced only by a complete one.
func writeJSON<T: Encodable>(_ value: T, to path: String) throws {
    try jsonData(value).write(to: URL(fileURLWithPath: path), options: .atomic)
}

/// `value` as pretty JSON, snake_case keys, sorted; non-finite numbers as the strings "nan", "inf".
func jsonData<T: Encodable>(_ value: T) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.keyEncodingStrategy = .convertToSnakeCase
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return try encoder.encode(value)
}

extension MCMCSampling {
    /// Prints the convergence diagnostics of an MCMC or dynamics run (energy; basin populations for
    /// a molecule) and writes --json when given.
    func reportMCMC(_ s: MCMCSummary, series: ChainSeries, angles: AngleSeries?, system: EnergySystem, project: Bool,
                    ranks: Int, sampler: Sampler, settings: MCMCSettings, dynamics: DynamicsSettings?) throws {
        let diagnostics = ConvergenceDiagnostics.diagnose(series.chains)
        print(diagnostics.printed())
        let residues = angles?.residueReports() ?? []
        let basins = residues.first?.basins
        for r in residues {
            print(r.basins.printedWithVerdict(dynamics: dynamics != nil, residue: residues.count > 1 ? r.residue : nil))
        }
        let basinsConverged = residues.allSatisfy { $0.basins.converged }
        let tempered = settings.replicas > 1
        let exchangeVerdict = tempered ? TemperatureLadder.exchangeVerdict(s.exchangeAcceptance) : nil
        if let exchangeVerdict { print(exchangeVerdict) }
        guard let json else { return }
        let report = MCMCSampleReport(
            sampler: sampler.rawValue, plugin: system.plugin.name, pluginParameters: system.parameters, out: out,
            topology: URL(fileURLWithPath: out).deletingPathExtension().path + ".pdb", frames: s.frames,
            chains: settings.chains, seed: seed, burnIn: settings.burnIn, thin: settings.thin, energyMean: s.energyMean,
            energyError: s.energyError, acceptance: s.acceptance, stepSizes: s.stepSizes, zeroCentreOfMassMoves: project,
            exchangeAcceptance: tempered ? s.exchangeAcceptance : nil,
            temperatures: tempered ? (s.betas.isEmpty ? settings.betas : s.betas).map { 1 / $0 } : nil,
            convergence: diagnostics, basins: basins, residueBasins: residues.count > 1 ? residues : nil,
            converged: diagnostics.converged && basinsConverged && exchangeVerdict == nil,
            dynamics: dynamics,
            picosecondsPerChain: dynamics.map { Double(settings.burnIn + settings.productionSteps) * $0.timeStep },
            energyEvaluations: s.energyEvaluations,
            gradientEvaluations: s.gradientEvaluations, wallSeconds: s.seconds, threads: system.threads, ranks: ranks)
        try writeJSON(report, to: json)
        print("wrote \(json)")
    }
}
