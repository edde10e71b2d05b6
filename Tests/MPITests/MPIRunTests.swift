import Foundation
import TestSupport
import XCTest

/// The `ensemble` binary as two MPI ranks (`mpirun -np 2 --oversubscribe`, fits a 2-core
/// machine) against one rank. Skips with a notice where mpirun is absent.
final class MPIRunTests: XCTestCase {
    var ensemble: String { TestPaths.ensembleExecutable.path }

    /// mpirun on PATH, or skip.
    func mpirun() throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") + ["/usr/bin"] {
            let candidate = "\(directory)/mpirun"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw XCTSkip("mpirun not found: install openmpi-bin (make deps) to run the MPI tests")
    }

    /// `ensemble` with `arguments` on `ranks` MPI ranks (60 s limit, so a hang fails the test).
    /// --allow-run-as-root is harmless for other users and needed when the tests run as root.
    func ranks(_ ranks: Int, _ arguments: [String]) throws -> ProcessResult {
        try requireBuilt(TestPaths.ensembleExecutable)
        return try runProcess("/usr/bin/timeout", ["60", try mpirun(), "-np", "\(ranks)", "--oversubscribe",
                                                   "--allow-run-as-root", ensemble] + arguments)
    }

    /// `ensemble` alone, without mpirun.
    func alone(_ arguments: [String]) throws -> ProcessResult {
        try requireBuilt(TestPaths.ensembleExecutable)
        return try runProcess(ensemble, arguments)
    }

    func parameters(_ checkpoint: String) throws -> (network: [Double], scalars: [Double], state: [String: Any]) {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: checkpoint))) as! [String: Any]
        let state = json["state"] as! [String: Any]
        return (state["parameters"] as! [Double], state["scalars"] as! [Double], state)
    }

    func maxDifference(_ a: [Double], _ b: [Double]) -> Double {
        XCTAssertEqual(a.count, b.count)
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    /// Each step's trajectories come in tiny batches, so a few steps move the parameters by ~1e-2.
    /// The Double engine: the tolerances below are Double round-off (with the default Float
    /// engine the same runs agree to Float round-off, 2e-7 measured).
    let training = ["train", "--plugin", "double-well", "--batch", "8", "--hidden", "16", "--layers", "2",
                    "--time-steps", "10", "--no-replay", "--local-search-every", "0", "--threads", "1",
                    "--precision", "double"]

    /// 2 ranks × 4 trajectories = 1 rank × 8 in 2 shards, after 6 Adam steps.
    ///
    /// Tolerance 1e-12 (absolute, parameters are O(1)): the two runs draw the same
    /// trajectories (shard k of step s uses stream (seed, s, k) on whichever rank) and evaluate
    /// the same objective on the same residuals; they differ only in how per-trajectory
    /// gradient terms are added (one backward pass over 8 paths vs two over 4, then rank 0 adds
    /// the two in rank order), i.e. by round-off of order 1e-16 relative per step. Adam (ε =
    /// 1e-8) passes such differences on without amplifying them much over a few steps
    /// (measured: ~1e-16). A wrong split of the random draws changes them by ~1e-2 (checked
    /// below against the unsharded run).
    func testTwoRanksTrainLikeOneRankWithTheWholeBatch() throws {
        let directory = TestPaths.temporaryDirectory("mpi-train")
        let one = directory.appendingPathComponent("one.ckpt").path
        let two = directory.appendingPathComponent("two.ckpt").path
        let plain = directory.appendingPathComponent("plain.ckpt").path
        let common = training + ["--method", "tb", "--steps", "6"]
        let a = try alone(common + ["--shards", "2", "--out", one])
        XCTAssertEqual(a.status, 0, a.stderr)
        let b = try ranks(2, common + ["--out", two])
        XCTAssertEqual(b.status, 0, b.stderr)
        XCTAssertTrue(b.stdout.contains("data-parallel: 2 rank(s), 2 shards of the batch 8"), b.stdout)
        XCTAssertEqual(b.stdout.components(separatedBy: "trained tb to step 6").count, 2, "rank 0 alone prints:\n\(b.stdout)")
        let c = try alone(common + ["--out", plain])
        XCTAssertEqual(c.status, 0, c.stderr)

        let (p1, s1, state1) = try parameters(one)
        let (p2, s2, state2) = try parameters(two)
        let difference = maxDifference(p1, p2)
        print("max |θ(1 rank, 2 shards) − θ(2 ranks)| = \(difference) over \(p1.count) parameters")
        XCTAssertLessThanOrEqual(difference, 1e-12)
        XCTAssertLessThanOrEqual(maxDifference(s1, s2), 1e-12, "log Z")
        XCTAssertEqual(state1["energyEvaluations"] as? Int, 48)  // 6 steps × 8 trajectories, both ranks counted
        XCTAssertEqual(state2["energyEvaluations"] as? Int, 48)
        XCTAssertGreaterThan(maxDifference(p1, try parameters(plain).network), 1e-6,
                             "an unsharded run draws other trajectories; the comparison above must be able to fail")
    }

    /// A 2-rank checkpoint resumed by 1 rank (same shards) continues exactly as 2 ranks would.
    func testResumeWithAnotherRankCount() throws {
        let directory = TestPaths.temporaryDirectory("mpi-resume")
        let straight = directory.appendingPathComponent("straight.ckpt").path
        let resumed = directory.appendingPathComponent("resumed.ckpt").path
        let common = training + ["--method", "logvar"]
        XCTAssertEqual(try ranks(2, common + ["--steps", "6", "--out", straight]).status, 0)
        XCTAssertEqual(try ranks(2, common + ["--steps", "3", "--out", resumed]).status, 0)
        let r = try alone(common + ["--steps", "6", "--shards", "2", "--resume", "--out", resumed])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("resuming"), r.stdout)
        let (p1, _, state1) = try parameters(straight)
        let (p2, _, state2) = try parameters(resumed)
        XCTAssertLessThanOrEqual(maxDifference(p1, p2), 1e-12)
        XCTAssertEqual(state1["step"] as? Int, 6)
        XCTAssertEqual(state2["step"] as? Int, 6)
        XCTAssertEqual(state1["energyEvaluations"] as? Int, state2["energyEvaluations"] as? Int)
    }

    /// MALA (chains split) and PT (temperatures split) on 2 ranks against 1 rank on a
    /// harmonic well with ⟨x²⟩ = kT/k = 0.25; the gathered files are read by MDAnalysis.
    func testMCMCOnTwoRanksMatchesOneRank() throws {
        let python = try PythonTools.require(["MDAnalysis", "netCDF4", "numpy"])
        let directory = TestPaths.temporaryDirectory("mpi-mcmc")
        _ = try buildHarmonicPlugin(in: directory)
        let common = ["sample", "--plugin-dir", directory.path, "--plugin", "harmonic", "--param", "k=2",
                      "--param", "temperature=0.5", "--param", "particles=4", "--samples", "6000", "--chains", "4",
                      "--thin", "5", "--burn-in", "500", "--threads", "1", "--centre-of-mass", "off"]
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        let one = try alone(common + ["--out", path("one.nc")])
        XCTAssertEqual(one.status, 0, one.stderr)
        let two = try ranks(2, common + ["--out", path("two.nc")])
        XCTAssertEqual(two.status, 0, two.stderr)
        let again = try ranks(2, common + ["--out", path("again.nc")])
        XCTAssertEqual(again.status, 0, again.stderr)
        let pt = try ranks(2, common + ["--sampler", "pt", "--replicas", "4", "--max-temperature", "3",
                                        "--out", path("pt.nc")])
        XCTAssertEqual(pt.status, 0, pt.stderr)
        XCTAssertTrue(pt.stdout.contains("replicas split"), pt.stdout)
        XCTAssertTrue(pt.stdout.contains("replica exchange acceptance: 0↔1"), pt.stdout)

        // Same walkers and steps: the same energy evaluations over all ranks.
        func evaluations(_ r: ProcessResult) -> String? {
            r.stdout.split(separator: "\n").first { $0.hasPrefix("energy evaluations:") }
                .map { String($0.split(separator: ",")[0]) }
        }
        XCTAssertEqual(evaluations(one), "energy evaluations: \(4 * (1 + 500 + 1500 * 5))")
        XCTAssertEqual(evaluations(two), evaluations(one))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("two.nc"))),
                       try Data(contentsOf: URL(fileURLWithPath: path("again.nc"))),
                       "the gathered file is the same from run to run")

        let script = """
            import sys, json
            import numpy as np, MDAnalysis as mda, netCDF4
            out = {}
            for name in sys.argv[2:]:
                nc = f"{sys.argv[1]}/{name}.nc"
                u = mda.Universe(f"{sys.argv[1]}/{name}.pdb", nc)
                x2 = np.array([np.mean(ts.positions.astype(float) ** 2) for ts in u.trajectory])
                batches = np.array_split(x2, 20)
                means = np.array([b.mean() for b in batches])
                energy = netCDF4.Dataset(nc)["energy"][:]
                out[name] = dict(frames=len(u.trajectory), mean=float(x2.mean()),
                                 error=float(means.std(ddof=1) / np.sqrt(len(means))), energies=len(energy))
            print(json.dumps(out))
            """
        let output = try PythonTools.run(python, script: script, arguments: [directory.path, "one", "two", "pt"])
        let moments = try JSONSerialization.jsonObject(with: Data(output.utf8)) as! [String: [String: Double]]
        print("⟨x²⟩ (exact 0.25):", moments.mapValues { String(format: "%.4f ± %.4f", $0["mean"]!, $0["error"]!) })
        for name in ["one", "two", "pt"] {
            let m = try XCTUnwrap(moments[name])
            XCTAssertEqual(m["frames"], 6000, name)
            XCTAssertEqual(m["energies"], 6000, name)
            XCTAssertLessThan(abs(m["mean"]! - 0.25), 4 * m["error"]! + 2e-3, "\(name): \(m)")
        }
        let (a, b) = (moments["one"]!, moments["two"]!)
        XCTAssertLessThan(abs(a["mean"]! - b["mean"]!), 4 * (a["error"]! * a["error"]! + b["error"]! * b["error"]!).squareRoot() + 2e-3)
    }

    /// A trained model sampled by 2 ranks: each draws half, rank 0 writes them all.
    func testModelSamplingOnTwoRanks() throws {
        let directory = TestPaths.temporaryDirectory("mpi-model")
        let model = directory.appendingPathComponent("m.ckpt").path
        let train = try ranks(2, training + ["--method", "tb", "--steps", "4", "--out", model])
        XCTAssertEqual(train.status, 0, train.stderr)
        let samples = directory.appendingPathComponent("m.nc").path
        let sample = try ranks(2, ["sample", "--model", model, "--samples", "101", "--threads", "1", "--out", samples])
        XCTAssertEqual(sample.status, 0, sample.stderr)
        XCTAssertTrue(sample.stdout.contains("wrote 101 frames"), sample.stdout)
        XCTAssertTrue(sample.stdout.contains("(all 2 ranks)"), sample.stdout)
    }

    /// A plugin error on rank 1 stops both ranks with its message (no hang: 60 s limit).
    func testAFailingRankStopsEveryRank() throws {
        let directory = TestPaths.temporaryDirectory("mpi-fail")
        let source = directory.appendingPathComponent("failing.c")
        try Self.failingPlugin.write(to: source, atomically: true, encoding: .utf8)
        _ = try compileCPlugin(source: source, name: "failing", in: directory, defines: ["FAIL_RANK=1", "FAIL_AFTER=30"])
        let plugin = ["--plugin-dir", directory.path, "--plugin", "failing", "--threads", "1"]
        let clock = ContinuousClock.now
        let sample = try ranks(2, ["sample"] + plugin + ["--samples", "400", "--chains", "2", "--burn-in", "10",
                                                         "--out", directory.appendingPathComponent("f.nc").path])
        XCTAssertNotEqual(sample.status, 0)
        XCTAssertNotEqual(sample.status, 124, "timed out: a rank hung")
        XCTAssertTrue(sample.stderr.contains("rank 1: sampling stopped at step"), sample.stderr)
        XCTAssertTrue(sample.stderr.contains("injected failure after 30 calls"), sample.stderr)
        let train = try ranks(2, ["train"] + plugin + ["--method", "tb", "--steps", "50", "--batch", "4", "--hidden", "8",
                                                       "--layers", "1", "--time-steps", "5",
                                                       "--out", directory.appendingPathComponent("f.ckpt").path])
        XCTAssertNotEqual(train.status, 0)
        XCTAssertNotEqual(train.status, 124, "timed out: a rank hung")
        XCTAssertTrue(train.stderr.contains("rank 1: failing: evaluate failed: injected failure"), train.stderr)
        XCTAssertLessThan((ContinuousClock.now - clock) / .seconds(1), 50)
    }

    /// A harmonic well that fails on MPI rank FAIL_RANK after FAIL_AFTER evaluate calls.
    static let failingPlugin = """
        #include <stdio.h>
        #include <stdlib.h>
        #include "ensemble_plugin.h"

        struct ensemble_system { int failing; long calls; };

        static ensemble_system *create(const char *parameters, char *error, size_t capacity) {
            (void)parameters; (void)error; (void)capacity;
            ensemble_system *s = calloc(1, sizeof *s);
            const char *rank = getenv("OMPI_COMM_WORLD_RANK");
            s->failing = rank && atoi(rank) == FAIL_RANK;
            return s;
        }
        static void destroy(ensemble_system *s) { free(s); }
        static int32_t particle_count(const ensemble_system *s) { (void)s; return 2; }
        static int32_t dimension(const ensemble_system *s) { (void)s; return 3; }
        static int32_t box(const ensemble_system *s, double *edges) { (void)s; (void)edges; return 0; }
        static double length_unit(const ensemble_system *s) { (void)s; return 1.0; }
        static int32_t evaluate(const ensemble_system *cs, int64_t batch, const double *x, double *u, double *grad,
                                char *error, size_t capacity) {
            ensemble_system *s = (ensemble_system *)cs;
            if (s->failing && ++s->calls > FAIL_AFTER) {
                snprintf(error, capacity, "injected failure after %d calls", FAIL_AFTER);
                return 1;
            }
            for (int64_t b = 0; b < batch; b++) {
                double sum = 0;
                for (int64_t i = 0; i < 6; i++) {
                    sum += x[b * 6 + i] * x[b * 6 + i];
                    if (grad) grad[b * 6 + i] = x[b * 6 + i];
                }
                u[b] = 0.5 * sum;
            }
            return 0;
        }
        static const ensemble_plugin table = {
            .abi_version = ENSEMBLE_PLUGIN_ABI_VERSION, .struct_size = sizeof(ensemble_plugin),
            .name = "failing", .version = "1.0.0", .description = "fails on one MPI rank", .parameters_help = "",
            .create = create, .destroy = destroy, .particle_count = particle_count, .dimension = dimension,
            .box = box, .length_unit_angstrom = length_unit, .evaluate = evaluate,
        };
        const ensemble_plugin *ensemble_plugin_entry(void) { return &table; }
        """
}
