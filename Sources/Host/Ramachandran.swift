import Analysis
import ArgumentParser
import Foundation
import PluginHost
import Sampling
import Trajectory

/// φ/ψ histograms of a sample set and a reference, their KL and TV, basin populations, and a plot.
struct RamachandranReport: Codable {
    var frames: Int
    var referenceFrames: Int
    var bins: Int
    /// KL(reference ‖ samples) in nats, floor 1e-10 (Sources/Sampling/Ramachandran.swift).
    var kl: Double
    var tv: Double
    /// Whether the samples were weighted by their `log_weight` (self-normalised).
    var weighted: Bool
    /// Basin populations (αR, β/PII, αL; Sources/Analysis/BasinPopulations.swift) of both sets.
    var basins: [String: Double]
    var referenceBasins: [String: Double]
    /// Bin edges of both angles, degrees (bins + 1 values from −180 to 180).
    var binEdgesDegrees: [Double]
    /// Probabilities per bin, φ-major: index = φ bin × bins + ψ bin.
    var histogram: [Double]
    var referenceHistogram: [Double]
    /// The finite-sample floor of `tv`: TV between two i.i.d. sets of the same sizes, estimated by
    /// splitting the pooled frames at random (mean of 20 splits; unweighted samples only).
    var iidFloorTV: Double?
    /// TV of the first `frames` sample frames against the reference (--prefixes), for
    /// time-to-accuracy curves; chain-interleaved files make a prefix a shorter run of every chain.
    var prefixes: [Prefix]?
    /// Basin populations with standard errors and convergence (unweighted sets; `BasinReport`),
    /// the frames split into `chains` / `referenceChains` interleaved chains.
    var basinErrors: BasinReport?
    var referenceBasinErrors: BasinReport?
    /// The chains the samples' and the reference's frames were split into for the basin errors,
    /// and where that number came from: "--chains", "recorded in the file" or "default".
    var chains: Int = 1
    var chainsSource: String = "default"
    var referenceChains: Int = 1
    var referenceChainsSource: String = "default"

    /// Peptides with more than one φ/ψ pair: each residue's basin populations, named ("ALA2"), of
    /// both sets, with errors for unweighted samples. (The histograms, KL and TV are the first
    /// residue's.)
    var residues: [Residue]?

    struct Residue: Codable {
        var residue: String
        var basins: [String: Double]
        var referenceBasins: [String: Double]
        var basinErrors: BasinReport?
    }

    struct Prefix: Codable {
        var frames: Int
        var tv: Double
    }

