import Foundation
import TestSupport
import Trajectory
import XCTest

/// A neural sampler for alanine end to end: dynamics data, `train --method dsm --data` with atom
/// types, `sample --model --correct-steps --raw-out` with the mirror fold.
final class NeuralAlanineCLITests: XCTestCase {
    func run(_ arguments: [String]) throws -> ProcessResult {
        try requireBuilt(TestPaths.ensembleExecutable)
        try requireBuilt(TestPaths.plugin("Alanine"))
        return try runProcess(TestPaths.ensembleExecutable.path, arguments)
    }

    func json(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
    }

    func testDenoisingFromDynamicsDataWithAtomTypes() throws {
        let directory = TestPaths.temporaryDirectory("ala-neural")
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        let data = try run(["sample", "--plugin", "alanine", "--samples", "16", "--chains", "2", "--thin", "20",
                            "--burn-in", "20", "--threads", "1", "--out", path("data.nc"), "--json", path("data.json")])
        XCTAssertEqual(data.status, 0, data.stderr)
        let dataCost = try XCTUnwrap(json(path("data.json"))["energy_evaluations"] as? Int)
        let small = ["--plugin", "alanine", "--method", "dsm", "--steps", "3", "--hidden", "8", "--layers", "2",
                     "--batch", "8", "--time-steps", "6", "--sigma-max", "5", "--buffer-capacity", "16", "--threads", "1"]
        // --data replaces the parallel-tempering data; its summary must exist.
        let both = try run(["train"] + small + ["--data", path("data.nc"), "--data-samples", "16", "--out", path("x.ckpt")])
        XCTAssertNotEqual(both.status, 0)
        XCTAssertTrue(both.stderr.contains("--data-samples"), both.stderr)
        try FileManager.default.copyItem(atPath: path("data.nc"), toPath: path("lonely.nc"))
        let lonely = try run(["train"] + small + ["--data", path("lonely.nc"), "--out", path("x.ckpt")])
        XCTAssertNotEqual(lonely.status, 0)
        XCTAssertTrue(lonely.stderr.contains("lonely.json"), lonely.stderr)

        let train = try run(["train"] + small + ["--data", path("data.nc"), "--out", path("m.ckpt"), "--json", path("m.json")])
        XCTAssertEqual(train.status, 0, train.stderr)
        XCTAssertTrue(train.stdout.contains("dsm: 16 configurations from"), train.stdout)
        XCTAssertFalse(train.stdout.contains("parallel tempering"), train.stdout)
        let configuration = try XCTUnwrap(json(path("m.ckpt"))["configuration"] as? [String: Any])
        XCTAssertEqual((configuration["nodeTypes"] as? [Int]).map { Set($0).count }, 22, "one type per atom by default")
        XCTAssertEqual((configuration["dataFile"] as? [String: Any])?["energyEvaluations"] as? Int, dataCost)
        XCTAssertEqual(try json(path("m.json"))["energy_evaluations"] as? Int, dataCost, "the data's cost starts the budget")
        // The plugin's bonds give the EDM model its bond graph by default (harmonic prior, edge classes).
        XCTAssertTrue(train.stdout.contains("bond graph: 21 bonds"), train.stdout)
        let graph = try XCTUnwrap(configuration["bondGraph"] as? [String: Any])
        XCTAssertEqual((graph["bonds"] as? [[Int]])?.count, 21)
        let untyped = try run(["train"] + small + ["--data", path("data.nc"), "--atom-types", "none", "--no-bond-graph",
                                                   "--out", path("u.ckpt")])
        XCTAssertEqual(untyped.status, 0, untyped.stderr)
        XCTAssertNil((try json(path("u.ckpt"))["configuration"] as? [String: Any])?["nodeTypes"])
        XCTAssertNil((try json(path("u.ckpt"))["configuration"] as? [String: Any])?["bondGraph"])

        let sample = try run(["sample", "--model", path("m.ckpt"), "--samples", "12", "--correct-steps", "4",
                              "--weights", "exact", "--time-steps", "6", "--raw-out", path("raw.nc"), "--out", path("c.nc"), "--json", path("c.json")])
        XCTAssertEqual(sample.status, 0, sample.stderr)
        XCTAssertTrue(sample.stdout.contains("mirror images: "), sample.stdout)
        let raw = try AmberNetCDFReader(path: path("raw.nc"))
        XCTAssertEqual(raw.frameCount, 12)
        XCTAssertNotEqual(Set(try raw.values(of: "log_weight")), [0], "raw draws keep their weights")
        XCTAssertEqual(try AmberNetCDFReader(path: path("c.nc")).frameCount, 12)
        XCTAssertNotNil(try json(path("c.json"))["mirrored"] as? Int)
        // A molecule draws by the stochastic sampler by default; exact weights need the deterministic flow.
        XCTAssertEqual(try json(path("c.json"))["process"] as? String, "ode")
        let plain = try run(["sample", "--model", path("m.ckpt"), "--samples", "4", "--time-steps", "6",
                             "--out", path("d.nc"), "--json", path("d.json")])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertEqual(try json(path("d.json"))["process"] as? String, "sde")
        XCTAssertTrue(plain.stdout.contains("(sde,"), plain.stdout)
        let bonds = try XCTUnwrap(json(path("c.json"))["bonds"] as? [String: Any], "the bond check of the drawn samples")
        XCTAssertEqual(bonds["samples"] as? Int, 12)
        XCTAssertNotNil(bonds["whole_fraction"] as? Double)
        // φ/ψ of the raw draws: weighted by their log_weight by default, each frame once with --unweighted.
        let weighted = try run(["ramachandran", path("raw.nc"), "--reference", path("data.nc"), "--plugin", "alanine",
                                "--bins", "12", "--json", path("w.json")])
        let unweighted = try run(["ramachandran", path("raw.nc"), "--reference", path("data.nc"), "--plugin", "alanine",
                                  "--bins", "12", "--unweighted", "--json", path("u.json")])
        XCTAssertEqual(weighted.status, 0, weighted.stderr)
        XCTAssertEqual(unweighted.status, 0, unweighted.stderr)
        XCTAssertEqual(try json(path("w.json"))["weighted"] as? Bool, true)
        XCTAssertEqual(try json(path("u.json"))["weighted"] as? Bool, false)
    }
}
