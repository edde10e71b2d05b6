import ArgumentParser
import Foundation
import PluginHost
import Sampling
import Trajectory

/// g(r) and energy per particle of a periodic sample set against a reference, with errors.
struct RDFReport: Codable {
    struct Set: Codable {
        var path: String
        var frames: Int
        /// Importance-weighted (self-normalised `log_weight`) or plain frames.
        var weighted: Bool
        var ess: Double?
        /// The chains the frames are interleaved from, as recorded in the file (nil: not recorded).
        var chains: Int? = nil
        /// Mean of u/n × `energyScale` (e.g. kT/ε to get U/(nε)) and its standard error.
        var energyPerParticle: Double
        var energyPerParticleError: Double
        var rdf: RadialDistribution
    }
    var samples: Set
    var reference: Set
    var energyScale: Double
    /// |Δ(energy per particle)| / combined standard error.
    var energyDeviationSigma: Double
    var rdfMaxDeviation: Double
    var rdfMaxSigma: Double
    var rdfChiSquaredPerBin: Double
    var energyEvaluations: Int
    var wallSeconds: Double

    func printed() -> String {
        func line(_ name: String, _ s: Set) -> String {
            String(format: "  %@: %@ (%d frames%@%@), energy per particle %.4f ± %.4f", name, s.path, s.frames,
                   s.chains.map { ", \($0) chain\($0 == 1 ? "" : "s") recorded" } ?? "",
                   s.weighted ? String(format: ", weighted, ESS %.1f", s.ess ?? .nan) : "",
                   s.energyPerParticle, s.energyPerParticleError)
        }
        return """
            g(r) and energy per particle (× \(formatMetric(energyScale)) per u/n), \(samples.rdf.g.count) bins up to r = \(String(format: "%.4g", samples.rdf.radii.last! + samples.rdf.binWidth / 2))
            \(line("samples  ", samples))
            \(line("reference", reference))
              energy per particle: |Δ| = \(String(format: "%.4f", abs(samples.energyPerParticle - reference.energyPerParticle))) (\(String(format: "%.2f", energyDeviationSigma)) σ)
              g(r): max |Δg| = \(String(format: "%.4f", rdfMaxDeviation)), max |Δg|/σ = \(String(format: "%.2f", rdfMaxSigma)), χ²/bin = \(String(format: "%.3f", rdfChiSquaredPerBin))
              energy evaluations: \(energyEvaluations), wall time \(String(format: "%.2f", wallSeconds)) s
            """ + ((samples.ess ?? .infinity) < 10 ? "\n  warning: ESS < 10, the weighted error bars (delta method) are not meaningful" : "")
    }
}

