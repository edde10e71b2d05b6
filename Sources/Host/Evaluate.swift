import Equivariant
import ArgumentParser
import Foundation
import PluginHost
import Sampling
import Trajectory

/// Reads sample sets for evaluation: AMBER NetCDF (Å, padded to 3-D) or .npy
/// ([count, n·d] in plugin length units, as the benchmark sets are).
struct SampleSet {
    var positions: [Double]
    var count: Int
    var logWeights: [Double]?
    /// The per-frame `energy` variable of a NetCDF file (as `ensemble` writes it), if any.
    var energies: [Double]?
    /// What made a NetCDF file (chains, plugin, parameters, sampler), when `ensemble` recorded it.
    var provenance: TrajectoryProvenance?
    /// The chains the frames are interleaved from, as recorded in the file (nil: not recorded, or .npy).
    var recordedChains: Int? { provenance?.chains }

    /// - Parameter warn: print a warning on stderr when the file was written by another plugin or
    ///   with other parameters than `system`'s (`provenanceWarning`).
    init(path: String, system: EnergySystem, warn: Bool = true) throws {
        try Self.checkReadable(path)
        let n = system.particleCount, d = system.dimension
        if path.hasSuffix(".npy") {
            let array = try NumPyArray(contentsOf: path)
            guard array.values.count % (n * d) == 0, array.values.count > 0 else {
                throw FailureMessage("\(path): shape \(array.shape) does not hold whole configurations of \(n) particles × \(d) dimensions")
            }
            positions = array.values
            count = array.values.count / (n * d)
            logWeights = nil
            energies = nil
            if warn, let message = Self.unitWarning(positions, count: count, path: path, system: system) {
                FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
            }
        } else {
            let reader = try AmberNetCDFReader(path: path)
            guard reader.atomCount == n else {
                let recorded = reader.provenance.plugin.map { plugin in
                    " (it was written with plugin '\(plugin)'\((reader.provenance.pluginParameters ?? "").isEmpty ? "" : " and --param \(reader.provenance.pluginParameters!.split(separator: ";").joined(separator: " --param "))"))"
                } ?? ""
                throw FailureMessage("\(path) has \(reader.atomCount) atoms, the plugin system has \(n) (plugin '\(system.plugin.name)'\(system.parameters.isEmpty ? "" : ", \(system.parameters)"))\(recorded)")
            }
            let raw = try reader.allCoordinates()
            count = reader.frameCount
            let unit = Self.lengthUnit(of: reader, system: system)
            try SampleSet.checkCompatible(reader, coordinates: raw, system: system, unit: unit)
            var x = [Double](repeating: 0, count: count * n * d)
            for f in 0..<count { for i in 0..<n { for k in 0..<d {
                x[(f * n + i) * d + k] = raw[(f * n + i) * 3 + k] / unit
            } } }
            positions = x
            logWeights = reader.perFrameVariableNames.contains("log_weight") ? try reader.values(of: "log_weight") : nil
            energies = reader.perFrameVariableNames.contains("energy") ? try reader.values(of: "energy") : nil
            provenance = reader.provenance
            if warn, let message = Self.provenanceWarning(reader.provenance, path: path, system: system) {
                FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
            }
        }
    }

