import Foundation
import PluginHost
import Sampling

extension MCMCSampling {
    /// Where the chains start: the plugin's start configuration, else every particle at the
    /// origin — refused for a molecule, whose atoms would overlap (issue 23: MALA and PT exited 0
    /// with u ≈ 10³³). Other systems keep the origin; a non-finite energy there stops the run with
    /// the sampler's own message.
    func startPositions(_ system: EnergySystem) throws -> [Double] {
        if let start = system.initialPositions() { return start }
        if system.isMolecule {
            let name = "'\(system.plugin.name)'\(system.parameters.isEmpty ? "" : " (\(system.parameters))")"
            throw FailureMessage("plugin \(name) gives no start coordinates for its molecule, and every atom at the origin would overlap: give the plugin a start structure (for alanine: --param start=FILE.inpcrd, or an .inpcrd/.rst7/.crd beside the prmtop)")
        }
        return [Double](repeating: 0, count: system.coordinateCount)
    }
}

extension ModelSampling {
    /// The handedness of a molecule's start structure (nil: not a molecule, no tetrahedral
    /// centre, or --keep-mirror-images).
    func mirrorFold(_ system: EnergySystem) -> MirrorFold? {
        guard !options.keepMirrorImages, system.isMolecule, let atoms = system.atoms(),
              let start = system.initialPositions() else { return nil }
        return MirrorFold(elements: atoms.map(\.element), start: start.map { $0 * system.lengthUnitAngstrom })
    }

    /// Inverts a molecule's drawn mirror images onto the start structure's handedness (energies
    /// re-evaluated, weights moved by the energy change: `MirrorFold`), and says how many.
    /// - Returns: the number inverted, nil when there is no handedness to keep.
    func foldMirrorImages(_ batch: inout SampleBatch, system: EnergySystem, beta: Double = 1) throws -> Int? {
        guard let fold = mirrorFold(system), batch.count > 0 else { return nil }
        let count = try fold.fold(&batch, system: system, beta: beta)
        print("mirror images: \(count) of \(batch.count) drawn samples had the other handedness at \(fold.centres.count) stereocentre(s); inverted through their centroid (energies re-evaluated; --keep-mirror-images keeps them)")
        return count
    }
}

extension ModelSampling {
    /// A trained sampler's samples `batch` in the order `order` as frames k = 0, 1, … with their
    /// energies and log-weights (`logWeight(i)` of sample i), under the title "ensemble sample
    /// --model METHOD PLUGIN PARAMETERS" + `titleSuffix`. Returns the frames written.
    func writeModelFrames(to path: String, _ batch: SampleBatch, order: [Int], system: EnergySystem,
                          method: String, titleSuffix: String = "", logWeight: (Int) -> Double) throws -> Int {
        let stride = system.coordinateCount
        let output = try TrajectoryOutput(
            path: path, system: system, variables: ["energy", "log_weight"], units: ["energy": "kT", "log_weight": "1"],
            title: "ensemble sample --model \(method) \(system.plugin.name) \(system.parameters)\(titleSuffix)",
            overwrite: overwrite, sampler: "model \(method)", chains: 1)
        do {
            for (frame, i) in order.enumerated() {
                try output.append(Array(batch.positions[(i * stride)..<((i + 1) * stride)]), time: Double(frame),
                                  values: ["energy": batch.energies[i], "log_weight": logWeight(i)])
            }
            try output.close()
        } catch {
            output.discard()  // nothing half-written stays, and a replaced file is left as it was
            throw FailureMessage("\(error)\nnothing was written to \(path)\(output.replacing ? " (the old file is unchanged)" : "")")
        }
        return output.frames
    }
}
