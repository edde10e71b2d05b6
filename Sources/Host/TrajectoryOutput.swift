import Foundation
import PluginHost
import Trajectory

/// Writes frames of a plugin system to AMBER NetCDF (Å, 2D padded with z = 0,
/// cells when periodic) plus a PDB topology beside it (same name, .pdb).
final class TrajectoryOutput {
    let system: EnergySystem
    let writer: AmberNetCDFWriter
    let pdbPath: String
    private var wrotePDB = false
    private(set) var frames = 0

    /// - Parameters:
    ///   - path: the .nc file; the topology goes to the same path with .pdb.
    ///   - variables: per-frame Double variables (e.g. "energy", "log_weight").
    init(path: String, system: EnergySystem, variables: [String], units: [String: String] = [:],
         title: String, overwrite: Bool) throws {
        self.system = system
        pdbPath = URL(fileURLWithPath: path).deletingPathExtension().appendingPathExtension("pdb").path
        writer = try AmberNetCDFWriter(
            path: path, atomCount: system.particleCount, periodic: system.box != nil,
            perFrameVariables: variables, variableUnits: units, title: title, overwrite: overwrite,
            syncEvery: 10, program: "ensemble", programVersion: "0.1.0")
        FatalSignals.watch(output: path, topology: pdbPath)
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
            try PDBWriter.write(to: pdbPath, atoms: atoms, coordinates: coordinates, cell: cell,
                                title: "\(system.plugin.name) \(system.parameters)")
            wrotePDB = true
        }
        try writer.append(coordinates: coordinates, time: time, cell: cell, values: values)
        frames += 1
        FatalSignals.framesWritten = frames
    }

    func close() throws { try writer.close() }
}
