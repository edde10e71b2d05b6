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
        // A --thin shorter than one trajectory could not give --samples frames: refused.
        let short = try runProcess(TestPaths.ensembleExecutable.path, [
            "sample", "--plugin", "alanine", "--sampler", "ghmc", "--samples", "10", "--thin", "5", "--out", out, "--overwrite"])
        XCTAssertNotEqual(short.status, 0)
        XCTAssertTrue(short.stderr.contains("--thin 5 is shorter than one GHMC trajectory"), short.stderr)
    }

    /// The default replica-exchange ladder is sized to the molecule: alanine dipeptide (22 atoms)
    /// keeps 4 levels, ACE-(ALA)5-NME (62 atoms, 32 X–H constraints, d = 148) gets 6, 300–600 K,
    /// in the printout and the JSON. Needs AmberTools' tleap (.venv/bin/tleap or on PATH; skipped
    /// without it).
    func testDefaultLadderGrowsWithTheMolecule() throws {
        try requireBuilt(TestPaths.ensembleExecutable)
        try requireBuilt(TestPaths.plugin("Alanine"))
        let venvTleap = TestPaths.repositoryRoot.appendingPathComponent(".venv/bin/tleap").path
        let which = try runProcess("/usr/bin/env", ["which", "tleap"])
        guard let tleap = FileManager.default.isExecutableFile(atPath: venvTleap) ? venvTleap
                : which.status == 0 ? which.stdout.trimmingCharacters(in: .whitespacesAndNewlines) : nil else {
            throw XCTSkip("no tleap (AmberTools): .venv/bin/tleap or PATH")
        }
        let directory = TestPaths.temporaryDirectory("ladder")
        let leap = directory.appendingPathComponent("p.leap")
        try """
            source leaprc.protein.ff14SB
            set default PBRadii mbondi2
            mol = sequence { ACE ALA ALA ALA ALA ALA NME }
            saveAmberParm mol \(directory.path)/p.prmtop \(directory.path)/p.inpcrd
            quit

            """.write(to: leap, atomically: true, encoding: .utf8)
        let built = try runProcess(tleap, ["-f", leap.path], currentDirectory: directory)  // its leap.log there
        guard built.status == 0, FileManager.default.fileExists(atPath: directory.appendingPathComponent("p.prmtop").path) else {
            throw XCTSkip("tleap failed: \(built.stdout.suffix(300)) \(built.stderr.suffix(300))")
        }
        func temperatures(_ parameters: [String]) throws -> [Double] {
            let json = directory.appendingPathComponent("t.json").path
            let r = try runProcess(TestPaths.ensembleExecutable.path, ["sample", "--plugin", "alanine"] + parameters + [
                "--samples", "2", "--chains", "2", "--thin", "10", "--burn-in", "10", "--threads", "1",
                "--out", directory.appendingPathComponent("t.nc").path, "--overwrite", "--json", json])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("replica exchange acceptance: 0↔1"), r.stdout)
            let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as! [String: Any]
            let t = try XCTUnwrap(report["temperatures"] as? [Double])
            XCTAssertEqual((report["exchange_acceptance"] as? [Any])?.count, t.count - 1)
            return t
        }
        let dipeptide = try temperatures([])
        XCTAssertEqual(dipeptide.count, 4)
        let peptide = try temperatures(["--param", "prmtop=\(directory.path)/p.prmtop"])
        XCTAssertEqual(peptide.count, 6)
        XCTAssertEqual(peptide.first!, 1)
        XCTAssertEqual(peptide.last!, 2, accuracy: 1e-12)
        // Given explicitly, the ladder is the user's.
        XCTAssertEqual(try temperatures(["--param", "prmtop=\(directory.path)/p.prmtop", "--replicas", "3"]).count, 3)
    }
}
