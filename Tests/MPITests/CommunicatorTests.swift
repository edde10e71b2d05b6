import Distributed
import XCTest

/// The one-rank communicator (no mpirun): every collective is the identity.
final class CommunicatorTests: XCTestCase {
    func testOneRankCollectivesAreIdentities() throws {
        let one = Communicator()
        XCTAssertEqual(one.rank, 0)
        XCTAssertEqual(one.size, 1)
        XCTAssertEqual(try one.sum([1.5, 2]), [1.5, 2])
        XCTAssertEqual(try one.gather([3]), [[3]])
        XCTAssertEqual(try one.allGather([4, 5]), [[4, 5]])
        XCTAssertEqual(try one.broadcast([6]), [6])
        XCTAssertNoThrow(try one.synchronize())
        XCTAssertEqual(one.fail("boom").message, "boom")
    }

    func testLaunchDetection() {
        XCTAssertFalse(Communicator.launchedByMPI(["PATH": "/usr/bin"]))
        XCTAssertTrue(Communicator.launchedByMPI(["OMPI_COMM_WORLD_SIZE": "2"]))
        XCTAssertTrue(Communicator.launchedByMPI(["PMI_SIZE": "2"]))
    }
}
