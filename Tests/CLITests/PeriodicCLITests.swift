import Foundation
import TestSupport
import Trajectory
import XCTest

/// Periodic systems through the CLI: wrapped positions and cells in the trajectory.
final class PeriodicCLITests: XCTestCase {
    func testPeriodicSampleWritesWrappedFramesWithCellsThatReadersLoad() throws {
        try requireBuilt(TestPaths.ensembleExecutable)
        let directory = TestPaths.temporaryDirectory("periodic")
        let out = directory.appendingPathComponent("fluid.nc").path
        let result = try runProcess(TestPaths.ensembleExecutable.path, [
            "sample", "--plugin", "lennard-jones", "--param", "particles=64", "--param", "density=0.5",
            "--param", "cutoff=2.5", "--param", "temperature=1.5", "--samples", "20", "--burn-in", "100",
            "--chains", "2", "--out", out])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertFalse(result.stdout.contains("zero-centre-of-mass"), "periodic systems are not projected")
        let reader = try AmberNetCDFReader(path: out)
        XCTAssertTrue(reader.isPeriodic)
        let edge = pow(64 / 0.5, 1.0 / 3) * 3.405
        let cell = try XCTUnwrap(try reader.cell(frame: 3))
        XCTAssertEqual(cell.lengths.x, edge, accuracy: 1e-9)
        XCTAssertEqual(cell.angles.z, 90)
        let xyz = try reader.allCoordinates()
        XCTAssertTrue(xyz.allSatisfy { $0 >= 0 && $0 < edge + 1e-3 }, "positions are wrapped into the box")
        let pdb = try String(contentsOfFile: directory.appendingPathComponent("fluid.pdb").path, encoding: .utf8)
        XCTAssertTrue(pdb.hasPrefix("CRYST1") || pdb.contains("\nCRYST1"), "PDB has CRYST1")

        let python = try PythonTools.require(["MDAnalysis", "mdtraj"])
        let check = try PythonTools.run(python, script: """
            import sys, warnings, numpy as np, MDAnalysis, mdtraj
            warnings.filterwarnings("ignore")
            nc, pdb, edge = sys.argv[1], sys.argv[2], float(sys.argv[3])
            u = MDAnalysis.Universe(pdb, nc)
            assert len(u.trajectory) == 20
            assert np.allclose(u.trajectory[5].dimensions, [edge, edge, edge, 90, 90, 90], atol=1e-3), u.trajectory[5].dimensions
            t = mdtraj.load(nc, top=pdb)
            assert np.allclose(t.unitcell_lengths[0] * 10, edge, atol=1e-3)
            print("ok")
            """, arguments: [out, directory.appendingPathComponent("fluid.pdb").path, "\(edge)"])
        XCTAssertEqual(check.trimmingCharacters(in: .whitespacesAndNewlines), "ok")
    }
}
