import XCTest
final class TrajectoryTestsPlaceholder: XCTestCase { func testBuilds() { XCTAssertTrue(true) } }
