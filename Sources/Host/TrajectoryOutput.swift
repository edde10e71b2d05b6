import Foundation
import PluginHost
import Trajectory

/// Writes frames of a plugin system to AMBER NetCDF (Å, 2D padded with z = 0,
/// cells when periodic) plus a PDB topology beside it (same name, .pdb).
///
/// Replacing (`--overwrite` where the trajectory or its topology exists): both are written to
/// temporary siblings (`temporarySibling`) and renamed into place by `close()`, so a run that
/// fails or crashes leaves the old files as they were (`discard()` removes the temporaries).
/// Otherwise the files are written in place, synced every 10 frames, so that a run killed at any
/// moment leaves every frame up to the last sync readable.
final class TrajectoryOutput {
    let system: EnergySystem
    let writer: AmberNetCDFWriter
    /// The trajectory and its topology as the user named them.
    let path: String
    let pdbPath: String
    /// Whether an existing trajectory or topology is being replaced (then written elsewhere until `close()`).
    let replacing: Bool
    private let writingPath: String
    private let writingPDBPath: String
    private var wrotePDB = false
    private var finished = false
    private(set) var frames = 0

    /// - Parameters:
    ///   - path: the .nc file; the topology goes to the same path with .pdb.
    ///   - variables: per-frame Double variables (e.g. "energy", "log_weight").
    ///   - overwrite: replace an existing trajectory or topology; without it either is an error.
    ///   - sampler: what drew the frames ("mala", "pt", "langevin", "ghmc", "model dsm", …) and
    ///   - chains: how many chains they are interleaved from (1 for independent draws), recorded
    ///     with the plugin and its parameters as the file's provenance (`TrajectoryProvenance`).
    init(path: String, system: EnergySystem, variables: [String], units: [String: String] = [:],
         title: String, overwrite: Bool, sampler: String, chains: Int) throws {
        self.system = system
        self.path = path
        pdbPath = topologyPath(of: path)
        let fileManager = FileManager.default
        let existing = [path, pdbPath].first { fileManager.fileExists(atPath: $0) }
        if let existing, !overwrite { throw TrajectoryError.fileExists(path: existing) }
        replacing = existing != nil
        writingPath = replacing ? temporarySibling(of: path) : path
        writingPDBPath = replacing ? temporarySibling(of: pdbPath) : pdbPath
        writer = try AmberNetCDFWriter(
            path: writingPath, atomCount: system.particleCount, periodic: system.box != nil,
            perFrameVariables: variables, variableUnits: units, title: title, overwrite: replacing,
            syncEvery: 10, program: "ensemble", programVersion: "0.1.0",
            globalAttributes: TrajectoryProvenance(
                chains: chains, plugin: system.plugin.name, pluginParameters: system.parameters, sampler: sampler,
                lengthUnitAngstrom: system.lengthUnitAngstrom).attributes)
        FatalSignals.watch(output: writingPath, topology: writingPDBPath, replacing: replacing ? path : nil)
    }

    var cell: UnitCell? {
        system.box.map { box in
            let a = box.map { $0 * system.lengthUnitAngstrom }
            return UnitCell.orthorhombic(a[0], a.count > 1 ? a[1] : a[0], a.count > 2 ? a[2] : a[0])
        }
    }

    /// Append one frame [n·d] in plugin units; the first one also writes the PDB.
    func append(_ frame: [Double], time: Double, values: [String: Double]) throws {
        let coordinates = try Coordinates.paddedTo3D(frame, dimension: system.dimension,
                                                      scale: system.lengthUnitAngstrom)
        if !wrotePDB {
            let atoms = (system.atoms() ?? (0..<system.particleCount).map {
                PluginAtom(name: "X\($0 + 1)", element: "C", residue: "SYS", residueNumber: 1, mass: 12)
            }).map {
                PDBAtom(name: $0.name, element: $0.element, residueName: $0.residue, residueNumber: $0.residueNumber)
            }
            try PDBWriter.write(to: writingPDBPath, atoms: atoms, coordinates: coordinates, cell: cell,
                                title: "\(system.plugin.name) \(system.parameters)")
            wrotePDB = true
        }
        try writer.append(coordinates: coordinates, time: time, cell: cell, values: values)
        frames += 1
        FatalSignals.framesWritten = frames
    }

    /// Closes the trajectory; when replacing, renames the new files over the old ones.
    func close() throws {
        guard !finished else { return }
        finished = true
        try writer.close()
        FatalSignals.watch(output: nil, topology: nil, replacing: nil)
        guard replacing else { return }
        for (from, to) in [(writingPath, path), (writingPDBPath, pdbPath)] where from != writingPDBPath || wrotePDB {
            guard rename(from, to) == 0 else {
                let reason = String(cString: strerror(errno))
                throw FailureMessage("cannot move the finished \(from) to \(to): \(reason)")
            }
        }
    }

    /// Ends a run that failed: removes what it wrote (the temporaries when replacing, so the old
    /// files stay as they were; else the new trajectory and topology).
    func discard() {
        guard !finished else { return }
        finished = true
        try? writer.close()
        FatalSignals.watch(output: nil, topology: nil, replacing: nil)
        unlink(writingPath)
        if wrotePDB { unlink(writingPDBPath) }
    }
}
