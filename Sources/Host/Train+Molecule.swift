import ArgumentParser
import Foundation
import PluginHost
import Sampling
import Trajectory

extension AtomTyping: ExpressibleByArgument {}

/// What `ensemble sample --json` says about a trajectory that dsm trains on: the budget that
/// made it, and the energy it sampled.
private struct DataSummary: Decodable {
    var plugin: String
    var pluginParameters: String
    var frames: Int
    var energyEvaluations: Int
    var gradientEvaluations: Int
}

extension Ensemble.Train {
    /// Node types of the system: --atom-types, by default one per atom for a molecule (a 3-D
    /// plugin whose atom table has hydrogens, as `sample` decides) and none otherwise.
    func nodeTypes(_ system: EnergySystem) throws -> [Int]? {
        let typing = atomTypes ?? (system.isMolecule ? .atom : AtomTyping.none)
        guard typing != .none else { return nil }
        guard let atoms = system.atoms() else {
            throw FailureMessage("--atom-types \(typing.rawValue): plugin \(system.plugin.name) gives no atom table; use --atom-types none")
        }
        return typing.types(of: atoms)
    }

    /// The configuration of a fresh run: the options', the node types, and for --data the
    /// trajectory's provenance and cost.
    func freshConfiguration(_ system: EnergySystem) throws -> (DiffusionConfiguration, data: SampleSet?, energies: [Double]) {
        var configuration = makeConfiguration()
        configuration.nodeTypes = try nodeTypes(system)
        if system.box != nil && configuration.parameterization == .edm {
            guard parameterization == nil else {
                throw FailureMessage("--parameterization edm scales positions by c_in(σ), which a periodic box does not allow: use --parameterization noise")
            }
            configuration.parameterization = nil  // the default on a torus: noise prediction
        }
        if let box = system.box, configuration.scalesFromData == true {
            // A torus has no rms coordinate to scale by: its noise tops out at 0.3 × the box edge
            // (close to the uniform prior), without a force blend (the periodic recipe's values).
            configuration.scalesFromData = nil
            configuration.sigmaMin = 1e-3
            configuration.sigmaMax = 0.3 * (box.min() ?? 1)
            configuration.forceBlendSigma = nil
            configuration.noiseLevels = nil
        }
        if !noBondGraph, configuration.method == .dsm, configuration.parameterization == .edm, system.box == nil,
           let bonds = system.bonds() {
            var graph = BondGraph(particles: system.particleCount, bonds: bonds)
            if let atoms = system.atoms() {
                let centres = graph.stereocentres(hydrogen: atoms.map { $0.element.uppercased() == "H" })
                if !centres.isEmpty { graph.chiralCentres = centres }
            }
            configuration.bondGraph = graph
            if configuration.scalesFromData == true && !Self.givenOptions().contains("--noise-levels") {
                // A molecule's shape (handedness, backbone torsions) is set at σ ≈ 0.3–1 σ_d, which
                // the cluster default's log-normal around 0.006 σ_d almost never trains
                // (docs/alanine.md measures both).
                configuration.noiseLevels = .logUniform
            }
            let chirality = graph.chiralCentres.map { ", the handedness of \($0.count) stereocentre\($0.count == 1 ? "" : "s")" } ?? ""
            print("bond graph: \(bonds.count) bonds from plugin \(system.plugin.name) — noise correlated along the bonds (harmonic prior), edge features bonded/1–3/1–4/other\(chirality), noise levels log-uniform over [σ_min, σ_max] unless --noise-levels (--no-bond-graph: isotropic)")
        }
        guard let path = dataTrajectory else { return (configuration, nil, []) }
        let (set, energies, source) = try readData(path, system: system)
        configuration.dataFile = source
        return (configuration, set, energies)
    }

    /// dsm's data from a trajectory of `ensemble sample` and the evaluations that made it (its
    /// --json summary, `--data-json`, by default beside it with .json).
    func readData(_ path: String, system: EnergySystem) throws -> (SampleSet, [Double], TrajectoryData) {
        let jsonPath = dataJSON ?? URL(fileURLWithPath: path).deletingPathExtension().path + ".json"
        guard let json = FileManager.default.contents(atPath: jsonPath) else {
            throw FailureMessage("--data \(path): its summary \(jsonPath) is missing; the evaluations that made the data count in the budget (write it with `ensemble sample ... --json`, or give --data-json)")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let summary: DataSummary
        do { summary = try decoder.decode(DataSummary.self, from: json) } catch {
            throw FailureMessage("\(jsonPath) is not a summary of `ensemble sample --json` (\(error))")
        }
        guard summary.plugin == system.plugin.name, summary.pluginParameters == system.parameters else {
            throw FailureMessage("--data \(path) samples \(summary.plugin) '\(summary.pluginParameters)', not \(system.plugin.name) '\(system.parameters)'")
        }
        let set = try SampleSet(path: path, system: system)
        guard set.count == summary.frames else {
            throw FailureMessage("--data \(path) has \(set.count) frames, its summary \(jsonPath) \(summary.frames): not its summary")
        }
        let reader = try AmberNetCDFReader(path: path)
        var energies: [Double]
        var cost = (summary.energyEvaluations, summary.gradientEvaluations)
        if reader.perFrameVariableNames.contains("energy") {
            energies = try reader.values(of: "energy")
        } else {
            energies = try system.evaluate(set.positions, batch: set.count, withGradients: false).energies
            cost.0 += set.count
        }
        let source = TrajectoryData(path: path, frames: set.count, energyEvaluations: cost.0, gradientEvaluations: cost.1)
        return (set, energies, source)
    }
}
