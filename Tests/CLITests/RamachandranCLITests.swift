import Foundation
import TestSupport
import XCTest

/// `ensemble ramachandran` on alanine dipeptide trajectories made by the CLI itself.
final class RamachandranCLITests: XCTestCase {
    func testRamachandranReportPlotsAndJSON() throws {
        try requireBuilt(TestPaths.ensembleExecutable)
        try requireBuilt(TestPaths.plugin("Alanine"))
        let exe = TestPaths.ensembleExecutable.path
        let directory = TestPaths.temporaryDirectory("rama")
        func sample(_ name: String, seed: Int) throws -> String {
            let out = directory.appendingPathComponent(name).path
            let r = try runProcess(exe, ["sample", "--plugin", "alanine", "--param", "solvent=vacuum", "--samples", "40",
                                         "--burn-in", "100", "--thin", "5", "--seed", "\(seed)", "--out", out])
            XCTAssertEqual(r.status, 0, r.stderr)
            return out
        }
        let a = try sample("a.nc", seed: 1), b = try sample("b.nc", seed: 2)
        let json = directory.appendingPathComponent("r.json").path
        let plot = directory.appendingPathComponent("r.svg").path
        let same = try runProcess(exe, ["ramachandran", a, "--reference", a, "--plugin", "alanine",
                                        "--param", "solvent=vacuum", "--json", json, "--plot", plot])
        XCTAssertEqual(same.status, 0, same.stderr)
        XCTAssertTrue(same.stdout.contains("TV = 0.0000"), same.stdout)
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as! [String: Any]
        XCTAssertEqual(report["kl"] as? Double, 0)
        XCTAssertEqual(report["frames"] as? Int, 40)
        // One figure: samples, reference and difference side by side, in degrees, numbers underneath.
        let text = try String(contentsOfFile: plot, encoding: .utf8)
        for expected in ["ψ (degrees)", "φ (degrees)", "samples − reference", "KL(reference ‖ samples) = 0.0000 nats, TV = 0.0000",
                         "basin populations, samples: αR"] {
            XCTAssertTrue(text.contains(expected), "missing \(expected)")
        }
        XCTAssertFalse(text.contains("(rad)"))
        // The JSON holds the histograms (φ-major, summing to 1) and the basin populations.
        let histogram = try XCTUnwrap(report["histogram"] as? [Double])
        XCTAssertEqual(histogram.count, 60 * 60)
        XCTAssertEqual(histogram.reduce(0, +), 1, accuracy: 1e-9)
        XCTAssertEqual(report["reference_histogram"] as? [Double], histogram)
        XCTAssertEqual((report["bin_edges_degrees"] as? [Double])?.first, -180)
        let basins = try XCTUnwrap(report["basins"] as? [String: Double])
        XCTAssertEqual(Set(basins.keys), ["αR", "β/PII", "αL"])
        XCTAssertEqual(basins.values.reduce(0, +), 1, accuracy: 1e-9)
        let different = try runProcess(exe, ["ramachandran", b, "--reference", a, "--plugin", "alanine",
                                             "--param", "solvent=vacuum"])
        XCTAssertEqual(different.status, 0, different.stderr)
        XCTAssertFalse(different.stdout.contains("TV = 0.0000"), different.stdout)
        // The same numbers through `ensemble evaluate --ramachandran`.
        let evaluate = try runProcess(exe, ["evaluate", a, "--reference", a, "--plugin", "alanine",
                                            "--param", "solvent=vacuum", "--ramachandran", "--max-samples", "20"])
        XCTAssertEqual(evaluate.status, 0, evaluate.stderr)
        XCTAssertTrue(evaluate.stdout.contains("ramachandran_tv: 0\n"), evaluate.stdout)
        XCTAssertTrue(evaluate.stdout.contains("ramachandran_kl: 0\n"), evaluate.stdout)
        // A plugin without a peptide backbone is a clear error.
        let lj = try runProcess(exe, ["ramachandran", a, "--reference", a, "--plugin", "lennard-jones"])
        XCTAssertNotEqual(lj.status, 0)
        XCTAssertFalse(lj.stderr.isEmpty)
    }
}
