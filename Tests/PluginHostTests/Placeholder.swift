import XCTest
final class PluginHostTestsPlaceholder: XCTestCase { func testBuilds() { XCTAssertTrue(true) } }
