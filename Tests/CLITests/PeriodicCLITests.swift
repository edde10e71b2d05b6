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

    /// A diffusion sampler trained on a periodic LJ fluid: the checkpoint stores the periodic
    /// space and box, `sample --model` writes wrapped frames with cells and weights, and
    /// `ensemble rdf` compares them with an MCMC run.
    func testPeriodicDiffusionSamplerTrainsSamplesAndComparesGOfR() throws {
        try requireBuilt(TestPaths.ensembleExecutable)
        let directory = TestPaths.temporaryDirectory("periodic-diffusion")
        let exe = TestPaths.ensembleExecutable.path
        let system = ["--plugin", "lennard-jones", "--param", "particles=8", "--param", "density=0.3",
                      "--param", "cutoff=1.4", "--param", "temperature=2"]
        let model = directory.appendingPathComponent("torus.ckpt").path
        let train = try runProcess(exe, ["train"] + system + [
            "--method", "tb", "--langevin-preconditioning", "--steps", "4", "--hidden", "8", "--layers", "1",
            "--batch", "4", "--time-steps", "5", "--noise-scale", "0.5", "--graph-cutoff", "1.4", "--smooth-cutoff",
            "--energy-clip", "50", "--out", model, "--threads", "1"])
        XCTAssertEqual(train.status, 0, train.stderr)
        XCTAssertTrue(train.stdout.contains("space: periodic"), train.stdout)
        let checkpoint = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: model))) as! [String: Any]
        let space = checkpoint["space"] as! [String: Any]
        XCTAssertEqual(space["kind"] as? String, "periodic")
        let edge = pow(8 / 0.3, 1.0 / 3)
        XCTAssertEqual((space["box"] as? [Double])?.first ?? 0, edge, accuracy: 1e-12)
        XCTAssertEqual((checkpoint["configuration"] as! [String: Any])["graphCutoff"] as? Double, 1.4)
        XCTAssertEqual((checkpoint["configuration"] as! [String: Any])["smoothCutoff"] as? Bool, true)

        let samples = directory.appendingPathComponent("torus.nc").path
        let sample = try runProcess(exe, ["sample", "--model", model, "--samples", "12", "--out", samples, "--threads", "1"])
        XCTAssertEqual(sample.status, 0, sample.stderr)
        let reader = try AmberNetCDFReader(path: samples)
        XCTAssertTrue(reader.isPeriodic)
        XCTAssertEqual(try XCTUnwrap(try reader.cell(frame: 0)).lengths.x, edge * 3.405, accuracy: 1e-9)
        XCTAssertTrue(reader.perFrameVariableNames.contains("log_weight"))
        XCTAssertTrue(try reader.allCoordinates().allSatisfy { $0 >= 0 && $0 < edge * 3.405 + 1e-3 }, "wrapped")

        let mcmc = directory.appendingPathComponent("mcmc.nc").path
        let run = try runProcess(exe, ["sample"] + system + ["--samples", "40", "--burn-in", "200", "--chains", "2",
                                                             "--out", mcmc, "--threads", "1"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let json = directory.appendingPathComponent("rdf.json").path
        let svg = directory.appendingPathComponent("rdf.svg").path
        let rdf = try runProcess(exe, ["rdf", samples, "--reference", mcmc] + system + [
            "--bins", "10", "--energy-scale", "2", "--json", json, "--plot", svg, "--threads", "1"])
        XCTAssertEqual(rdf.status, 0, rdf.stderr)
        XCTAssertTrue(rdf.stdout.contains("energy per particle"), rdf.stdout)
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as! [String: Any]
        let reference = report["reference"] as! [String: Any]
        XCTAssertEqual(reference["frames"] as? Int, 40)
        XCTAssertEqual((report["samples"] as! [String: Any])["weighted"] as? Bool, true)
        XCTAssertTrue(try String(contentsOfFile: svg, encoding: .utf8).contains("class=\"errors\""))
        // Issue 14: snake_case keys; units on r and the energy per particle on the figure.
        XCTAssertNotNil(reference["energy_per_particle"] as? Double, "\(reference.keys)")
        XCTAssertNotNil(report["rdf_chi_squared_per_bin"] as? Double, "\(report.keys)")
        let figure = try String(contentsOfFile: svg, encoding: .utf8)
        for expected in ["r (plugin length unit, 1 unit = 3.405 Å)", "energy per particle (u/n × 2): samples ", "χ²/bin = "] {
            XCTAssertTrue(figure.contains(expected), "missing \(expected)")
        }
    }
}