    /// - Parameters:
    ///   - samples, reference: trajectories (.nc or .npy) of the plugin's molecule.
    ///   - system: a 3-D plugin system whose topology (names and residue numbers) locates
    ///     φ = C–N–CA–C and ψ = N–CA–C–N.
    ///   - plot: when given, one SVG with samples, reference and their difference side by side
    ///     (degrees; the two densities on one shared log colour scale), KL, TV and basin populations.
    ///   - chains, referenceChains: the chains each file's frames are interleaved from; nil: the
    ///     count recorded in the file (`TrajectoryProvenance`), else 1. A given count that differs
    ///     from the recorded one is used, with a warning.
    static func compute(samples: String, reference: String, system: EnergySystem, bins: Int = 60,
                        plot: String?, prefixes: Bool = false, chains: Int? = nil, referenceChains: Int? = nil,
                        useWeights: Bool = true) throws -> RamachandranReport {
        guard let atoms = system.atoms(), system.dimension == 3 else {
            throw FailureMessage("\(system.plugin.name) gives no 3-D topology: φ/ψ need atom names")
        }
        let residues = try ramachandranResidues(names: atoms.map(\.name), residueNumbers: atoms.map(\.residueNumber),
                                                residueNames: atoms.map(\.residue))
        let indices = residues[0].indices
        var perResidue: [String: [[(phi: Double, psi: Double)]]] = [:]  // path → per residue (peptides)
        func angles(_ path: String, chains given: Int?, option: String)
            throws -> ([(phi: Double, psi: Double)], [Double]?, chains: Int, source: String) {
            let set = try SampleSet(path: path, system: system)
            let result = ramachandranAngles(positions: set.positions, frames: set.count, atoms: atoms.count,
                                            indices: indices)
            if residues.count > 1 {
                perResidue[path] = residues.map {
                    ramachandranAngles(positions: set.positions, frames: set.count, atoms: atoms.count, indices: $0.indices)
                }
            }
            let (chains, source) = try resolveChains(given: given, recorded: set.recordedChains, frames: set.count,
                                                     path: path, option: option)
            return (result, useWeights ? set.logWeights.map { ImportanceWeights(logWeights: $0).normalizedWeights } : nil,
                    chains, source)
        }
        let (sampleAngles, weights, chains, chainsSource) = try angles(samples, chains: chains, option: "--chains")
        let (referenceAngles, _, referenceChains, referenceSource) = try angles(reference, chains: referenceChains,
                                                                               option: "--reference-chains")
        let model = RamachandranHistogram(angles: sampleAngles, weights: weights, bins: bins)
        let target = RamachandranHistogram(angles: referenceAngles, bins: bins)
        let degrees = 180 / Double.pi
        func basins(_ angles: [(phi: Double, psi: Double)], _ weights: [Double]?) -> [String: Double] {
            let p = RamachandranBasin.populations(phi: angles.map { $0.phi * degrees }, psi: angles.map { $0.psi * degrees },
                                                  weights: weights)
            return Dictionary(uniqueKeysWithValues: p.map { ($0.key.rawValue, $0.value) })
        }
        var report = RamachandranReport(
            frames: sampleAngles.count, referenceFrames: referenceAngles.count, bins: bins,
            kl: klDivergence(reference: target, model: model), tv: totalVariation(target, model), weighted: weights != nil,
            basins: basins(sampleAngles, weights), referenceBasins: basins(referenceAngles, nil),
            binEdgesDegrees: (0...bins).map { -180 + 360 * Double($0) / Double(bins) },
            histogram: model.probabilities, referenceHistogram: target.probabilities)
        (report.chains, report.chainsSource) = (chains, chainsSource)
        if residues.count > 1, let sampled = perResidue[samples], let referenced = perResidue[reference] {
            report.residues = residues.indices.map { r in
                Residue(residue: residues[r].label, basins: basins(sampled[r], weights),
                        referenceBasins: basins(referenced[r], nil),
                        basinErrors: weights == nil ? BasinReport(chains: interleaved(sampled[r], chains: chains)) : nil)
            }
        }
        (report.referenceChains, report.referenceChainsSource) = (referenceChains, referenceSource)
        if weights == nil {
            report.iidFloorTV = iidFloor(sampleAngles, referenceAngles, bins: bins)
            report.basinErrors = BasinReport(chains: interleaved(sampleAngles, chains: chains))
        }
        report.referenceBasinErrors = BasinReport(chains: interleaved(referenceAngles, chains: referenceChains))
        if prefixes {
            var k = sampleAngles.count
            var result: [Prefix] = []
            while k >= 100 {
                let head = RamachandranHistogram(angles: Array(sampleAngles.prefix(k)), weights: weights.map { Array($0.prefix(k)) }, bins: bins)
                result.insert(Prefix(frames: k, tv: totalVariation(target, head)), at: 0)
                k = Int((Double(k) / 2.0.squareRoot()).rounded())
            }
            report.prefixes = result
        }
        if let plot {
            try SVGPlot.write(report.figure(samples: samples, reference: reference), to: plot)
        }
        return report
    }

    /// The chains to split a file's frames into: `given` (an option), else the count recorded in
    /// the file, else 1. Warns (stderr) when a given count differs from the recorded one; refuses
    /// more chains than half the frames (each chain needs two frames for its split-R̂).
    static func resolveChains(given: Int?, recorded: Int?, frames: Int, path: String, option: String)
        throws -> (chains: Int, source: String) {
        let (chains, source): (Int, String) = given.map { ($0, option) } ?? recorded.map { ($0, "recorded in the file") } ?? (1, "default")
        if let given, let recorded, given != recorded {
            FileHandle.standardError.write(Data(
                "warning: \(option) \(given) differs from the \(recorded) chains recorded in \(path): its frames are split into \(given) interleaved chains as asked, which mixes chains in the split-R̂, ESS and basin entries (leave \(option) out to use the recorded count)\n".utf8))
        }
        if frames > 0 && chains > frames / 2 {
            throw FailureMessage("\(option) \(chains) (\(source)) is more than half the \(frames) frames of \(path): every chain needs at least 2 frames for its split-R̂")
        }
        return (chains, source)
    }

