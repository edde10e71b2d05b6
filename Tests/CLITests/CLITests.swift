import Foundation
import TestSupport
import Trajectory
import XCTest

/// The `ensemble` executable end to end, as a user runs it.
final class CLITests: XCTestCase {
    var ensemble: String { TestPaths.ensembleExecutable.path }

    func run(_ arguments: [String], environment: [String: String]? = nil) throws -> ProcessResult {
        try requireBuilt(TestPaths.ensembleExecutable)
        return try runProcess(ensemble, arguments, environment: environment)
    }

    func testPluginsListsShippedPluginsWithParameters() throws {
        let result = try run(["plugins"])
        XCTAssertEqual(result.status, 0, result.stderr)
        for expected in ["lennard-jones 1.0.0", "double-well 1.0.0", "preset=lj13|lj55", "libLennardJones.so"] {
            XCTAssertTrue(result.stdout.contains(expected), "missing \(expected) in:\n\(result.stdout)")
        }
    }

    func testPluginDirAndEnvironmentPathFindAUserPlugin() throws {
        let directory = TestPaths.temporaryDirectory("user-plugin")
        _ = try buildHarmonicPlugin(in: directory)
        let viaOption = try run(["plugins", "--names-only", "--plugin-dir", directory.path])
        XCTAssertTrue(viaOption.stdout.split(separator: "\n").contains("harmonic"), viaOption.stdout)
        let viaEnvironment = try run(["plugins", "--names-only"], environment: ["ENSEMBLE_PLUGIN_PATH": "/nonexistent:\(directory.path)"])
        XCTAssertTrue(viaEnvironment.stdout.split(separator: "\n").contains("harmonic"), viaEnvironment.stdout)
    }

    func testSampleWritesAFileThatIndependentReadersLoad() throws {
        let directory = TestPaths.temporaryDirectory("sample")
        let out = directory.appendingPathComponent("lj13.nc").path
        let result = try run(["sample", "--plugin", "lennard-jones", "--param", "preset=lj13", "--sampler", "pt",
                              "--samples", "60", "--chains", "3", "--thin", "5", "--burn-in", "200",
                              "--replicas", "4", "--out", out])
        XCTAssertEqual(result.status, 0, result.stderr)
        for expected in ["wrote 60 frames", "energy u = U/kT:", "replica exchange acceptance: 0↔1",
                         "energy evaluations: ", "wall time:"] {
            XCTAssertTrue(result.stdout.contains(expected), "missing \(expected) in:\n\(result.stdout)")
        }
        XCTAssertFalse(result.stderr.contains("█"), "no progress bar when stderr is not a terminal")
        let pdb = directory.appendingPathComponent("lj13.pdb").path
        XCTAssertTrue(FileManager.default.fileExists(atPath: pdb))

        // Our reader: 60 frames, and the stored energies are those of the stored coordinates.
        let reader = try AmberNetCDFReader(path: out)
        XCTAssertEqual(reader.frameCount, 60)
        XCTAssertEqual(reader.atomCount, 13)
        let stored = try reader.values(of: "energy")
        let recomputed = try run(["energy", "--plugin", "lennard-jones", "--param", "preset=lj13", out])
        XCTAssertEqual(recomputed.status, 0, recomputed.stderr)
        let energies = recomputed.stdout.split(separator: "\n").dropFirst().map { Double($0.split(separator: ",")[1])! }
        XCTAssertEqual(energies.count, 60)
        for (a, b) in zip(stored, energies) { assertClose(a, b, relative: 1e-4, absolute: 1e-3) } // float32 Å storage

        // Independent readers from PyPI.
        let python = try PythonTools.require(["netCDF4", "MDAnalysis", "mdtraj"])
        let script = """
            import sys, numpy as np, netCDF4, MDAnalysis, mdtraj, warnings
            warnings.filterwarnings("ignore")
            nc, pdb = sys.argv[1], sys.argv[2]
            d = netCDF4.Dataset(nc)
            assert d.Conventions == "AMBER" and d.ConventionVersion == "1.0"
            xyz = d.variables["coordinates"][:]
            assert xyz.shape == (60, 13, 3), xyz.shape
            assert d.variables["energy"].shape == (60,)
            u = MDAnalysis.Universe(pdb, nc)
            assert len(u.trajectory) == 60 and len(u.atoms) == 13
            assert set(u.atoms.elements) == {"Ar"}, set(u.atoms.elements)
            u.trajectory[7]
            assert np.allclose(u.atoms.positions, xyz[7], atol=1e-4)
            t = mdtraj.load(nc, top=pdb)
            assert t.n_frames == 60 and t.n_atoms == 13
            assert np.allclose(t.xyz[7] * 10, xyz[7], atol=1e-4)
            # zero centre of mass for the translation-invariant cluster (in Å, float32)
            assert np.abs(xyz.mean(axis=1)).max() < 1e-4, np.abs(xyz.mean(axis=1)).max()
            print("ok")
            """
        XCTAssertEqual(try PythonTools.run(python, script: script, arguments: [out, pdb]).trimmingCharacters(in: .whitespacesAndNewlines), "ok")
    }

