import Foundation
import TestSupport
import Trajectory
import XCTest

/// Our writer → our reader: coordinates exact as Float, values and cells exact.
final class AmberNetCDFRoundTripTests: XCTestCase {
    func check(periodic: Bool) throws {
        let fixture = TrajectoryFixture(periodic: periodic)
        defer { try? FileManager.default.removeItem(at: fixture.directory) }
        try fixture.write(syncEvery: 3)

        let reader = try AmberNetCDFReader(path: fixture.ncPath)
        XCTAssertEqual(reader.atomCount, fixture.atomCount)
        XCTAssertEqual(reader.frameCount, fixture.frames.count)
        XCTAssertEqual(reader.isPeriodic, periodic)
        XCTAssertEqual(reader.title, "fixture")
        XCTAssertEqual(reader.perFrameVariableNames, ["energy", "log_weight"])
        for k in fixture.frames.indices {
            XCTAssertEqual(try reader.coordinates(frame: k), fixture.frames[k], "frame \(k)")
            XCTAssertEqual(try reader.cell(frame: k), fixture.cells?[k])
        }
        XCTAssertEqual(try reader.allCoordinates(), fixture.frames.flatMap { $0 })
        XCTAssertEqual(try reader.coordinates(frames: 2..<4), Array(fixture.frames[2...3].joined()))
        XCTAssertEqual(try reader.values(of: "energy"), fixture.energies)
        XCTAssertEqual(try reader.values(of: "log_weight"), fixture.logWeights)
        XCTAssertEqual(try reader.times(), fixture.times)
        XCTAssertThrowsError(try reader.values(of: "missing"))
        XCTAssertThrowsError(try reader.coordinates(frame: fixture.frames.count))
    }

    func testFreeSpaceRoundTrip() throws { try check(periodic: false) }

    /// Issue 23: chains, plugin, parameters, sampler and length unit come back from the global
    /// attributes; a file without them (an older or foreign one) has none, and reserved or
    /// malformed attribute names are refused.
    func testProvenanceRoundTrip() throws {
        let fixture = TrajectoryFixture(periodic: false)
        defer { try? FileManager.default.removeItem(at: fixture.directory) }
        try fixture.write()
        let reader = try AmberNetCDFReader(path: fixture.ncPath)
        XCTAssertEqual(reader.provenance, TrajectoryFixture.provenance)
        XCTAssertEqual(reader.globalAttributes["ensemble_chains"], .integer(3))
        XCTAssertEqual(reader.globalAttributes["Conventions"], .text("AMBER"))

        let bare = fixture.directory.appendingPathComponent("bare.nc").path
        let writer = try AmberNetCDFWriter(path: bare, atomCount: 1, periodic: false)
        try writer.close()
        XCTAssertEqual(try AmberNetCDFReader(path: bare).provenance, TrajectoryProvenance())
        let empty = TrajectoryProvenance(chains: 1, plugin: "double-well", pluginParameters: "", sampler: "mala")
        XCTAssertNil(empty.attributes["ensemble_plugin_parameters"], "no zero-length attribute")
        XCTAssertEqual(TrajectoryProvenance(attributes: empty.attributes).pluginParameters, "")

        for name in ["title", "Conventions", "bad name", ""] {
            XCTAssertThrowsError(try AmberNetCDFWriter(
                path: fixture.directory.appendingPathComponent("x\(name.count).nc").path, atomCount: 1, periodic: false,
                globalAttributes: [name: .text("x")]), name)
        }
        XCTAssertTrue(TrajectoryProvenance.sameParameters("a=1; b=x", "b=x;a=1.0;"))
        XCTAssertFalse(TrajectoryProvenance.sameParameters("a=1", "a=2"))
        XCTAssertFalse(TrajectoryProvenance.sameParameters("preset=lj13", ""))
    }
    func testPeriodicRoundTrip() throws { try check(periodic: true) }

    func testDoubleInputIsRoundedToFloat() throws {
        let dir = TestPaths.temporaryDirectory("trajectory-float")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("x.nc").path
        let x: [Double] = [0.1, 0.2, 0.3, 1.0 / 3, -2.5e3, 1e-7]
        let writer = try AmberNetCDFWriter(path: path, atomCount: 2, periodic: false)
        try writer.append(coordinates: x, time: 0)
        try writer.append(coordinates: x.map(Float.init), time: 1)
        try writer.close()
        let reader = try AmberNetCDFReader(path: path)
        XCTAssertEqual(try reader.coordinates(frame: 0), x.map { Double(Float($0)) })
        XCTAssertEqual(try reader.coordinates(frame: 1), x.map { Double(Float($0)) })
        XCTAssertEqual(reader.perFrameVariableNames, [])
    }

    func testEmptyTrajectoryIsReadable() throws {
        let dir = TestPaths.temporaryDirectory("trajectory-empty")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("empty.nc").path
        let writer = try AmberNetCDFWriter(path: path, atomCount: 3, periodic: true, perFrameVariables: ["energy"])
        try writer.close()
        let reader = try AmberNetCDFReader(path: path)
        XCTAssertEqual(reader.frameCount, 0)
        XCTAssertEqual(reader.atomCount, 3)
        XCTAssertEqual(try reader.allCoordinates(), [])
        XCTAssertEqual(try reader.values(of: "energy"), [])
    }

    func testWriterCountsFramesAndSyncs() throws {
        let dir = TestPaths.temporaryDirectory("trajectory-count")
        defer { try? FileManager.default.removeItem(at: dir) }
        let writer = try AmberNetCDFWriter(path: dir.appendingPathComponent("c.nc").path, atomCount: 1,
                                           periodic: false, syncEvery: 4)
        for k in 0..<6 { try writer.append(coordinates: [0.0, 0, Double(k)], time: Double(k)) }
        XCTAssertEqual(writer.frameCount, 6)
        XCTAssertEqual(writer.syncedFrameCount, 4)
        try writer.close()
        XCTAssertEqual(writer.syncedFrameCount, 6)
        XCTAssertNoThrow(try writer.close(), "closing twice is harmless")
        XCTAssertThrowsError(try writer.append(coordinates: [0.0, 0, 0], time: 0))
    }
}