    /// Frames written chain-interleaved (frame f belongs to chain f mod `chains`), in degrees, per chain.
    static func interleaved(_ angles: [(phi: Double, psi: Double)], chains: Int) -> [[(phi: Double, psi: Double)]] {
        let degrees = 180 / Double.pi
        return (0..<chains).map { c in
            stride(from: c, to: angles.count, by: chains).map { (phi: angles[$0].phi * degrees, psi: angles[$0].psi * degrees) }
        }
    }

    /// Mean TV between random splits (sizes of `a` and `b`) of the pooled frames of `a` and `b`.
    static func iidFloor(_ a: [(phi: Double, psi: Double)], _ b: [(phi: Double, psi: Double)], bins: Int) -> Double {
        var rng = SeededGenerator(seed: 12345)
        var pooled = a + b
        var total = 0.0
        for _ in 0..<20 {
            pooled.shuffle(using: &rng)
            total += totalVariation(RamachandranHistogram(angles: Array(pooled.prefix(a.count)), bins: bins),
                                    RamachandranHistogram(angles: Array(pooled.suffix(b.count)), bins: bins))
        }
        return total / 20
    }

    /// Samples, reference and samples − reference side by side, with the numbers underneath.
    func figure(samples: String, reference: String) -> String {
        // Grid rows are ψ (bottom = −180°), columns φ; the histograms are φ-major.
        func grid(_ p: [Double]) -> SVGPlot.Grid {
            var values = [Double](repeating: 0, count: bins * bins)
            for i in 0..<bins { for j in 0..<bins { values[j * bins + i] = p[i * bins + j] } }
            return SVGPlot.Grid(columns: bins, rows: bins, values: values, xRange: -180...180, yRange: -180...180)
        }
        let positive = (histogram + referenceHistogram).filter { $0 > 0 }
        let shared = log10(positive.min() ?? 1e-6)...log10(positive.max() ?? 1)
        let difference = zip(histogram, referenceHistogram).map { $0 - $1 }
        let largest = max(difference.map(abs).max() ?? 0, 1e-12)
        let ticks: [Double] = [-180, -120, -60, 0, 60, 120, 180]
        func name(_ path: String) -> String { URL(fileURLWithPath: path).lastPathComponent }
        let panels = [
            SVGPlot.heatmap(grid(histogram), title: "samples: \(name(samples))", xLabel: "φ (degrees)", yLabel: "ψ (degrees)",
                            colorLabel: "log₁₀ probability per bin", scale: .logarithmic, range: shared,
                            xTicks: ticks, yTicks: ticks, width: 500, height: 440),
            SVGPlot.heatmap(grid(referenceHistogram), title: "reference: \(name(reference))", xLabel: "φ (degrees)",
                            yLabel: "ψ (degrees)", colorLabel: "log₁₀ probability per bin", scale: .logarithmic,
                            range: shared, xTicks: ticks, yTicks: ticks, width: 500, height: 440),
            SVGPlot.heatmap(grid(difference), title: "samples − reference", xLabel: "φ (degrees)", yLabel: "ψ (degrees)",
                            colorLabel: "probability difference per bin", scale: .linear, range: -largest...largest,
                            palette: .diverging, xTicks: ticks, yTicks: ticks, width: 500, height: 440),
        ]
        func populations(_ p: [String: Double]) -> String {
            RamachandranBasin.allCases.map { String(format: "%@ %.3f", $0.rawValue, p[$0.rawValue] ?? 0) }.joined(separator: ", ")
        }
        let notes = [
            String(format: "KL(reference ‖ samples) = %.4f nats, TV = %.4f  (%d×%d bins of %.0f°; %d sample frames%@, %d reference frames)",
                   kl, tv, bins, bins, 360 / Double(bins), frames, weighted ? ", importance-weighted" : "", referenceFrames),
            "basin populations, samples: " + populations(basins) + ";  reference: " + populations(referenceBasins),
            "basins: φ ≥ 0 αL; φ < 0 and −120° ≤ ψ < 50° αR; else β/PII. Densities share one colour scale; white: no frame.",
        ]
        return SVGPlot.row(panels, title: "Ramachandran plot (φ = C–N–CA–C, ψ = N–CA–C–N)", notes: notes)
    }

