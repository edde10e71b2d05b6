import Equivariant
import Foundation
import TestSupport
import XCTest

final class PersistenceTests: XCTestCase {
    let config = EGNNConfiguration(particles: 4, dimension: 3, hidden: 8, layers: 2, typeIds: [0, 1, 1, 0])

    func testRoundTripIsBitExact() throws {
        let dir = TestPaths.temporaryDirectory("egnn")
        defer { try? FileManager.default.removeItem(at: dir) }
        for seed: UInt64 in [1, 2] {
            let a = try EGNN<Float>(configuration: config, seed: seed)
            let url = dir.appendingPathComponent("p\(seed).egnn")
            try a.save(to: url)
            let b = try EGNN<Float>(configuration: config, seed: 99)
            try b.load(from: url)
            XCTAssertEqual(a.parameters.map(\.bitPattern), b.parameters.map(\.bitPattern))
            let c = try EGNN<Float>.load(from: url)
            XCTAssertEqual(c.configuration, config)
            XCTAssertEqual(a.parameters.map(\.bitPattern), c.parameters.map(\.bitPattern))
        }
        let d = try EGNN<Double>(configuration: config, seed: 3)
        let url = dir.appendingPathComponent("d.egnn")
        try d.save(to: url)
        let e = try EGNN<Double>.load(from: url)
        XCTAssertEqual(d.parameters.map(\.bitPattern), e.parameters.map(\.bitPattern))
    }

    func testDamagedFilesThrowClearErrors() throws {
        let dir = TestPaths.temporaryDirectory("egnn")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try EGNN<Float>(configuration: config, seed: 1)
        let url = dir.appendingPathComponent("m.egnn")
        try model.save(to: url)
        let good = try Data(contentsOf: url)

        func expectError(_ data: Data, containing text: String, line: UInt = #line) throws {
            let bad = dir.appendingPathComponent("bad.egnn")
            try data.write(to: bad)
            XCTAssertThrowsError(try model.load(from: bad), line: line) { error in
                XCTAssert("\(error)".contains(text), "\(error)", line: line)
            }
        }
        try expectError(good.prefix(good.count - 5), containing: "truncated")
        try expectError(good.prefix(10), containing: "truncated")
        try expectError(good.prefix(40), containing: "truncated")
        var flipped = good
        flipped[good.count - 20] ^= 0x40
        try expectError(flipped, containing: "checksum")
        var magic = good
        magic[0] = 0x41
        try expectError(magic, containing: "magic")
        try expectError(good + Data([1, 2, 3]), containing: "trailing")

        var other = config
        other.hidden = 6
        let otherModel = try EGNN<Float>(configuration: other)
        let otherURL = dir.appendingPathComponent("o.egnn")
        try otherModel.save(to: otherURL)
        XCTAssertThrowsError(try model.load(from: otherURL)) { error in
            guard case EquivariantError.shapeMismatch(let message) = error else { return XCTFail("\(error)") }
            XCTAssert(message.contains("embedding.weight"), message)
        }
    }
}