    /// A .npy carries no unit and is read in the plugin's: the warning when its nearest-neighbour
    /// distances are more than twice (or less than half) those of the plugin's start structure,
    /// and the plugin's unit is not 1 Å — most likely a file in Å given to a plugin in reduced
    /// units (issue 23: energy W2 147 without a hint). Looks at up to 20 frames.
    static func unitWarning(_ positions: [Double], count: Int, path: String, system: EnergySystem) -> String? {
        let unit = system.lengthUnitAngstrom, n = system.particleCount, d = system.dimension
        guard abs(unit - 1) > 1e-6, n >= 2, count > 0, let start = system.initialPositions() else { return nil }
        func nearest(_ x: ArraySlice<Double>) -> Double {
            var best = Double.infinity
            let o = x.startIndex
            for i in 0..<n { for j in 0..<i {
                var r2 = 0.0
                for k in 0..<d { let t = x[o + i * d + k] - x[o + j * d + k]; r2 += t * t }
                best = min(best, r2)
            } }
            return best.squareRoot()
        }
        let frames = (0..<min(count, 20)).map { nearest(positions[($0 * n * d)..<(($0 + 1) * n * d)]) }.sorted()
        let typical = frames[frames.count / 2], reference = nearest(start[...])
        guard reference > 0, typical.isFinite, typical > 2 * reference || typical < reference / 2 else { return nil }
        return String(format: "%@: its closest pairs are %.3g apart (median of %d frames), %.2g× those of the start structure of plugin '%@' (%.3g). A .npy is read in the plugin's length unit (1 unit = %.4g Å): if this file is in Å, divide it by %.4g first",
                      path, typical, frames.count, typical / reference, system.plugin.name, reference, unit, unit)
    }

    /// "4 chains (frames interleaved), sampler mala, plugin 'lennard-jones' (preset=lj13)", from
    /// the file's provenance (nil when it records none).
    var provenanceLine: String? {
        guard let p = provenance, p.chains != nil || p.plugin != nil else { return nil }
        var parts: [String] = []
        if let c = p.chains { parts.append(c == 1 ? "1 chain" : "\(c) chains (frames interleaved)") }
        if let s = p.sampler { parts.append("sampler \(s)") }
        if let plugin = p.plugin {
            parts.append("plugin '\(plugin)'" + ((p.pluginParameters ?? "").isEmpty ? "" : " (\(p.pluginParameters!))"))
        }
        return "recorded: " + parts.joined(separator: ", ")
    }

    /// The warning for a trajectory recorded with another plugin, other parameters or another
    /// length unit than `system` (nil when they agree or the file records nothing).
    static func provenanceWarning(_ provenance: TrajectoryProvenance, path: String, system: EnergySystem) -> String? {
        guard let plugin = provenance.plugin else { return nil }
        let recorded = provenance.pluginParameters ?? ""
        func described(_ name: String, _ parameters: String) -> String {
            "'\(name)'" + (parameters.isEmpty ? " (no parameters)" : " (\(parameters))")
        }
        if plugin != system.plugin.name {
            return "\(path) was written with plugin \(described(plugin, recorded)), but is read here with plugin \(described(system.plugin.name, system.parameters)): its energies and metrics refer to another system. Give --plugin \(plugin)\(recorded.isEmpty ? "" : " and its --param values") unless that is what you mean"
        }
        if !TrajectoryProvenance.sameParameters(recorded, system.parameters) {
            return "\(path) was written with plugin \(described(plugin, recorded)), but is read here with different parameters, \(described(system.plugin.name, system.parameters)): energies and metrics refer to another system unless the difference is only in defaults spelled out"
        }
        return nil
    }

    /// Å per plugin length unit of the file's coordinates: the unit it records (so a file keeps
    /// its meaning when a plugin's unit changes), else — for a Lennard-Jones file `ensemble` wrote
    /// before it recorded units — the 3.405 Å the plugin then used whatever σ (issue 23 made the
    /// lj13/lj55 unit r_m = 3.822 Å), else the plugin's unit.
    static func lengthUnit(of reader: AmberNetCDFReader, system: EnergySystem) -> Double {
        if let unit = reader.provenance.lengthUnitAngstrom { return unit }
        if reader.provenance.plugin == nil, system.plugin.name == "lennard-jones",
           reader.globalAttributes["program"] == .text("ensemble"),
           reader.title.contains("lennard-jones"), !reader.title.contains("length_unit=") {
            return 3.405
        }
        return system.lengthUnitAngstrom
    }

