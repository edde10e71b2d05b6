import XCTest
final class EquivariantTestsPlaceholder: XCTestCase { func testBuilds() { XCTAssertTrue(true) } }
