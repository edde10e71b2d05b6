import XCTest
final class AlanineTestsPlaceholder: XCTestCase { func testBuilds() { XCTAssertTrue(true) } }
