import Foundation
import TestSupport
import XCTest

/// Issue 23, "Nothing lost, nothing silent" (the Bad list): user files are never destroyed
/// without --overwrite and never when they are an input; an --overwrite run that fails leaves
/// the old file; Ctrl-C stops burn-in, a second signal stops a hung plugin; abort() in a plugin
/// is one line naming it; impossible sizes are refused before any file exists.
final class SafetyCLITests: XCTestCase {
    var ensemble: String { TestPaths.ensembleExecutable.path }

    func run(_ arguments: [String]) throws -> ProcessResult {
        try requireBuilt(TestPaths.ensembleExecutable)
        return try runProcess(ensemble, arguments)
    }

    /// Two particles in a harmonic well that misbehave on request: abort_after=N calls abort() in
    /// the N-th evaluate call, hang_after=N never returns from it, fail_after=N fails from it on,
    /// sleep_us=U sleeps U µs in every call.
    static let misbehavingSource = """
        #include "ensemble_plugin.h"
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <unistd.h>
        typedef struct { long abort_after, hang_after, fail_after, sleep_us; } sys;
        static long calls = 0;
        static long value(const char *p, const char *key) {
            const char *at = strstr(p, key);
            return at ? atol(at + strlen(key)) : 0;
        }
        static ensemble_system *create(const char *p, char *e, size_t c) {
            (void)e; (void)c;
            sys *s = calloc(1, sizeof(sys));
            s->abort_after = value(p, "abort_after="); s->hang_after = value(p, "hang_after=");
            s->fail_after = value(p, "fail_after="); s->sleep_us = value(p, "sleep_us=");
            return (ensemble_system *)s;
        }
        static void destroy(ensemble_system *s) { free(s); }
        static int32_t count(const ensemble_system *s) { (void)s; return 2; }
        static int32_t dim(const ensemble_system *s) { (void)s; return 3; }
        static int32_t evaluate(const ensemble_system *system, int64_t b, const double *x, double *u, double *g,
                                char *e, size_t c) {
            const sys *s = (const sys *)system;
            long call = __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
            if (s->sleep_us) usleep((useconds_t)s->sleep_us);
            if (s->abort_after && call >= s->abort_after) abort();
            if (s->hang_after && call >= s->hang_after) for (;;) pause();
            if (s->fail_after && call >= s->fail_after) { snprintf(e, c, "failing on request (call %ld)", call); return 1; }
            for (int64_t i = 0; i < b; i++) {
                double sum = 0;
                for (int k = 0; k < 6; k++) { double v = x[i * 6 + k]; sum += v * v; if (g) g[i * 6 + k] = v; }
                u[i] = 0.5 * sum;
            }
            return 0;
        }
        static ensemble_plugin table = {
            .abi_version = ENSEMBLE_PLUGIN_ABI_VERSION, .struct_size = sizeof(ensemble_plugin),
            .name = "misbehaving", .version = "0.1", .description = "misbehaves on request",
            .parameters_help = "abort_after=N hang_after=N fail_after=N sleep_us=U",
            .create = create, .destroy = destroy, .particle_count = count, .dimension = dim, .evaluate = evaluate,
        };
        const ensemble_plugin *ensemble_plugin_entry(void) { return &table; }
        """

    /// A directory holding the misbehaving plugin, and the arguments that select it.
    func misbehavingPlugin() throws -> [String] {
        let directory = TestPaths.temporaryDirectory("misbehaving-plugin")
        let source = directory.appendingPathComponent("misbehaving.c")
        try Self.misbehavingSource.write(to: source, atomically: true, encoding: .utf8)
        _ = try compileCPlugin(source: source, name: "misbehaving", in: directory)
        return ["--plugin-dir", directory.path, "--plugin", "misbehaving"]
    }

    func contents(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

    /// Files of `directory` whose names mark an unfinished replacement.
    func leftovers(_ directory: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.contains(".partial-") }
    }

    // MARK: - Item 1: user files destroyed without asking

