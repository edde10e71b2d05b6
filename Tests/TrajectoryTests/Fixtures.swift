import Foundation
import TestSupport
import Trajectory
import XCTest

/// A small trajectory with known contents, written by `AmberNetCDFWriter`, plus a PDB
/// topology beside it and a JSON file of the expected values for Python readers.
struct TrajectoryFixture {
    var directory: URL
    var atomCount: Int
    var frames: [[Double]]          // per frame, flat [atom][3], Å (exactly representable as Float)
    var cells: [UnitCell]?          // per frame when periodic
    var energies: [Double]
    var logWeights: [Double]
    var times: [Double]
    var atoms: [PDBAtom]

    var ncPath: String { directory.appendingPathComponent("traj.nc").path }
    var pdbPath: String { directory.appendingPathComponent("top.pdb").path }
    var expectedPath: String { directory.appendingPathComponent("expected.json").path }

    /// Random frames of `atomCount` atoms in a ~20 Å region (rounded to Float).
    init(atomCount: Int = 6, frameCount: Int = 7, periodic: Bool, seed: UInt64 = 1) {
        var rng = TestRandom(seed: seed)
        directory = TestPaths.temporaryDirectory("trajectory-\(periodic ? "periodic" : "free")")
        self.atomCount = atomCount
        frames = (0..<frameCount).map { _ in
            (0..<(3 * atomCount)).map { _ in Double(Float(20 * rng.uniform() - 5)) }
        }
        cells = periodic
            ? (0..<frameCount).map { k in UnitCell.orthorhombic(20 + 0.25 * Double(k), 21.5, 22.75) }
            : nil
        energies = (0..<frameCount).map { _ in -40 + 5 * rng.normal() }
        logWeights = (0..<frameCount).map { _ in rng.normal() }
        times = (0..<frameCount).map { Double($0) * 0.5 }
        let names = ["C1", "O2", "N3", "AR", "CA", "H6", "CL7", "S8"]
        let elements = ["C", "O", "N", "Ar", "Ca", "H", "Cl", "S"]
        atoms = (0..<atomCount).map { i in
            PDBAtom(name: names[i % names.count], element: elements[i % elements.count],
                    residueName: "MOL", residueNumber: 1 + i / 3)
        }
    }

    /// The provenance every fixture file records as global attributes (issue 23), so that the
    /// independent readers are shown files that carry it.
    static let provenance = TrajectoryProvenance(chains: 3, plugin: "lennard-jones",
                                                 pluginParameters: "preset=lj13;temperature=1", sampler: "pt",
                                                 lengthUnitAngstrom: 3.822)

    /// Write traj.nc, top.pdb and expected.json.
    func write(syncEvery: Int = 10) throws {
        let writer = try AmberNetCDFWriter(path: ncPath, atomCount: atomCount, periodic: cells != nil,
                                           perFrameVariables: ["energy", "log_weight"],
                                           variableUnits: ["energy": "kT"], title: "fixture", syncEvery: syncEvery,
                                           globalAttributes: Self.provenance.attributes)
        for k in frames.indices {
            try writer.append(coordinates: frames[k], time: times[k], cell: cells?[k],
                              values: ["energy": energies[k], "log_weight": logWeights[k]])
        }
        try writer.close()
        try PDBWriter.write(to: pdbPath, atoms: atoms, coordinates: frames[0], cell: cells?[0])
        let expected: [String: Any] = [
            "atoms": atomCount,
            "frames": frames.count,
            "periodic": cells != nil,
            "coordinates": frames.flatMap { $0 },
            "cells": cells?.map { [$0.lengths.x, $0.lengths.y, $0.lengths.z, $0.angles.x, $0.angles.y, $0.angles.z] } ?? [],
            "energy": energies,
            "log_weight": logWeights,
            "time": times,
            "names": atoms.map(\.name),
            "elements": atoms.map(\.element),
            "provenance": ["chains": 3, "plugin": "lennard-jones", "parameters": "preset=lj13;temperature=1",
                           "sampler": "pt", "unit": 3.822] as [String: Any],
        ]
        try JSONSerialization.data(withJSONObject: expected).write(to: URL(fileURLWithPath: expectedPath))
    }
}