    func testSameSeedGivesIdenticalCoordinates() throws {
        let directory = TestPaths.temporaryDirectory("seed")
        func sample(_ name: String, seed: Int) throws -> [Double] {
            let out = directory.appendingPathComponent(name).path
            let result = try run(["sample", "--plugin", "double-well", "--sampler", "mala", "--samples", "40",
                                  "--burn-in", "50", "--seed", "\(seed)", "--out", out])
            XCTAssertEqual(result.status, 0, result.stderr)
            return try AmberNetCDFReader(path: out).allCoordinates()
        }
        let a = try sample("a.nc", seed: 5), b = try sample("b.nc", seed: 5), c = try sample("c.nc", seed: 6)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
        XCTAssertEqual(a.count, 40 * 4 * 3)
        // 2D: z padded with zeros.
        XCTAssertTrue(stride(from: 2, to: a.count, by: 3).allSatisfy { a[$0] == 0 })
    }

    /// A registered kernel is a value of --sampler: rwm samples (its own target acceptance in the
    /// JSON), takes the one-temperature checks, and is listed by --help.
    func testRegisteredKernelRunsFromTheCommandLine() throws {
        let directory = TestPaths.temporaryDirectory("rwm")
        let out = directory.appendingPathComponent("rwm.nc").path, json = directory.appendingPathComponent("rwm.json").path
        let result = try run(["sample", "--plugin", "double-well", "--sampler", "rwm", "--samples", "40", "--burn-in", "400",
                              "--out", out, "--json", json])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try AmberNetCDFReader(path: out).allCoordinates().count, 40 * 4 * 3)
        XCTAssertTrue(result.stdout.contains("gradient evaluations: 0"), result.stdout)
        let tempered = try run(["sample", "--plugin", "double-well", "--sampler", "rwm", "--replicas", "4", "--samples", "4",
                                "--out", directory.appendingPathComponent("x.nc").path])
        XCTAssertNotEqual(tempered.status, 0)
        XCTAssertTrue(tempered.stderr.contains("--sampler rwm runs at one temperature"), tempered.stderr)
        let help = try run(["sample", "--help"])
        XCTAssertTrue(help.stdout.contains("--sampler <mala|pt|rwm|langevin|ghmc>"), help.stdout)
    }

    func testBadInputGetsAClearErrorAndNoFile() throws {
        let directory = TestPaths.temporaryDirectory("bad")
        let out = directory.appendingPathComponent("x.nc").path
        let base = ["sample", "--sampler", "mala", "--samples", "10", "--burn-in", "10"]
        let cases: [([String], String)] = [
            (base + ["--plugin", "lenard-jones", "--out", out], "unknown plugin 'lenard-jones' (known: "),
            (base + ["--plugin", "lennard-jones", "--param", "particle=3", "--out", out], "unknown parameter 'particle'"),
            (base + ["--plugin", "lennard-jones", "--param", "particles", "--out", out], "is not KEY=VALUE"),
            (base + ["--plugin", "lennard-jones", "--param", "particles=abc", "--out", out], "'abc' is not an integer"),
            (["sample", "--plugin", "lennard-jones", "--samples", "0", "--out", out], "--samples must be a positive integer"),
            (["sample", "--plugin", "lennard-jones", "--samples", "-5", "--out", out], "--samples"),
            (base + ["--plugin", "lennard-jones", "--chains", "0", "--out", out], "--chains must be a positive integer"),
            (base + ["--plugin", "lennard-jones", "--out", "/nonexistent-dir/x.nc"], "does not exist"),
            (base + ["--plugin", "lennard-jones", "--out", directory.appendingPathComponent("x.txt").path], "must end in .nc"),
        ]
        for (arguments, expected) in cases {
            let result = try run(arguments)
            XCTAssertNotEqual(result.status, 0, "\(arguments)")
            XCTAssertTrue((result.stderr + result.stdout).contains(expected), "\(arguments):\n\(result.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "no partial file for \(arguments)")
        }
        // An existing output is refused without --overwrite, accepted with it.
        try "keep me".write(toFile: out, atomically: true, encoding: .utf8)
        let refused = try run(base + ["--plugin", "double-well", "--out", out])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("already exists; pass --overwrite"), refused.stderr)
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), "keep me")
        let replaced = try run(base + ["--plugin", "double-well", "--out", out, "--overwrite"])
        XCTAssertEqual(replaced.status, 0, replaced.stderr)
    }

    func testEnergyRejectsATrajectoryOfTheWrongSize() throws {
        let directory = TestPaths.temporaryDirectory("mismatch")
        let out = directory.appendingPathComponent("dw.nc").path
        XCTAssertEqual(try run(["sample", "--plugin", "double-well", "--samples", "5", "--burn-in", "5", "--out", out]).status, 0)
        let wrong = try run(["energy", "--plugin", "lennard-jones", "--param", "preset=lj13", out])
        XCTAssertNotEqual(wrong.status, 0)
        XCTAssertTrue(wrong.stderr.contains("has 4 atoms, the plugin system has 13"), wrong.stderr)
        let npy = directory.appendingPathComponent("bad.npy").path
        try NumPyArray(shape: [3, 5], values: Array(repeating: 0, count: 15)).write(to: npy)
        let badShape = try run(["energy", "--plugin", "double-well", npy])
        XCTAssertNotEqual(badShape.status, 0)
        XCTAssertTrue(badShape.stderr.contains("shape [3, 5] does not hold whole configurations of 4 particles × 2 dimensions"), badShape.stderr)
    }

    func testNonFiniteEnergyStopsSamplingAndSaysWhen() throws {
        let directory = TestPaths.temporaryDirectory("nan")
        let source = directory.appendingPathComponent("nanwell.c")
        // A harmonic well that returns NaN once a coordinate leaves [−0.5, 0.5].
        var text = try String(contentsOf: TestPaths.repositoryRoot.appendingPathComponent("docs/examples/harmonic.c"), encoding: .utf8)
        text = text.replacingOccurrences(of: "u[b] = 0.5 * scale * sum;",
                                         with: "u[b] = 0.5 * scale * sum; if (sum > 0.25) u[b] = 0.0 / 0.0;")
        text = text.replacingOccurrences(of: "#include <stdio.h>", with: "#include <stdio.h>\n#include <math.h>")
        try text.write(to: source, atomically: true, encoding: .utf8)
        _ = try compileCPlugin(source: source, name: "nanwell", in: directory)
        let out = directory.appendingPathComponent("nan.nc").path
        let result = try run(["sample", "--plugin-dir", directory.path, "--plugin", "harmonic", "--param", "dimension=1",
                              "--samples", "1000", "--burn-in", "10", "--step-size", "0.5", "--out", out])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("sampling stopped at step"), result.stderr)
        XCTAssertTrue(result.stderr.contains("non-finite"), result.stderr)
    }

    func testSIGKILLLeavesAReadableFile() throws {
        let directory = TestPaths.temporaryDirectory("kill")
        let out = directory.appendingPathComponent("long.nc").path
        try requireBuilt(TestPaths.ensembleExecutable)
        let process = Process()
        process.executableURL = TestPaths.ensembleExecutable
        process.arguments = ["sample", "--plugin", "lennard-jones", "--param", "preset=lj55", "--samples", "1000000",
                             "--burn-in", "0", "--thin", "1", "--chains", "2", "--threads", "1", "--out", out]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait until some frames are synced, then kill without warning.
        let deadline = Date().addingTimeInterval(30)
        var synced = 0
        while Date() < deadline {
            Thread.sleep(forTimeInterval: 0.3)
            if let reader = try? AmberNetCDFReader(path: out), reader.frameCount >= 40 { synced = reader.frameCount; break }
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        XCTAssertGreaterThanOrEqual(synced, 40, "frames became visible while running")
        let reader = try AmberNetCDFReader(path: out)
        XCTAssertGreaterThanOrEqual(reader.frameCount, synced)
        XCTAssertEqual(try reader.coordinates(frame: reader.frameCount - 1).count, 55 * 3)
        let python = try PythonTools.require(["netCDF4"])
        let frames = try PythonTools.run(python, script: """
            import sys, netCDF4; d = netCDF4.Dataset(sys.argv[1]); print(d.variables["coordinates"].shape[0])
            """, arguments: [out])
        XCTAssertEqual(Int(frames.trimmingCharacters(in: .whitespacesAndNewlines)), reader.frameCount)
    }

    func testSIGINTClosesTheFileCleanlyWithEveryFrame() throws {
        try requireBuilt(TestPaths.ensembleExecutable)
        let out = TestPaths.temporaryDirectory("sigint").appendingPathComponent("int.nc").path
        let process = Process()
        process.executableURL = TestPaths.ensembleExecutable
        process.arguments = ["sample", "--plugin", "lennard-jones", "--param", "preset=lj13", "--samples", "100000000",
                             "--burn-in", "0", "--thin", "1", "--chains", "1", "--threads", "1", "--out", out]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        Thread.sleep(forTimeInterval: 1.5)
        kill(process.processIdentifier, SIGINT)
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 130)
        let frames = try XCTUnwrap(text.split(separator: " ").dropFirst().first.flatMap { Int($0) }, text)
        XCTAssertTrue(text.hasPrefix("interrupted: "), text)
        XCTAssertGreaterThan(frames, 0)
        XCTAssertEqual(try AmberNetCDFReader(path: out).frameCount, frames, "every frame written is in the closed file")
    }

    func testReferenceSetsHaveThePublishedEnergyStatistics() throws {
        guard let reference = TestPaths.sharedReference else {
            print("notice: ../shared/reference not found; skipping reference energy statistics")
            throw XCTSkip("../shared/reference not available")
        }
        for (file, arguments, mean, sd) in [
            ("test_split_DW4.npy", ["--plugin", "double-well"], -22.45, 1.90),
            ("test_split_LJ13-1000.npy", ["--plugin", "lennard-jones", "--param", "preset=lj13"], -43.13, 7.02),
        ] {
            let result = try run(["energy"] + arguments + [reference.appendingPathComponent(file).path])
            XCTAssertEqual(result.status, 0, result.stderr)
            let u = result.stdout.split(separator: "\n").dropFirst().map { Double($0.split(separator: ",")[1])! }
            XCTAssertEqual(u.count, 10000)
            let m = u.reduce(0, +) / Double(u.count)
            let s = (u.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(u.count - 1)).squareRoot()
            XCTAssertEqual(m, mean, accuracy: 0.005, file)
            XCTAssertEqual(s, sd, accuracy: 0.005, file)
            XCTAssertTrue(result.stderr.contains("10000 energy evaluations"), result.stderr)
        }
    }
}
