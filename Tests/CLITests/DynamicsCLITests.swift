import Foundation
import TestSupport
import Trajectory
import XCTest

/// `ensemble sample` on a molecule: dynamics by default, time in ps, basin populations with errors.
final class DynamicsCLITests: XCTestCase {
    func testAlanineSamplesByDynamicsByDefaultWithTimeInPicoseconds() throws {
        try requireBuilt(TestPaths.ensembleExecutable)
        try requireBuilt(TestPaths.plugin("Alanine"))
        let directory = TestPaths.temporaryDirectory("dynamics")
        let out = directory.appendingPathComponent("a.nc").path, json = directory.appendingPathComponent("a.json").path
        let r = try runProcess(TestPaths.ensembleExecutable.path, [
            "sample", "--plugin", "alanine", "--samples", "12", "--chains", "3", "--thin", "50", "--burn-in", "100",
            "--threads", "1", "--out", out, "--json", json])
        XCTAssertEqual(r.status, 0, r.stderr)
        for expected in ["Langevin (BAOAB) dynamics: Δt 4 fs", "12 constraints, H mass 3 amu", "replica exchange acceptance: 0↔1", "basin populations", "αR", "β/PII", "αL",
                         "NOT CONVERGED"] {
            XCTAssertTrue(r.stdout.contains(expected), "missing \(expected) in:\n\(r.stdout)")
        }
        let times = try AmberNetCDFReader(path: out).times()
        XCTAssertEqual(times.count, 12)
        // Frames of the 3 chains every 50 steps of 4 fs after 100 burn-in steps: 0.6, 0.6, 0.6, 0.8, …
        for (k, t) in times.enumerated() { XCTAssertEqual(t, 0.4 + 0.2 * Double(k / 3 + 1), accuracy: 1e-5) }
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as! [String: Any]
        XCTAssertEqual(report["sampler"] as? String, "langevin")
        XCTAssertEqual(report["converged"] as? Bool, false)
        let basins = try XCTUnwrap((report["basins"] as? [String: Any])?["basins"] as? [[String: Any]])
        XCTAssertEqual(basins.map { $0["name"] as? String }, ["αR", "β/PII", "αL"])
        let total = basins.compactMap { $0["population"] as? Double }.reduce(0, +)
        XCTAssertEqual(total, 1, accuracy: 1e-12)
    }

    func testGHMCReportsItsAcceptanceAndREMDItsExchanges() throws {
        try requireBuilt(TestPaths.ensembleExecutable)
        let out = TestPaths.temporaryDirectory("ghmc").appendingPathComponent("g.nc").path
        let r = try runProcess(TestPaths.ensembleExecutable.path, [
            "sample", "--plugin", "alanine", "--sampler", "ghmc", "--replicas", "3", "--samples", "8", "--chains", "2",
            "--thin", "20", "--burn-in", "40", "--exchange-every", "10", "--threads", "1", "--out", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        for expected in ["GHMC acceptance (target level):", "replica exchange acceptance: 0↔1", "temperatures (K): 300.0"] {
            XCTAssertTrue(r.stdout.contains(expected), "missing \(expected) in:\n\(r.stdout)")
        }
    }
}
