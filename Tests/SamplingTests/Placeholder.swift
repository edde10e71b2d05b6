import XCTest
final class SamplingTestsPlaceholder: XCTestCase { func testBuilds() { XCTAssertTrue(true) } }
