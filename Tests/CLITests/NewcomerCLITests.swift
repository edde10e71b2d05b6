import Foundation
import TestSupport
import Trajectory
import XCTest

/// Issue 14, items 1–8: what used to give a silent wrong answer, a crash or a lost run now gives
/// an error or a message that names the cause.
final class NewcomerCLITests: XCTestCase {
    var ensemble: String { TestPaths.ensembleExecutable.path }

    func run(_ arguments: [String], environment: [String: String]? = nil) throws -> ProcessResult {
        try requireBuilt(TestPaths.ensembleExecutable)
        return try runProcess(ensemble, arguments, environment: environment)
    }

    // Item 1: `--plugin lennard-jones` without a preset used to evaporate (acceptance 0.99) and
    // report success. Now free clusters are confined by default, and a bare one (oscillator=0)
    // stops with the runaway message.
    func testFreeLennardJonesIsConfinedAndABareClusterStops() throws {
        let directory = TestPaths.temporaryDirectory("free-lj")
        let out = directory.appendingPathComponent("lj.nc").path
        let confined = try run(["sample", "--plugin", "lennard-jones", "--samples", "200", "--burn-in", "3000",
                                "--threads", "1", "--out", out])
        XCTAssertEqual(confined.status, 0, confined.stderr)
        // Bound: every atom within 5 σ = 17 Å of the centre (an evaporating cluster reached 440 Å).
        let xyz = try AmberNetCDFReader(path: out).allCoordinates()
        XCTAssertLessThan(xyz.map(abs).max()!, 17, "the default-confined cluster stays together")

        for (dimension, burnIn) in [("3", "2000"), ("3", "6000"), ("2", "20000")] {
            let bare = directory.appendingPathComponent("bare\(dimension)-\(burnIn).nc").path
            let result = try run(["sample", "--plugin", "lennard-jones", "--param", "oscillator=0",
                                  "--param", "dimension=\(dimension)", "--samples", "100", "--burn-in", burnIn,
                                  "--threads", "1", "--out", bare])
            XCTAssertEqual(result.status, 1, "dimension \(dimension), burn-in \(burnIn): \(result.stdout)")
            XCTAssertTrue(result.stderr.contains("step-size adaptation"), result.stderr)
            XCTAssertTrue(result.stderr.contains("not confined"), result.stderr)
            XCTAssertTrue(result.stderr.contains("was removed"), result.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: bare), "no empty file blocks the rerun")
        }
    }

    // Item 3: --resume used to ignore a different --method/--hidden, and --steps below the steps
    // done printed "last loss nan".
    func testResumeRefusesConflictingOptionsAndStepsAlreadyDone() throws {
        let directory = TestPaths.temporaryDirectory("resume-conflict")
        let model = directory.appendingPathComponent("m.ckpt").path
        let small = ["--plugin", "double-well", "--hidden", "16", "--layers", "2", "--batch", "8", "--time-steps", "4",
                     "--threads", "1"]
        XCTAssertEqual(try run(["train", "--method", "tb", "--steps", "4", "--out", model] + small).status, 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: model))

        let conflict = try run(["train", "--method", "logvar", "--plugin", "double-well", "--hidden", "32",
                                "--steps", "8", "--resume", "--out", model])
        XCTAssertEqual(conflict.status, 1)
        XCTAssertTrue(conflict.stderr.contains("--method: logvar given, the checkpoint has tb"), conflict.stderr)
        XCTAssertTrue(conflict.stderr.contains("--hidden: 32 given, the checkpoint has 16"), conflict.stderr)

        let tooFew = try run(["train", "--method", "tb", "--plugin", "double-well", "--steps", "3", "--resume", "--out", model])
        XCTAssertEqual(tooFew.status, 1)
        XCTAssertTrue(tooFew.stderr.contains("--steps 3 counts the whole run, and \(model) already holds 4 steps"), tooFew.stderr)
        XCTAssertFalse(tooFew.stdout.contains("nan"), tooFew.stdout)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: model)), before, "refused runs leave the checkpoint alone")
        // The same --steps again (a restartable script's rerun) is a finished run, not an error.
        let again = try run(["train", "--method", "tb", "--plugin", "double-well", "--steps", "4", "--resume", "--out", model])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stdout.contains("already holds 4 steps (--steps 4 counts the whole run): nothing to train"), again.stdout)
        XCTAssertFalse(again.stdout.contains("nan"), again.stdout)

        // Options left out take the checkpoint's values; the same values given again are fine.
        let resumed = try run(["train", "--method", "tb", "--plugin", "double-well", "--hidden", "16", "--steps", "6",
                               "--resume", "--out", model])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("trained tb to step 6"), resumed.stdout)
    }

    // Item 4: energy and rdf used to compute silently on a file of another box or system.
    func testEnergyAndRDFRefuseAFileOfAnotherBox() throws {
        let directory = TestPaths.temporaryDirectory("box-mismatch")
        let periodic = directory.appendingPathComponent("p.nc").path
        let cluster = directory.appendingPathComponent("c.nc").path
        let box = ["--plugin", "lennard-jones", "--param", "particles=16", "--param", "density=0.5",
                   "--param", "cutoff=1.55", "--param", "temperature=2"]
        XCTAssertEqual(try run(["sample"] + box + ["--samples", "20", "--burn-in", "20", "--out", periodic]).status, 0)
        XCTAssertEqual(try run(["sample", "--plugin", "lennard-jones", "--param", "particles=16", "--samples", "20",
                                "--burn-in", "20", "--out", cluster]).status, 0)
        let cases: [([String], String)] = [
            (["energy", "--plugin", "lennard-jones", "--param", "particles=16", periodic],
             "is periodic (cell 10.8102 × 10.8102 × 10.8102 Å) but plugin 'lennard-jones' (particles=16) is a free (non-periodic) system"),
            (["energy", "--plugin", "lennard-jones", "--param", "particles=16", "--param", "density=0.4",
              "--param", "cutoff=1.55", periodic],
             "its cell 10.8102 × 10.8102 × 10.8102 Å differs from the box of plugin 'lennard-jones' (particles=16;density=0.4;cutoff=1.55), 11.6449 × 11.6449 × 11.6449 Å"),
            (["energy"] + box + [cluster], "has no periodic cell but plugin 'lennard-jones'"),
            (["rdf", periodic, "--reference", periodic, "--plugin", "lennard-jones", "--param", "particles=16",
              "--param", "density=0.4", "--param", "cutoff=1.55"], "differs from the box of plugin"),
        ]
        for (arguments, expected) in cases {
            let result = try run(arguments)
            XCTAssertEqual(result.status, 1, "\(arguments)")
            XCTAssertTrue(result.stderr.contains(expected), "\(arguments):\n\(result.stderr)")
        }
        // 3-D coordinates read with a 2-D plugin of the same size.
        let wells = try run(["energy", "--plugin", "double-well", "--param", "particles=16", cluster])
        XCTAssertEqual(wells.status, 1)
        XCTAssertTrue(wells.stderr.contains("has z ≠ 0 (3-D coordinates), but plugin 'double-well' (particles=16) is 2-D"), wells.stderr)
    }

    // Item 5: a truncated file used to be reported as a plugin NaN at the first zero-filled frame.
    func testTruncatedNetCDFIsReportedAsTruncated() throws {
        let directory = TestPaths.temporaryDirectory("truncated")
        let out = directory.appendingPathComponent("t.nc").path
        let lj13 = ["--plugin", "lennard-jones", "--param", "preset=lj13"]
        XCTAssertEqual(try run(["sample"] + lj13 + ["--samples", "1000", "--burn-in", "100", "--out", out]).status, 0)
        XCTAssertEqual(try run(["energy"] + lj13 + [out]).status, 0)
        let size = try FileManager.default.attributesOfItem(atPath: out)[.size] as! Int
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        try handle.truncate(atOffset: UInt64(size * 7 / 10))
        try handle.close()
        let result = try run(["energy"] + lj13 + [out])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("\(out) is truncated: its header lists 1000 frames, but frames "), result.stderr)
        XCTAssertFalse(result.stderr.contains("non-finite"), result.stderr)
    }

    /// docs/examples/harmonic.c with a write through NULL once `crashAfter` configurations were evaluated.
    func buildCrashingPlugin(in directory: URL, crashAfter: Int) throws -> URL {
        var text = try String(contentsOf: TestPaths.repositoryRoot.appendingPathComponent("docs/examples/harmonic.c"),
                              encoding: .utf8)
        XCTAssertTrue(text.contains("u[b] = 0.5 * scale * sum;") && text.contains("static int32_t evaluate("))
        text = text.replacingOccurrences(of: "u[b] = 0.5 * scale * sum;",
                                         with: "u[b] = 0.5 * scale * sum; if (++calls > CRASH_AFTER) *(volatile int *)0 = 1;")
        text = text.replacingOccurrences(of: "static int32_t evaluate(", with: "static int calls = 0;\nstatic int32_t evaluate(")
        let source = directory.appendingPathComponent("segv.c")
        try text.write(to: source, atomically: true, encoding: .utf8)
        return try compileCPlugin(source: source, name: "segv", in: directory, defines: ["CRASH_AFTER=\(crashAfter)"])
    }

    // Item 6: a segfaulting plugin used to give rc 139, a 50-line backtrace and an empty .nc that
    // blocked the rerun.
    func testSegfaultingPluginGivesOneLineAndNoEmptyFile() throws {
        let early = TestPaths.temporaryDirectory("segv-early")
        let library = try buildCrashingPlugin(in: early, crashAfter: 0)
        let out = early.appendingPathComponent("s.nc").path
        let arguments = ["sample", "--plugin-dir", early.path, "--plugin", "harmonic", "--samples", "100", "--out", out]
        let result = try run(arguments)
        XCTAssertEqual(result.status, 1)
        let lines = result.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, result.stderr)
        XCTAssertTrue(result.stderr.hasPrefix("Error: SIGSEGV (segmentation fault) in plugin 'harmonic' (\(library.path))"),
                      result.stderr)
        XCTAssertTrue(result.stderr.contains("removed the output \(out)"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))

        // Later in the run: the file keeps the synced frames and stays readable.
        let late = TestPaths.temporaryDirectory("segv-late")
        _ = try buildCrashingPlugin(in: late, crashAfter: 1000)
        let kept = late.appendingPathComponent("s.nc").path
        let lateResult = try run(["sample", "--plugin-dir", late.path, "--plugin", "harmonic", "--samples", "2000",
                                  "--burn-in", "10", "--thin", "1", "--chains", "1", "--threads", "1", "--out", kept])
        XCTAssertEqual(lateResult.status, 1)
        XCTAssertTrue(lateResult.stderr.contains("in plugin 'harmonic'"), lateResult.stderr)
        XCTAssertTrue(lateResult.stderr.contains("keeps every frame up to the last sync"), lateResult.stderr)
        let frames = try AmberNetCDFReader(path: kept).frameCount
        XCTAssertGreaterThan(frames, 900)
        XCTAssertLessThan(frames, 1000)

        // train and energy name the plugin too.
        let model = early.appendingPathComponent("m.ckpt").path
        let train = try run(["train", "--plugin-dir", early.path, "--plugin", "harmonic", "--param", "particles=2", "--method", "tb", "--steps", "3",
                             "--hidden", "8", "--layers", "1", "--batch", "4", "--time-steps", "4", "--out", model])
        XCTAssertEqual(train.status, 1)
        XCTAssertTrue(train.stderr.hasPrefix("Error: SIGSEGV (segmentation fault) in plugin 'harmonic'"), train.stderr)
    }

    /// Starts `ensemble arguments`, waits `seconds`, sends SIGTERM; returns (status, stdout).
    func terminate(_ arguments: [String], after seconds: Double) throws -> (Int32, String) {
        try requireBuilt(TestPaths.ensembleExecutable)
        let process = Process()
        process.executableURL = TestPaths.ensembleExecutable
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        Thread.sleep(forTimeInterval: seconds)
        kill(process.processIdentifier, SIGTERM)
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    // Item 7: SIGTERM (batch schedulers) used to exit 143 with no message and lose up to 100 steps.
    func testSIGTERMIsHandledLikeCtrlC() throws {
        let directory = TestPaths.temporaryDirectory("sigterm")
        let out = directory.appendingPathComponent("term.nc").path
        let (status, text) = try terminate(
            ["sample", "--plugin", "lennard-jones", "--param", "preset=lj13", "--samples", "100000000", "--burn-in", "0",
             "--thin", "1", "--chains", "1", "--threads", "1", "--out", out], after: 1.5)
        XCTAssertEqual(status, 143)
        XCTAssertTrue(text.hasPrefix("interrupted: "), text)
        XCTAssertTrue(text.contains("SIGTERM"), text)
        let frames = try XCTUnwrap(text.split(separator: " ").dropFirst().first.flatMap { Int($0) }, text)
        XCTAssertEqual(try AmberNetCDFReader(path: out).frameCount, frames, "every frame written is in the closed file")

        let model = directory.appendingPathComponent("term.ckpt").path
        let (trainStatus, trainText) = try terminate(
            ["train", "--plugin", "double-well", "--method", "tb", "--steps", "100000000", "--hidden", "8", "--layers", "1",
             "--batch", "4", "--time-steps", "4", "--checkpoint-every", "1000000", "--threads", "1", "--out", model],
            after: 2)
        XCTAssertEqual(trainStatus, 143, trainText)
        let step = try XCTUnwrap(trainText.components(separatedBy: "interrupted at step ").last?
            .split(separator: " ").first.flatMap { Int($0) }, trainText)
        XCTAssertTrue(trainText.contains("(SIGTERM): checkpoint saved to \(model)"), trainText)
        XCTAssertGreaterThan(step, 0)
        let resumed = try run(["train", "--plugin", "double-well", "--method", "tb", "--steps", "\(step + 1)",
                               "--resume", "--out", model])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("resuming \(model) at step \(step) "), "no step lost:\n\(resumed.stdout)")
    }

    // Item 8: a plugin named like a shipped one silently shadowed it; a missing --plugin-dir was accepted.
    func testShadowingIsAWarningAndAMissingPluginDirAnError() throws {
        let directory = TestPaths.temporaryDirectory("shadow")
        var text = try String(contentsOf: TestPaths.repositoryRoot.appendingPathComponent("docs/examples/harmonic.c"),
                              encoding: .utf8)
        XCTAssertTrue(text.contains(".name = \"harmonic\","), "the example names itself 'harmonic'")
        text = text.replacingOccurrences(of: ".name = \"harmonic\"", with: ".name = \"double-well\"")
        let source = directory.appendingPathComponent("fake.c")
        try text.write(to: source, atomically: true, encoding: .utf8)
        let fake = try compileCPlugin(source: source, name: "fakewell", in: directory)
        let out = directory.appendingPathComponent("dw.nc").path
        let result = try run(["sample", "--plugin-dir", directory.path, "--plugin", "double-well", "--samples", "8",
                              "--burn-in", "5", "--out", out])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("warning: two plugins are named 'double-well': using \(fake.path)"), result.stderr)
        XCTAssertTrue(result.stderr.contains("libDoubleWell.so"), result.stderr)
        let listing = try run(["plugins", "--plugin-dir", directory.path])
        XCTAssertTrue(listing.stdout.contains("shadowed (same name as a plugin found earlier"), listing.stdout)

        let missing = try run(["sample", "--plugin-dir", "/nonexistent-plugins", "--plugin", "double-well",
                               "--samples", "8", "--out", directory.appendingPathComponent("x.nc").path])
        XCTAssertEqual(missing.status, 64)
        XCTAssertTrue(missing.stderr.contains("--plugin-dir /nonexistent-plugins: no such directory"), missing.stderr)
        let missingList = try run(["plugins", "--plugin-dir", "/nonexistent-plugins"])
        XCTAssertNotEqual(missingList.status, 0)
    }

    // Item 2: a run too short for its answer used to say nothing (LJ-13 PT 4σ off under mpirun).
    // Every `sample` now prints τ, ESS and split-R̂, says NOT CONVERGED when a check fails, and
    // puts the same numbers in --json.
    func testSamplePrintsConvergenceDiagnosticsAndSaysWhenTooShort() throws {
        let directory = TestPaths.temporaryDirectory("convergence")
        let out = directory.appendingPathComponent("short.nc").path, json = directory.appendingPathComponent("short.json").path
        let short = try run(["sample", "--plugin", "lennard-jones", "--param", "preset=lj13", "--sampler", "pt",
                             "--samples", "400", "--burn-in", "500", "--thin", "5", "--threads", "1", "--out", out, "--json", json])
        XCTAssertEqual(short.status, 0, short.stderr)
        XCTAssertTrue(short.stdout.contains("convergence of energy u (4 chains × 100 frames): autocorrelation time τ = "), short.stdout)
        XCTAssertTrue(short.stdout.contains("NOT CONVERGED: "), short.stdout)
        XCTAssertTrue(short.stdout.contains("ESS "), short.stdout)
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as! [String: Any]
        XCTAssertEqual(object["converged"] as? Bool, false)
        XCTAssertEqual(object["frames"] as? Int, 400)
        XCTAssertNotNil(object["energy_mean"] as? Double)
        XCTAssertEqual((object["exchange_acceptance"] as? [Double])?.count, 7)
        let convergence = try XCTUnwrap(object["convergence"] as? [String: Any])
        let ess = try XCTUnwrap(convergence["effective_sample_size"] as? Double)
        let tau = try XCTUnwrap(convergence["integrated_autocorrelation_time"] as? Double)
        XCTAssertEqual(ess, 400 / tau, accuracy: 1e-6 * ess)
        XCTAssertNotNil(convergence["split_r_hat"] as? Double)
        XCTAssertFalse((convergence["problems"] as? [String] ?? []).isEmpty)

        // A fast-mixing Gaussian (the C example plugin) run long enough passes every check.
        let plugins = TestPaths.temporaryDirectory("convergence-plugin")
        _ = try buildHarmonicPlugin(in: plugins)
        let long = try run(["sample", "--plugin-dir", plugins.path, "--plugin", "harmonic", "--param", "k=2",
                            "--samples", "20000", "--out", directory.appendingPathComponent("long.nc").path])
        XCTAssertEqual(long.status, 0, long.stderr)
        XCTAssertTrue(long.stdout.contains("converged by these checks (split-R̂ ≤ 1.01, ESS ≥ 400, chains ≥ 50 τ)"), long.stdout)
        XCTAssertFalse(long.stdout.contains("NOT CONVERGED"), long.stdout)
    }

    // Item 9: train printed nothing off a terminal until the end and kept no history.
    func testTrainingLogProgressLinesAndPlot() throws {
        let directory = TestPaths.temporaryDirectory("training-log")
        let model = directory.appendingPathComponent("dw4.ckpt").path, json = directory.appendingPathComponent("train.json").path
        let small = ["--plugin", "double-well", "--method", "tb", "--hidden", "16", "--layers", "2", "--batch", "16",
                     "--time-steps", "8", "--threads", "1"]
        let train = try run(["train"] + small + ["--steps", "12", "--log-every", "4", "--out", model, "--json", json])
        XCTAssertEqual(train.status, 0, train.stderr)
        // Off a terminal: a line every 4 steps on stderr, no bar.
        let progress = train.stderr.split(separator: "\n").filter { $0.hasPrefix("step ") }
        XCTAssertEqual(progress.map { String($0.split(separator: " ")[1]) }, ["4/12", "8/12", "12/12"], train.stderr)
        XCTAssertFalse(train.stderr.contains("█"))
        XCTAssertTrue(train.stdout.contains("training log: \(model).log.jsonl"), train.stdout)
        // The checkpoint keeps the loss of every step.
        let checkpoint = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: model))) as! [String: Any]
        XCTAssertEqual(((checkpoint["state"] as? [String: Any])?["lossHistory"] as? [Double])?.count, 12)

        func log() throws -> [[String: Any]] {
            try String(contentsOfFile: model + ".log.jsonl", encoding: .utf8).split(separator: "\n").map {
                try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
            }
        }
        var lines = try log()
        XCTAssertEqual(lines.map { $0["step"] as? Int }, Array(1...12))
        var evaluations = 0
        for line in lines {
            for key in ["loss", "wall_seconds", "learning_rate", "log_z"] { XCTAssertNotNil(line[key] as? Double, "\(key) in \(line)") }
            let e = try XCTUnwrap(line["energy_evaluations"] as? Int)
            XCTAssertGreaterThanOrEqual(e, evaluations)
            evaluations = e
            XCTAssertNotNil(line["gradient_evaluations"] as? Int)
            if let ess = line["ess_fraction"] as? Double {
                XCTAssertTrue(ess > 0 && ess <= 1, "\(ess)")
                XCTAssertNotNil(line["elbo"] as? Double, "an ESS/N line carries its ELBO: \(line)")
            }
        }
        XCTAssertTrue(lines.contains { $0["ess_fraction"] != nil }, "on-policy steps log ESS/N")
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as! [String: Any]
        XCTAssertEqual(summary["step"] as? Int, 12)
        XCTAssertEqual(summary["energy_evaluations"] as? Int, evaluations)
        XCTAssertEqual(summary["training_log"] as? String, model + ".log.jsonl")

        // Steps logged after the last checkpoint (then lost) are dropped on --resume.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: model + ".log.jsonl"))
        try handle.seekToEnd()
        handle.write(Data("{\"energy_evaluations\":1,\"gradient_evaluations\":1,\"learning_rate\":0.001,\"loss\":1,\"step\":13,\"wall_seconds\":1}\n".utf8))
        try handle.close()
        let resumed = try run(["train", "--plugin", "double-well", "--method", "tb", "--steps", "15", "--resume", "--out", model])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        lines = try log()
        XCTAssertEqual(lines.map { $0["step"] as? Int }, Array(1...15))

        // sample --model --json: the importance-sampling summary.
        let drawn = directory.appendingPathComponent("drawn.json").path
        let sample = try run(["sample", "--model", model, "--samples", "64", "--threads", "1", "--json", drawn,
                              "--out", directory.appendingPathComponent("drawn.nc").path])
        XCTAssertEqual(sample.status, 0, sample.stderr)
        let drawnReport = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: drawn))) as! [String: Any]
        XCTAssertEqual(drawnReport["frames"] as? Int, 64)
        for key in ["ess", "ess_fraction", "log_z", "log_z_error", "elbo", "reweighted_energy_mean"] {
            XCTAssertNotNil(drawnReport[key] as? Double, "\(key) in \(drawnReport.keys)")
        }

        let svg = directory.appendingPathComponent("training.svg").path
        let plot = try run(["plot-training", model, "--plot", svg])
        XCTAssertEqual(plot.status, 0, plot.stderr)
        let text = try String(contentsOfFile: svg, encoding: .utf8)
        for label in ["data-label=\"loss per step\"", "data-label=\"on-policy batch ESS/N\"", "training step", "15 steps"] {
            XCTAssertTrue(text.contains(label), "missing \(label)")
        }
        let missing = try run(["plot-training", directory.appendingPathComponent("none.ckpt").path])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("no training log at"), missing.stderr)
    }

    // Items 10–11: plots with units and metric values; one JSON key style; --json for plugins and bench.
    func testPlotsCarryUnitsAndMetricsAndEveryCommandWritesSnakeCaseJSON() throws {
        let directory = TestPaths.temporaryDirectory("plots-json")
        let a = directory.appendingPathComponent("a.nc").path, b = directory.appendingPathComponent("b.nc").path
        let lj13 = ["--plugin", "lennard-jones", "--param", "preset=lj13"]
        for (path, seed) in [(a, "1"), (b, "2")] {
            XCTAssertEqual(try run(["sample"] + lj13 + ["--samples", "200", "--burn-in", "300", "--seed", seed,
                                                       "--threads", "1", "--out", path]).status, 0)
        }
        let prefix = directory.appendingPathComponent("m").path
        let evaluate = try run(["evaluate", a, "--reference", b] + lj13 + ["--plot", prefix, "--max-samples", "100"])
        XCTAssertEqual(evaluate.status, 0, evaluate.stderr)
        let energy = try String(contentsOfFile: prefix + "-energy.svg", encoding: .utf8)
        for expected in ["reduced energy u = U/kT (dimensionless)", "energy W2 = ", "mean u: generated "] {
            XCTAssertTrue(energy.contains(expected), "missing \(expected)")
        }
        let distances = try String(contentsOfFile: prefix + "-distances.svg", encoding: .utf8)
        for expected in ["distance r (plugin length unit, 1 unit = 3.822 Å)", "distance TV = ", "coordinate W2: aligned ",
                         "range clipped to the 0.5–99.5 % quantiles"] {
            XCTAssertTrue(distances.contains(expected), "missing \(expected)")
        }

        func object(_ path: String) throws -> [String: Any] {
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        }
        func assertSnakeCase(_ value: Any, _ path: String) {
            if let dictionary = value as? [String: Any] {
                for (key, inner) in dictionary {
                    XCTAssertEqual(key, key.lowercased(), "\(path): key \(key) is not snake_case")
                    assertSnakeCase(inner, path)
                }
            } else if let array = value as? [Any] {
                array.forEach { assertSnakeCase($0, path) }
            }
        }
        let plugins = directory.appendingPathComponent("plugins.json").path
        XCTAssertEqual(try run(["plugins", "--json", plugins]).status, 0)
        let listing = try object(plugins)
        let names = (listing["plugins"] as? [[String: Any]])?.compactMap { $0["name"] as? String } ?? []
        XCTAssertTrue(Set(names).isSuperset(of: ["lennard-jones", "double-well"]), "\(names)")
        XCTAssertNotNil((listing["plugins"] as? [[String: Any]])?.first?["parameters_help"] as? String)
        let bench = directory.appendingPathComponent("bench.json").path
        let benchRun = try run(["bench", "--plugin", "double-well", "--batch", "16", "--repeats", "1", "--chains", "2",
                                "--threads", "1", "--json", bench])
        XCTAssertEqual(benchRun.status, 0, benchRun.stderr)
        let results = try XCTUnwrap(try object(bench)["results"] as? [[String: Any]])
        XCTAssertGreaterThan(results.first?["energy_gradient_per_second"] as? Double ?? 0, 0)
        let sampleJSON = directory.appendingPathComponent("sample.json").path
        XCTAssertEqual(try run(["sample"] + lj13 + ["--samples", "20", "--burn-in", "10", "--threads", "1", "--out",
                                                   directory.appendingPathComponent("c.nc").path, "--json", sampleJSON]).status, 0)
        for path in [plugins, bench, sampleJSON] { assertSnakeCase(try object(path), path) }
    }

    // Item 13: --help examples were hard-wrapped inside commands (copy-paste broke), --threads
    // showed two defaults, --step-size had no unit.
    func testHelpExamplesAreWholeCommandsAndOptionsSayTheirDefaultsOnce() throws {
        for command in ["", "plugins", "energy", "sample", "train", "evaluate", "rdf", "ramachandran", "bench", "plot-training"] {
            let help = try run((command.isEmpty ? [] : [command]) + ["--help"], environment: ["COLUMNS": "80"])
            XCTAssertEqual(help.status, 0, command)
            var inExample = false, exampleLines = 0
            for line in help.stdout.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix("Example:") || line.hasPrefix("Start here:") { inExample = true; continue }
                if line.hasPrefix("USAGE:") { inExample = false }
                guard inExample, !line.isEmpty else { continue }
                exampleLines += 1
                // A wrapped line would start at column 0; every example line is indented.
                XCTAssertTrue(line.hasPrefix("  "), "`ensemble \(command) --help`: example line wrapped: \(line)")
                XCTAssertFalse(line.contains("../shared"), "`ensemble \(command) --help` needs ../shared: \(line)")
            }
            if command != "plugins" { XCTAssertGreaterThan(exampleLines, 0, "`ensemble \(command) --help` has an example") }
        }
        let sample = try run(["sample", "--help"], environment: ["COLUMNS": "200"]).stdout
        let threads = try XCTUnwrap(sample.split(separator: "\n").first { $0.hasPrefix("  --threads <") })
        XCTAssertFalse(threads.contains("(default:"), "one default, in words: \(threads)")
        XCTAssertTrue(threads.contains("every core of this machine"), String(threads))
        let stepSize = try XCTUnwrap(sample.split(separator: "\n").first { $0.hasPrefix("  --step-size <") })
        XCTAssertTrue(stepSize.contains("(plugin length unit)²"), String(stepSize))
    }

    // Item 9: the terminal bar was redrawn without clearing, so a shorter line kept the tail of
    // a longer one ("energy evals 266885216" for 26 700). Run under a pseudo-terminal (script(1)).
    func testTerminalProgressBarClearsTheLineOnEveryRedraw() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/script") else {
            throw XCTSkip("script(1) not found (util-linux): cannot run under a pseudo-terminal")
        }
        try requireBuilt(TestPaths.ensembleExecutable)
        let model = TestPaths.temporaryDirectory("bar").appendingPathComponent("bar.ckpt").path
        let command = [ensemble, "train", "--plugin", "double-well", "--method", "tb", "--hidden", "8", "--layers", "1",
                       "--batch", "8", "--time-steps", "4", "--steps", "3000", "--threads", "1", "--out", model]
        let result = try runProcess("/usr/bin/script", ["-qec", command.joined(separator: " "), "/dev/null"])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        let text = result.stdout
        XCTAssertTrue(text.contains("training █"), "a bar on a terminal:\n\(text)")
        let scalars = Array(text.unicodeScalars)
        var redraws = 0
        for (i, c) in scalars.enumerated() where c == "\r" && i + 1 < scalars.count && scalars[i + 1] != "\n" {
            redraws += 1
            XCTAssertEqual(String(String.UnicodeScalarView(scalars[(i + 1)..<min(i + 5, scalars.count)])), "\u{1B}[2K",
                           "a redraw that does not clear the line")
        }
        XCTAssertGreaterThan(redraws, 1)
        XCTAssertFalse(text.split(separator: "\n").contains { $0.hasPrefix("step ") }, "no plain progress lines on a terminal")
    }
}