    func testOutputsNeverReplaceAnInputAndExistingFilesOnlyWithOverwrite() throws {
        let directory = TestPaths.temporaryDirectory("outputs")
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        let dw = ["--plugin", "double-well", "--threads", "1"]
        XCTAssertEqual(try run(["sample"] + dw + ["--samples", "40", "--burn-in", "50", "--out", path("a.nc")]).status, 0)
        let trajectory = try XCTUnwrap(contents(path("a.nc")))

        // evaluate a.nc --json a.nc destroyed the trajectory; with --overwrite too, and as ./a.nc.
        for extra in [[], ["--overwrite"]] {
            for json in [path("a.nc"), directory.path + "/./a.nc"] {
                let result = try run(["evaluate", path("a.nc"), "--reference", path("a.nc")] + dw + ["--json", json] + extra)
                XCTAssertEqual(result.status, 64, result.stderr)
                XCTAssertTrue(result.stderr.contains("an input of this command: an output never replaces an input, even with --overwrite"), result.stderr)
                XCTAssertEqual(contents(path("a.nc")), trajectory, "the input is untouched")
            }
        }
        // --json equal to --out: refused before anything is written.
        let same = try run(["sample"] + dw + ["--samples", "20", "--out", path("b.nc"), "--json", path("b.nc")])
        XCTAssertEqual(same.status, 64, same.stderr)
        XCTAssertTrue(same.stderr.contains("--json \(path("b.nc")) is the same file as --out"), same.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("b.nc")))