    func printed(samples: String, reference: String) -> String {
        func populations(_ p: [String: Double]) -> String {
            RamachandranBasin.allCases.map { String(format: "%@ %.3f", $0.rawValue, p[$0.rawValue] ?? 0) }.joined(separator: ", ")
        }
        return """
            Ramachandran\(residues.map { " of \($0[0].residue) (the first of \($0.count) residues)" } ?? "") (φ = C–N–CA–C, ψ = N–CA–C–N), \(bins)×\(bins) bins over (−180°, 180°]²
              samples:   \(samples) (\(frames) frames\(weighted ? ", importance-weighted" : ""), \(chains) chain\(chains == 1 ? "" : "s") \(chainsSource == "default" ? "(none recorded in the file; --chains sets it)" : "(" + chainsSource + ")"))
              reference: \(reference) (\(referenceFrames) frames, \(referenceChains) chain\(referenceChains == 1 ? "" : "s") \(referenceChainsSource == "default" ? "(none recorded in the file; --reference-chains sets it)" : "(" + referenceChainsSource + ")"))
              KL(reference ‖ samples) = \(String(format: "%.4f", kl)) nats (floor 1e-10)
              TV = \(String(format: "%.4f", tv))\(iidFloorTV.map { String(format: "  (i.i.d. floor %.4f: pooled frames split at random)", $0) } ?? "")
            \((prefixes ?? []).map { String(format: "  first %d frames: TV = %.4f", $0.frames, $0.tv) }.joined(separator: "\n"))
              basin populations, samples:   \(populations(basins))
              basin populations, reference: \(populations(referenceBasins))
            \((residues ?? []).map { "  \($0.residue): samples \(populations($0.basins)); reference \(populations($0.referenceBasins))" }.joined(separator: "\n"))
            \(basinErrors.map { "samples " + $0.printed() } ?? "")
            \(referenceBasinErrors.map { "reference " + $0.printed() } ?? "")
            """
    }
}

extension Ensemble {
    /// `ensemble ramachandran`: φ/ψ analysis of a peptide trajectory against a reference.
    struct Ramachandran: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "φ/ψ histograms of a trajectory against a reference: KL, total variation, plots.",
            discussion: """
                The plugin gives the topology (atom names and residues locate the backbone dihedrals), \
                e.g. --plugin alanine. Frames with a `log_weight` variable are importance-weighted.

                Example:
                  ensemble sample --plugin alanine --sampler pt --samples 2000 \\
                    --seed 1 --out ala.nc
                  ensemble sample --plugin alanine --sampler pt --samples 2000 \\
                    --seed 2 --out ala2.nc
                  ensemble ramachandran ala.nc --reference ala2.nc \\
                    --plugin alanine --plot rama.svg --json rama.json
                  # a longer reference: make alanine-reference (~40 min on 2 cores)
                """)

        @OptionGroup var system: SystemOptions
        @Argument(help: "Trajectory to analyse (.nc, or .npy in the plugin's units).")
        var samples: String
        @Option(help: "Reference trajectory (.nc or .npy), e.g. from `make alanine-reference`.")
        var reference: String
        @Option(help: "Bins per angle.")
        var bins: Int = 60
        @Option(help: "Write the φ/ψ plot (SVG): samples, reference and their difference side by side, KL/TV and basin populations.")
        var plot: String?
        @Option(help: "Write the numbers as JSON.")
        var json: String?
        @Option(help: "Chains the samples' frames are interleaved from (as `sample` writes them), for the basin errors (default: the count recorded in the file, else 1).")
        var chains: Int?
        @Option(help: "Chains the reference's frames are interleaved from (default: the count recorded in the file, else 1).")
        var referenceChains: Int?
        @Flag(help: "Also the TV of the first N, N/√2, N/2, … (≥ 100) sample frames against the reference.")
        var prefixes = false
        @Flag(help: "Count every sample frame once even when it has a log_weight (a sampler's raw draws, whose weights may be unusable).")
        var unweighted = false
        @Flag(help: "Replace existing --plot and --json files (never the samples or the reference).")
        var overwrite = false

        func validate() throws {
            guard bins > 0, chains ?? 1 > 0, referenceChains ?? 1 > 0 else { throw ValidationError("--bins, --chains and --reference-chains must be positive") }
            var files = OutputFiles()
            files.output("--plot", plot)
            files.output("--json", json)
            files.input("the samples", samples)
            files.input("--reference", reference)
            try files.check(overwrite: overwrite)
        }

        func run() throws {
            let report = try RamachandranReport.compute(samples: samples, reference: reference,
                                                        system: try system.makeSystem(), bins: bins, plot: plot,
                                                        prefixes: prefixes, chains: chains, referenceChains: referenceChains,
                                                        useWeights: !unweighted)
            print(report.printed(samples: samples, reference: reference))
            if let json {
                try writeJSON(report, to: json)
            }
        }
    }
}
