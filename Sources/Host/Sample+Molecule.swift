import Foundation
import PluginHost
import Sampling

extension Ensemble.Sample {
    /// The handedness of a molecule's start structure (nil: not a molecule, no tetrahedral
    /// centre, or --keep-mirror-images).
    func mirrorFold(_ system: EnergySystem) -> MirrorFold? {
        guard !keepMirrorImages, Self.isMolecule(system), let atoms = system.atoms(),
              let start = system.initialPositions() else { return nil }
        return MirrorFold(elements: atoms.map(\.element), start: start.map { $0 * system.lengthUnitAngstrom })
    }

    /// Inverts a molecule's drawn mirror images onto the start structure's handedness (energies
    /// re-evaluated, weights moved by the energy change: `MirrorFold`), and says how many.
    /// - Returns: the number inverted, nil when there is no handedness to keep.
    func foldMirrorImages(_ x: inout [Double], _ u: inout [Double], _ logW: inout [Double],
                          system: EnergySystem) throws -> Int? {
        guard let fold = mirrorFold(system), !u.isEmpty else { return nil }
        var batch = SampleBatch(stride: system.coordinateCount, positions: x, energies: u, logWeights: logW)
        let count = try fold.fold(&batch, system: system)
        (x, u, logW) = (batch.positions, batch.energies, batch.logWeights)
        print("mirror images: \(count) of \(u.count) drawn samples had the other handedness at \(fold.centres.count) tetrahedral centres; inverted through their centroid (energies re-evaluated; --keep-mirror-images keeps them)")
        return count
    }
}

extension Ensemble.Sample {
    /// The draws of a trained sampler as they came (before any correction), with their log-weights.
    func writeDraws(to path: String, _ x: [Double], _ u: [Double], _ logW: [Double], system: EnergySystem,
                    method: String) throws {
        let stride = system.coordinateCount
        let output = try TrajectoryOutput(
            path: path, system: system, variables: ["energy", "log_weight"], units: ["energy": "kT", "log_weight": "1"],
            title: "ensemble sample --model \(method) \(system.plugin.name) \(system.parameters) (raw draws)",
            overwrite: overwrite)
        for i in u.indices {
            try output.append(Array(x[(i * stride)..<((i + 1) * stride)]), time: Double(i),
                              values: ["energy": u[i], "log_weight": logW[i]])
        }
        try output.close()
        print("wrote the \(output.frames) raw draws to \(path)")
    }
}