        // An existing mine.pdb was replaced by a new mine.nc run.
        try Data("my own structure\n".utf8).write(to: URL(fileURLWithPath: path("mine.pdb")))
        let pdb = try run(["sample"] + dw + ["--samples", "20", "--out", path("mine.nc")])
        XCTAssertEqual(pdb.status, 64, pdb.stderr)
        XCTAssertTrue(pdb.stderr.contains("the topology \(path("mine.pdb")) (written beside --out) already exists; pass --overwrite"), pdb.stderr)
        XCTAssertEqual(contents(path("mine.pdb")), Data("my own structure\n".utf8))
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("mine.nc")), "refused before any work")

        // --json and --plot of an analysis replace an existing file only with --overwrite.
        try Data("keep\n".utf8).write(to: URL(fileURLWithPath: path("m.json")))
        try Data("keep\n".utf8).write(to: URL(fileURLWithPath: path("p-energy.svg")))
        let evaluate = ["evaluate", path("a.nc"), "--reference", path("a.nc")] + dw + ["--max-samples", "20"]
        for (extra, file) in [(["--json", path("m.json")], "m.json"), (["--plot", path("p")], "p-energy.svg")] {
            let refused = try run(evaluate + extra)
            XCTAssertEqual(refused.status, 64, refused.stderr)
            XCTAssertTrue(refused.stderr.contains("already exists; pass --overwrite to replace it"), refused.stderr)
            XCTAssertEqual(contents(path(file)), Data("keep\n".utf8))
            let replaced = try run(evaluate + extra + ["--overwrite"])
            XCTAssertEqual(replaced.status, 0, replaced.stderr)
            XCTAssertNotEqual(contents(path(file)), Data("keep\n".utf8))
        }

        // train: --json equal to --out; plot-training x.ckpt --plot x.ckpt destroyed the checkpoint.
        let model = path("m.ckpt")
        let small = ["train", "--plugin", "double-well", "--method", "tb", "--hidden", "8", "--layers", "1", "--batch", "4",
                     "--time-steps", "3", "--steps", "2", "--threads", "1"]
        let trainSame = try run(small + ["--out", model, "--json", model])
        XCTAssertEqual(trainSame.status, 64, trainSame.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: model))
        XCTAssertEqual(try run(small + ["--out", model]).status, 0)
        let checkpoint = try XCTUnwrap(contents(model)), log = try XCTUnwrap(contents(model + ".log.jsonl"))
        for target in [model, model + ".log.jsonl"] {
            for extra in [[], ["--overwrite"]] {
                let plot = try run(["plot-training", model, "--plot", target] + extra)
                XCTAssertEqual(plot.status, 64, plot.stderr)
                XCTAssertTrue(plot.stderr.contains("an input of this command"), plot.stderr)
            }
        }
        let resumeJSON = try run(small.map { $0 == "2" ? "3" : $0 } + ["--out", model, "--resume", "--json", model])
        XCTAssertEqual(resumeJSON.status, 64, resumeJSON.stderr)
        XCTAssertEqual(contents(model), checkpoint)
        XCTAssertEqual(contents(model + ".log.jsonl"), log)
    }

    /// An --overwrite run that fails (an error, or a crash) leaves the old trajectory and topology
    /// as they were; one that succeeds replaces them.
    func testAnOverwriteRunThatFailsLeavesTheOldFiles() throws {
        let plugin = try misbehavingPlugin()
        let directory = TestPaths.temporaryDirectory("overwrite-fails")
        let out = directory.appendingPathComponent("o.nc").path, pdb = directory.appendingPathComponent("o.pdb").path
        let common = ["--samples", "400", "--burn-in", "50", "--threads", "1", "--out", out]
        XCTAssertEqual(try run(["sample"] + plugin + common).status, 0)
        let (oldTrajectory, oldTopology) = (try XCTUnwrap(contents(out)), try XCTUnwrap(contents(pdb)))
        for (parameter, message) in [("fail_after=200", "failing on request"), ("abort_after=200", "SIGABRT")] {
            let failed = try run(["sample"] + plugin + ["--param", parameter, "--overwrite"] + common)
            XCTAssertEqual(failed.status, 1, failed.stderr)
            XCTAssertTrue(failed.stderr.contains(message), failed.stderr)
            XCTAssertTrue(failed.stderr.contains("left as it was"), failed.stderr)
            XCTAssertEqual(contents(out), oldTrajectory, "\(parameter): the old trajectory is intact")
            XCTAssertEqual(contents(pdb), oldTopology, "\(parameter): the old topology is intact")
            XCTAssertEqual(try leftovers(directory), [], "no unfinished file stays behind")
        }
        let replaced = try run(["sample"] + plugin + ["--overwrite", "--seed", "2"] + common)
        XCTAssertEqual(replaced.status, 0, replaced.stderr)
        XCTAssertNotEqual(contents(out), oldTrajectory)
        XCTAssertEqual(try leftovers(directory), [])
    }

    // MARK: - Item 3: abort() in a plugin

    func testAbortInAPluginNamesItAndLeavesNoStubOutput() throws {
        let plugin = try misbehavingPlugin()
        let directory = TestPaths.temporaryDirectory("abort")
        let out = directory.appendingPathComponent("s.nc").path
        let command = ["sample"] + plugin + ["--samples", "40", "--burn-in", "100", "--threads", "1", "--out", out]
        let crashed = try run(command + ["--param", "abort_after=60"])
        XCTAssertEqual(crashed.status, 1, "an exit, not a signal: \(crashed.stderr)")
        XCTAssertTrue(crashed.stderr.contains("SIGABRT (abort() was called) in plugin 'misbehaving' ("), crashed.stderr)
        XCTAssertTrue(crashed.stderr.contains("libmisbehaving.so)"), "names the library: \(crashed.stderr)")
        XCTAssertFalse(crashed.stderr.contains("Fatal error") || crashed.stderr.contains("Registers"), crashed.stderr)
        XCTAssertLessThanOrEqual(crashed.stderr.split(separator: "\n").count, 2, "one line, no crash dump: \(crashed.stderr)")
        XCTAssertTrue(crashed.stderr.contains("so the same command can run again"), crashed.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "no stub .nc")
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.appendingPathComponent("s.pdb").path))
        XCTAssertEqual(try run(command).status, 0, "the rerun is not blocked")
    }

    // MARK: - Item 5: Ctrl-C

    /// Starts `ensemble` with stdout and stderr into files; returns the process and a reader of both.
    func start(_ arguments: [String], in directory: URL) throws -> (Process, () -> (String, String)) {
        try requireBuilt(TestPaths.ensembleExecutable)
        let stdout = directory.appendingPathComponent("stdout.txt"), stderr = directory.appendingPathComponent("stderr.txt")
        FileManager.default.createFile(atPath: stdout.path, contents: nil)
        FileManager.default.createFile(atPath: stderr.path, contents: nil)
        let process = Process()
        process.executableURL = TestPaths.ensembleExecutable
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: stdout)
        process.standardError = try FileHandle(forWritingTo: stderr)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return (process, {
            (String(decoding: FileManager.default.contents(atPath: stdout.path) ?? Data(), as: UTF8.self),
             String(decoding: FileManager.default.contents(atPath: stderr.path) ?? Data(), as: UTF8.self))
        })
    }

    /// Waits until `condition` holds or `seconds` pass; returns whether it held.
    func wait(_ seconds: Double, until condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }

    func testCtrlCStopsBurnInAndASecondSignalStopsAHungPlugin() throws {
        let plugin = try misbehavingPlugin()
        // Burn-in of a slow energy (1 ms a step, 10⁶ steps: 17 minutes) was deaf to SIGINT.
        let slow = TestPaths.temporaryDirectory("ctrl-c-burn-in")
        let out = slow.appendingPathComponent("s.nc").path
        let (burning, read) = try start(["sample"] + plugin + ["--param", "sleep_us=1000", "--samples", "40",
                                                               "--burn-in", "1000000", "--threads", "1", "--out", out], in: slow)
        defer { if burning.isRunning { kill(burning.processIdentifier, SIGKILL) } }
        XCTAssertTrue(wait(30) { FileManager.default.fileExists(atPath: out) }, "the run reached burn-in: \(read())")
        usleep(300_000)
        let interrupted = Date()
        burning.interrupt()  // SIGINT
        let stopped = wait(5) { !burning.isRunning }
        XCTAssertTrue(stopped, "SIGINT stops burn-in within a few seconds: \(read())")
        guard stopped else { return }
        XCTAssertLessThan(Date().timeIntervalSince(interrupted), 5)
        XCTAssertEqual(burning.terminationStatus, 130)
        let (stdout, stderr) = read()
        XCTAssertTrue(stderr.contains("stopping after the current step"), "the first signal is acknowledged at once: \(stderr)")
        XCTAssertTrue(stdout.contains("interrupted (SIGINT) before the first frame"), stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "no empty file blocks the rerun")

        // A plugin call that never returns: the first signal cannot end it, the second does.
        for second in [SIGINT, SIGTERM] {
            let hung = TestPaths.temporaryDirectory("ctrl-c-hung")
            let hungOut = hung.appendingPathComponent("h.nc").path
            let (process, readHung) = try start(["sample"] + plugin + ["--param", "hang_after=200", "--samples", "40",
                                                                      "--burn-in", "1000", "--threads", "1", "--out", hungOut], in: hung)
            defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
            XCTAssertTrue(wait(30) { FileManager.default.fileExists(atPath: hungOut) }, readHung().1)
            usleep(1_000_000)  // inside the hung call by now
            kill(process.processIdentifier, SIGINT)
            XCTAssertFalse(wait(1) { !process.isRunning }, "the plugin hangs: one signal cannot stop it")
            kill(process.processIdentifier, second)
            let ended = wait(5) { !process.isRunning }
            XCTAssertTrue(ended, "the second signal ends the process at once: \(readHung())")
            guard ended else { continue }
            XCTAssertEqual(process.terminationStatus, 128 + second)
            let (_, hungErr) = readHung()
            XCTAssertTrue(hungErr.contains("a second \(second == SIGINT ? "SIGINT" : "SIGTERM"): stopped at once"), hungErr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: hungOut), "the stub output is removed: \(hungErr)")
        }
    }

    // MARK: - Item 4: impossible sizes

    func testImpossibleSizesFailInValidationBeforeAnyFileIsCreated() throws {
        let directory = TestPaths.temporaryDirectory("sizes")
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        // Sizes far beyond any machine (the audit's 1e9 chains already needed 640 GB here).
        let cases: [([String], String)] = [
            (["sample", "--plugin", "double-well", "--samples", "10", "--chains", "1000000000000", "--out", path("c.nc")], "--chains"),
            (["sample", "--plugin", "double-well", "--sampler", "pt", "--samples", "10", "--chains", "1000000000000",
              "--out", path("pt.nc")], "--chains"),
            (["bench", "--plugin", "double-well", "--batch", "2000000000000", "--repeats", "1", "--json", path("b.json")], "--batch"),
            (["train", "--plugin", "double-well", "--method", "tb", "--steps", "1", "--batch", "20000000000",
              "--out", path("t.ckpt")], "--batch"),
        ]
        for (arguments, option) in cases {
            let result = try run(arguments + ["--threads", "1"])
            XCTAssertEqual(result.status, 1, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("\(option) "), result.stderr)
            XCTAssertTrue(result.stderr.contains("of memory"), result.stderr)
            XCTAssertTrue(result.stderr.contains("the largest \(option) that fits is about"), result.stderr)
            XCTAssertFalse(result.stderr.contains("Fatal error"), result.stderr)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), [],
                           "no file is created: \(arguments)")
        }
    }
}