    /// Refuses, with a message that says which formats are read, a path that is a directory,
    /// another trajectory format (.dcd, .xtc, .trr, .pdb, …) or a file that is not netCDF.
    static func checkReadable(_ path: String) throws {
        let formats = "ensemble reads AMBER NetCDF trajectories (.nc, as `ensemble sample` and cpptraj write them) and NumPy .npy arrays (frames × particles·dimension, in the plugin's length unit)"
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw FailureMessage("\(path) does not exist")
        }
        if isDirectory.boolValue { throw FailureMessage("\(path) is a directory, not a trajectory: \(formats)") }
        if path.hasSuffix(".npy") { return }
        let foreign = ["dcd", "xtc", "trr", "pdb", "xyz", "mdcrd", "crd", "gro", "h5", "lh5", "dtr", "trj", "binpos", "rst7", "inpcrd"]
        let suffix = URL(fileURLWithPath: path).pathExtension.lowercased()
        // netCDF-3 files start with "CDF", netCDF-4 (HDF5) ones with "\u{89}HDF".
        let head = FileHandle(forReadingAtPath: path).map { handle -> Data in
            defer { try? handle.close() }
            return handle.readData(ofLength: 4)
        } ?? Data()
        let isNetCDF = head.starts(with: Array("CDF".utf8)) || head.starts(with: [0x89] + Array("HDF".utf8))
        if !isNetCDF {
            let kind = foreign.contains(suffix) ? "a .\(suffix) file" : head.isEmpty ? "an empty file" : "not a netCDF file"
            throw FailureMessage("\(path) is \(kind): \(formats). Convert other formats first, e.g. cpptraj: `trajout out.nc netcdf`, or mdtraj: `mdconvert in.\(suffix.isEmpty ? "dcd" : suffix) -o out.nc`")
        }
    }

    /// `limit` configurations drawn without replacement (seeded), or all when fewer.
    func subsample(_ limit: Int, stride: Int, seed: UInt64) -> [Double] {
        guard count > limit else { return positions }
        var rng = SeededGenerator(seed: seed)
        var indices = Array(0..<count)
        for i in 0..<limit {
            let j = i + Int(rng.next() % UInt64(count - i))
            indices.swapAt(i, j)
        }
        return SampleBatch.rows(positions, stride: stride, indices.prefix(limit))
    }
}

