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
        for svg in [plot, directory.appendingPathComponent("r-reference.svg").path] {
            let text = try String(contentsOfFile: svg, encoding: .utf8)
            XCTAssertTrue(text.contains("<svg") && text.contains("ψ (rad)"), svg)
        }
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