extension Ensemble {
    /// `ensemble rdf`: radial distribution function and energy per particle of a periodic system.
    struct RDF: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rdf",
            abstract: "Periodic systems: g(r) and energy per particle of samples against a reference, with error bars.",
            discussion: """
                g(r) uses minimum-image distances up to half the box edge and the ideal-gas shell count \
                ½n(n−1)·V_shell/V. Frames with a `log_weight` variable (ensemble sample --model) are \
                importance-weighted, self-normalised, with delta-method standard errors \
                √(Σ w̄²(v − μ̂)²); plain frames (MCMC) get batch-means errors (20 blocks). Energies are \
                recomputed with the plugin; energy per particle is u/n × --energy-scale (give kT/ε, \
                e.g. the plugin's temperature, for U/(nε)).

                Example:
                  ensemble rdf tb.nc --reference mcmc.nc --plugin lennard-jones \\
                    --param particles=16 --param density=0.5 \\
                    --param temperature=2 --param cutoff=1.55 \\
                    --energy-scale 2 --plot rdf.svg --json rdf.json
                """)

        @Argument(help: ArgumentHelp("Samples (.nc or .npy).", valueName: "samples"))
        var samples: String
        @Option(help: ArgumentHelp("Reference trajectory (.nc or .npy), e.g. a long MCMC run.", valueName: "path"))
        var reference: String
        @OptionGroup var system: SystemOptions
        @Option(help: "Histogram bins between 0 and --max-radius.")
        var bins: Int = 60
        @Option(help: "Largest radius (default and upper bound: half the shortest box edge).")
        var maxRadius: Double?
        @Option(help: "Multiply u/n by this (kT/ε gives U/(nε)).")
        var energyScale: Double = 1
        @Flag(help: "Ignore log_weight (treat the samples as plain frames).")
        var unweighted = false
        @Option(help: "Write g(r) of both sets with error bars (SVG).")
        var plot: String?
        @Option(help: "Write the report as JSON.")
        var json: String?
        @Flag(help: "Replace existing --plot and --json files (never the samples or the reference).")
        var overwrite = false

        func validate() throws {
            guard bins > 0 else { throw ValidationError("--bins must be positive, got \(bins)") }
            if let maxRadius, !(maxRadius > 0) { throw ValidationError("--max-radius must be positive") }
            for path in [samples, reference] where !FileManager.default.fileExists(atPath: path) {
                throw ValidationError("\(path) does not exist")
            }
            var files = OutputFiles()
            files.output("--plot", plot)
            files.output("--json", json)
            files.input("the samples", samples)
            files.input("--reference", reference)
            try files.check(overwrite: overwrite)
        }

        func run() throws {
            let clock = ContinuousClock.now
            let energySystem = try system.makeSystem()
            guard let box = energySystem.box else {
                throw FailureMessage("\(energySystem.plugin.name) \(energySystem.parameters) is not periodic: g(r) needs a box (e.g. --param density=0.5)")
            }
            let n = energySystem.particleCount
            func analyse(_ path: String, allowWeights: Bool) throws -> RDFReport.Set {
                let set = try SampleSet(path: path, system: energySystem)
                let logWeights = allowWeights ? set.logWeights : nil
                let weights = logWeights.map { ImportanceWeights(logWeights: $0).normalizedWeights }
                let u = try energySystem.evaluate(set.positions, batch: set.count, withGradients: false).energies
                let e = WeightedEstimate.meanAndError(u.map { $0 / Double(n) * energyScale }, weights: weights)
                let rdf = RadialDistribution.compute(positions: set.positions, particles: n, box: box, bins: bins,
                                                     maxRadius: maxRadius, weights: weights)
                return RDFReport.Set(path: path, frames: set.count, weighted: weights != nil,
                                     ess: logWeights.map { ImportanceWeights(logWeights: $0).effectiveSampleSize },
                                     chains: set.recordedChains,
                                     energyPerParticle: e.mean, energyPerParticleError: e.error, rdf: rdf)
            }
            let generated = try analyse(samples, allowWeights: !unweighted)
            let ref = try analyse(reference, allowWeights: false)
            let comparison = generated.rdf.comparison(with: ref.rdf)
            let energySigma = (generated.energyPerParticleError * generated.energyPerParticleError
                               + ref.energyPerParticleError * ref.energyPerParticleError).squareRoot()
            let report = RDFReport(
                samples: generated, reference: ref, energyScale: energyScale,
                energyDeviationSigma: abs(generated.energyPerParticle - ref.energyPerParticle) / energySigma,
                rdfMaxDeviation: comparison.maxDeviation, rdfMaxSigma: comparison.maxSigma,
                rdfChiSquaredPerBin: comparison.chiSquaredPerBin, energyEvaluations: energySystem.energyEvaluations,
                wallSeconds: (ContinuousClock.now - clock).inSeconds)
            print(report.printed())
            if let plot {
                func series(_ s: RDFReport.Set, _ label: String) -> SVGPlot.LineSeries {
                    SVGPlot.LineSeries(label: label, x: s.rdf.radii, y: s.rdf.g, errors: s.rdf.error.map { 2 * $0 })
                }
                let unit = energySystem.lengthUnitAngstrom
                let svg = SVGPlot.linePlot(
                    [series(generated, "\(URL(fileURLWithPath: samples).lastPathComponent)\(generated.weighted ? String(format: " (weighted, ESS %.0f)", generated.ess ?? 0) : "")"),
                     series(ref, "reference \(URL(fileURLWithPath: reference).lastPathComponent)")],
                    title: "g(r), \(energySystem.plugin.name) n = \(n) (bars: ±2σ)",
                    xLabel: unit == 1 ? "r (Å)" : String(format: "r (plugin length unit, 1 unit = %.4g Å)", unit),
                    yLabel: "g(r) (1 = ideal gas)",
                    notes: [String(format: "energy per particle (u/n × %@): samples %.4f ± %.4f, reference %.4f ± %.4f (%.1fσ apart)",
                                   formatMetric(energyScale), generated.energyPerParticle, generated.energyPerParticleError,
                                   ref.energyPerParticle, ref.energyPerParticleError, report.energyDeviationSigma),
                            String(format: "g(r): max |Δg| = %.3f, max |Δg|/σ = %.2f, χ²/bin = %.2f", report.rdfMaxDeviation,
                                   report.rdfMaxSigma, report.rdfChiSquaredPerBin)],
                    legendCorner: .bottomRight)
                try SVGPlot.write(svg, to: plot)
                print("wrote \(plot)")
            }
            if let json {
                try writeJSON(report, to: json)
                print("wrote \(json)")
            }
        }
    }
}