extension Ensemble {
    /// `ensemble evaluate`: sample-quality metrics against a reference set.
    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare samples with a reference set: energy W2, aligned/unaligned coordinate W2, distance TV, ESS, log Ẑ.",
            discussion: """
                Conventions (docs/metrics.md): energy_w2 is √ of the 1-D W2² between energy samples (ASBS \
                "E-W2"), energy_w2_squared the square (DEM); x_w2_aligned relabels and rotates (reflections \
                allowed) each reference configuration onto each generated one by a search that does not \
                depend on their orientations (Hungarian and Kabsch alternated from 48 principal-axes \
                starts), then solves the exact assignment between the sets; x_w2 is the same on centred \
                coordinates without alignment; distance_tv the TV of pair-distance histograms, 200 shared \
                bins. Both sets are subsampled to --max-samples (seeded); coordinate W2 needs equal counts, \
                so the smaller count is used for both. ESS and log Ẑ use all frames when the file has \
                log_weight.

                Example:
                  ensemble evaluate dw4.nc --reference out/reference/dw4.nc \\
                    --plugin double-well --json m.json --plot m
                  # `make reference` makes out/reference/dw4.nc by parallel tempering
                """)

        @Argument(help: ArgumentHelp("Generated samples (.nc or .npy).", valueName: "samples"))
        var samples: String
        @Option(help: ArgumentHelp("Reference samples (.nc or .npy in plugin length units).", valueName: "path"))
        var reference: String
        @OptionGroup var system: SystemOptions
        @Option(help: "Write the metrics as JSON here.")
        var json: String?
        @Option(help: "SVG plots: PREFIX-energy.svg and PREFIX-distances.svg (a trailing .svg is dropped).")
        var plot: String?
        @Option(help: "At most this many configurations of each set (seeded subsample).")
        var maxSamples: Int = 1000
        @Option(help: "Seed of the subsampling.")
        var seed: UInt64 = 1
        @Flag(inversion: .prefixedNo, help: "Remove each configuration's centre of mass (clusters; default on for free space).")
        var centre = true
        @Flag(help: "Peptides: also compare φ/ψ histograms (60×60): KL(reference ‖ samples), TV; with --plot, PREFIX-ramachandran.svg.")
        var ramachandran = false
        @Option(help: ArgumentHelp("x_w2_aligned's pair distance: invariant — minimised over permutation and rotation together, invariant to rotating either set (docs/metrics.md; ~120 µs per LJ-13 pair); asbs — the ASBS convention, Hungarian on the unrotated sets then Kabsch (not invariant; ~5 µs per pair), to compare with published numbers. The JSON names it x_w2_aligned_asbs.", valueName: "invariant|asbs"))
        var alignment: AlignmentOption = .invariant
        enum AlignmentOption: String, ExpressibleByArgument, CaseIterable { case invariant, asbs }
        @Flag(help: "Replace existing --json and --plot files (never the samples or the reference).")
        var overwrite = false

        /// --plot without a trailing .svg.
        var plotPrefix: String? { plot.map { $0.hasSuffix(".svg") ? String($0.dropLast(4)) : $0 } }

        func validate() throws {
            guard maxSamples >= 2 else { throw ValidationError("--max-samples must be ≥ 2, got \(maxSamples)") }
            for path in [samples, reference] where !FileManager.default.fileExists(atPath: path) {
                throw ValidationError("\(path) does not exist")
            }
            var files = OutputFiles()
            files.output("--json", json)
            if let prefix = plotPrefix {
                for suffix in ["energy", "distances"] + (ramachandran ? ["ramachandran"] : []) {
                    files.output("--plot", "\(prefix)-\(suffix).svg")
                }
            }
            files.input("the samples", samples)
            files.input("--reference", reference)
            try files.check(overwrite: overwrite)
        }

        func run() throws {
            let clock = ContinuousClock.now
            let energySystem = try system.makeSystem()
            let n = energySystem.particleCount, d = energySystem.dimension, stride = n * d
            let generatedSet = try SampleSet(path: samples, system: energySystem)
            let referenceSet = try SampleSet(path: reference, system: energySystem)
            let count = min(maxSamples, generatedSet.count, referenceSet.count)
            var generated = generatedSet.subsample(count, stride: stride, seed: seed)
            var ref = referenceSet.subsample(count, stride: stride, seed: seed &+ 1)
            let doCentre = centre && energySystem.box == nil
            if doCentre {
                Space.removeCentreOfMass(&generated, particles: n, dimension: d)
                Space.removeCentreOfMass(&ref, particles: n, dimension: d)
            }
            let energies = try energySystem.evaluate(generated, batch: count, withGradients: false).energies
            let referenceEnergies = try energySystem.evaluate(ref, batch: count, withGradients: false).energies
            let energyW2 = Metrics.wasserstein1D(energies, referenceEnergies)
            let aligned = Metrics.coordinateW2(generated, ref, particles: n, dimension: d, aligned: true,
                                               alignment: alignment == .asbs ? .hungarianThenKabsch : .invariant,
                                               centre: doCentre, threads: energySystem.threads)
            let unaligned = Metrics.coordinateW2(generated, ref, particles: n, dimension: d, aligned: false,
                                                 centre: doCentre, threads: energySystem.threads)
            let tv = Metrics.distanceTV(generated, ref, particles: n, dimension: d)
            var results: [(String, Double)] = [
                ("samples_used", Double(count)),
                ("energy_w2", energyW2.w2), ("energy_w2_squared", energyW2.squared),
                (alignment == .asbs ? "x_w2_aligned_asbs" : "x_w2_aligned", aligned), ("x_w2", unaligned), ("distance_tv", tv),
                ("energy_mean", energies.reduce(0, +) / Double(count)),
                ("reference_energy_mean", referenceEnergies.reduce(0, +) / Double(count)),
            ]
            if let logWeights = generatedSet.logWeights {
                let weights = ImportanceWeights(logWeights: logWeights)
                results += [("ess", weights.effectiveSampleSize), ("ess_fraction", weights.effectiveSampleFraction),
                            ("log_z", weights.logZ), ("log_z_error", weights.logZError())]
            }
            if ramachandran {
                let prefix = plotPrefix.map { $0 + "-ramachandran.svg" }
                let report = try RamachandranReport.compute(samples: samples, reference: reference,
                                                            system: energySystem, plot: prefix)
                results += [("ramachandran_kl", report.kl), ("ramachandran_tv", report.tv)]
            }
            let elapsed = ContinuousClock.now - clock
            if let chains = generatedSet.recordedChains { results.append(("chains", Double(chains))) }
            if let chains = referenceSet.recordedChains { results.append(("reference_chains", Double(chains))) }
            results += [("energy_evaluations", Double(energySystem.energyEvaluations)),
                        ("gradient_evaluations", Double(energySystem.gradientEvaluations)),
                        ("wall_seconds", elapsed.inSeconds)]
            print("metrics of \(samples) vs \(reference) (n = \(count) each\(doCentre ? ", centred" : "")):")
            for (name, set) in [("samples", generatedSet), ("reference", referenceSet)] {
                if let line = set.provenanceLine { print("  \(name): \(line)") }
            }
            for (key, value) in results { print("  \(key): \(formatMetric(value))") }
            if let json {
                let body = results.map { "  \"\($0.0)\": \($0.1.isFinite ? formatMetric($0.1) : "null")" }.joined(separator: ",\n")
                try "{\n  \"samples\": \"\(samples)\",\n  \"reference\": \"\(reference)\",\n\(body)\n}\n"
                    .write(toFile: json, atomically: true, encoding: .utf8)
                print("wrote \(json)")
            }
            if let prefix = plotPrefix {
                let unit = energySystem.lengthUnitAngstrom
                let lengthLabel = unit == 1 ? "Å" : String(format: "plugin length unit, 1 unit = %.4g Å", unit)
                let energyPlot = SVGPlot.histogram(
                    [.init(label: "generated", samples: energies), .init(label: "reference", samples: referenceEnergies)],
                    title: "energy (n = \(count) each)", xLabel: "reduced energy u = U/kT (dimensionless)",
                    yLabel: "probability density (per unit of u)",
                    notes: [String(format: "energy W2 = %.4g (√ of the 1-D W2², ASBS \"E-W2\"; W2² = %.4g)", energyW2.w2, energyW2.squared),
                            String(format: "mean u: generated %.4f, reference %.4f",
                                   energies.reduce(0, +) / Double(count), referenceEnergies.reduce(0, +) / Double(count))])
                try SVGPlot.write(energyPlot, to: prefix + "-energy.svg")
                let distancePlot = SVGPlot.histogram(
                    [.init(label: "generated", samples: Metrics.pairDistances(generated, particles: n, dimension: d)),
                     .init(label: "reference", samples: Metrics.pairDistances(ref, particles: n, dimension: d))],
                    bins: 100, title: "interatomic distances (n = \(count) configurations each)",
                    xLabel: "distance r (\(lengthLabel))", yLabel: "probability density (per length unit)",
                    notes: [String(format: "distance TV = %.4f (200 shared bins)", tv),
                            String(format: "coordinate W2: aligned %.4g, unaligned %.4g (length units)", aligned, unaligned)])
                try SVGPlot.write(distancePlot, to: prefix + "-distances.svg")
                print("wrote \(prefix)-energy.svg, \(prefix)-distances.svg")
            }
        }
    }
}

/// Metrics print with enough digits to compare, integers without a fraction.
func formatMetric(_ value: Double) -> String {
    if value.isFinite && value == value.rounded() && abs(value) < 1e15 { return String(Int(value)) }
    return String(format: "%.6g", value)
}
