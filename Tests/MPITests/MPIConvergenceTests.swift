import Foundation
import TestSupport
import XCTest

/// Issue 14, item 2: LJ-13 PT with the default burn-in and thinning under mpirun gave
/// u = −41.05 ± 0.53 (4σ from −43.13) and said nothing; the run now says it is not converged.
final class MPIConvergenceTests: XCTestCase {
    func testDefaultPTUnderMpirunSaysNotConverged() throws {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        guard let mpirun = (path.split(separator: ":") + ["/usr/bin"]).map({ "\($0)/mpirun" })
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("mpirun not found: install openmpi-bin (make deps) to run the MPI tests")
        }
        try requireBuilt(TestPaths.ensembleExecutable)
        let directory = TestPaths.temporaryDirectory("mpi-convergence")
        let out = directory.appendingPathComponent("lj13.nc").path, json = directory.appendingPathComponent("lj13.json").path
        let result = try runProcess("/usr/bin/timeout", [
            "60", mpirun, "-np", "2", "--oversubscribe", "--allow-run-as-root", TestPaths.ensembleExecutable.path,
            "sample", "--plugin", "lennard-jones", "--param", "preset=lj13", "--sampler", "pt", "--samples", "2000",
            "--threads", "1", "--out", out, "--json", json])
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.stdout.split(separator: "\n")
        XCTAssertEqual(lines.filter { $0.hasPrefix("convergence of energy u (4 chains × 500 frames)") }.count, 1,
                       "rank 0 alone reports, over all chains:\n\(result.stdout)")
        XCTAssertEqual(lines.filter { $0.hasPrefix("NOT CONVERGED: ") }.count, 1, result.stdout)
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as! [String: Any]
        XCTAssertEqual(report["converged"] as? Bool, false)
        XCTAssertEqual(report["ranks"] as? Int, 2)
    }
}
