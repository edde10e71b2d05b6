import ArgumentParser
import Foundation
import PluginHost
import Sampling
import Trajectory

/// φ/ψ histograms of a sample set and a reference, their KL and TV, and plots.
struct RamachandranReport: Codable {
    var frames: Int
    var referenceFrames: Int
    var bins: Int
    /// KL(reference ‖ samples) in nats, floor 1e-10 (Sources/Sampling/Ramachandran.swift).
    var kl: Double
    var tv: Double
    /// Whether the samples were weighted by their `log_weight` (self-normalised).
    var weighted: Bool

    /// - Parameters:
    ///   - samples, reference: trajectories (.nc or .npy) of the plugin's molecule.
    ///   - system: a 3-D plugin system whose topology (names and residue numbers) locates
    ///     φ = C–N–CA–C and ψ = N–CA–C–N.
    ///   - plot: when given, writes `plot` (samples) and `plot` with `-reference` before the extension.
    static func compute(samples: String, reference: String, system: EnergySystem, bins: Int = 60,
                        plot: String?) throws -> RamachandranReport {
        guard let atoms = system.atoms(), system.dimension == 3 else {
            throw FailureMessage("\(system.plugin.name) gives no 3-D topology: φ/ψ need atom names")
        }
        let indices = try ramachandranIndices(names: atoms.map(\.name), residueNumbers: atoms.map(\.residueNumber))
        func angles(_ path: String) throws -> ([(phi: Double, psi: Double)], [Double]?) {
            let set = try SampleSet(path: path, system: system)
            let result = ramachandranAngles(positions: set.positions, frames: set.count, atoms: atoms.count,
                                            indices: indices)
            return (result, set.logWeights.map { ImportanceWeights(logWeights: $0).normalizedWeights })
        }
        let (sampleAngles, weights) = try angles(samples)
        let (referenceAngles, _) = try angles(reference)
        let model = RamachandranHistogram(angles: sampleAngles, weights: weights, bins: bins)
        let target = RamachandranHistogram(angles: referenceAngles, bins: bins)
        if let plot {
            let referencePlot = URL(fileURLWithPath: plot).deletingPathExtension().path + "-reference.svg"
            for (path, histogram, title) in [(plot, model, "samples: \(URL(fileURLWithPath: samples).lastPathComponent)"),
                                             (referencePlot, target, "reference: \(URL(fileURLWithPath: reference).lastPathComponent)")] {
                // Grid rows are ψ (bottom = −π), columns φ.
                var values = [Double](repeating: 0, count: bins * bins)
                let p = histogram.probabilities
                for i in 0..<bins { for j in 0..<bins { values[j * bins + i] = p[i * bins + j] } }
                let grid = SVGPlot.Grid(columns: bins, rows: bins, values: values,
                                        xRange: -Double.pi...Double.pi, yRange: -Double.pi...Double.pi)
                try SVGPlot.write(SVGPlot.heatmap(grid, title: "Ramachandran, \(title)", xLabel: "φ (rad)",
                                                  yLabel: "ψ (rad)", colorLabel: "log₁₀ probability", scale: .logarithmic),
                                  to: path)
            }
        }
        return RamachandranReport(frames: sampleAngles.count, referenceFrames: referenceAngles.count, bins: bins,
                                  kl: klDivergence(reference: target, model: model),
                                  tv: totalVariation(target, model), weighted: weights != nil)
    }

    func printed(samples: String, reference: String) -> String {
        """
        Ramachandran (φ = C–N–CA–C, ψ = N–CA–C–N), \(bins)×\(bins) bins over (−π, π]²
          samples:   \(samples) (\(frames) frames\(weighted ? ", importance-weighted" : ""))
          reference: \(reference) (\(referenceFrames) frames)
          KL(reference ‖ samples) = \(String(format: "%.4f", kl)) nats (floor 1e-10)
          TV = \(String(format: "%.4f", tv))
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
                  make alanine-reference
                  ensemble ramachandran out/ala.nc --reference out/alanine-reference.nc \\
                      --plugin alanine --plot out/ala-rama.svg --json out/ala-rama.json
                """)

        @OptionGroup var system: SystemOptions
        @Argument(help: "Trajectory to analyse (.nc, or .npy in the plugin's units).")
        var samples: String
        @Option(help: "Reference trajectory (.nc or .npy), e.g. from `make alanine-reference`.")
        var reference: String
        @Option(help: "Bins per angle.")
        var bins: Int = 60
        @Option(help: "Write the φ/ψ heatmaps (SVG): this file and <name>-reference.svg.")
        var plot: String?
        @Option(help: "Write the numbers as JSON.")
        var json: String?

        func validate() throws {
            guard bins > 0 else { throw ValidationError("--bins must be positive") }
        }

        func run() throws {
            let report = try RamachandranReport.compute(samples: samples, reference: reference,
                                                        system: try system.makeSystem(), bins: bins, plot: plot)
            print(report.printed(samples: samples, reference: reference))
            if let json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                try encoder.encode(report).write(to: URL(fileURLWithPath: json))
            }
        }
    }
}
