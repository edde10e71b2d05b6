import Foundation
import TestSupport
import Trajectory
import XCTest

/// A run killed mid-way leaves a trajectory that readers open with every frame written
/// before the writer's last sync.
final class InterruptedWriterTests: XCTestCase {
    static let childPathKey = "ENSEMBLE_TRAJECTORY_KILL_CHILD_PATH"
    static let frames = 25, syncEvery = 10, atoms = 4

    /// Deterministic coordinates of frame k.
    static func coordinates(frame k: Int) -> [Float] {
        (0..<(3 * atoms)).map { Float(k) + Float($0) * 0.125 }
    }

    /// Runs only as a child of `testSIGKILLedWriterLeavesSyncedFrames` (otherwise it returns at once):
    /// writes 25 frames with syncEvery 10, then kills its own process with SIGKILL — no close, no deinit.
    func testChildProcessWritesThenIsKilled() throws {
        guard let path = ProcessInfo.processInfo.environment[Self.childPathKey] else { return }
        let writer = try AmberNetCDFWriter(path: path, atomCount: Self.atoms, periodic: true,
                                           perFrameVariables: ["energy"], syncEvery: Self.syncEvery)
        for k in 0..<Self.frames {
            try writer.append(coordinates: Self.coordinates(frame: k), time: Double(k), cell: .cubic(30),
                              values: ["energy": Double(-k)])
        }
        kill(getpid(), SIGKILL)
        Thread.sleep(forTimeInterval: 10)  // never reached
    }

    func testSIGKILLedWriterLeavesSyncedFrames() throws {
        let directory = TestPaths.temporaryDirectory("trajectory-killed")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("killed.nc").path
        // Re-run this test binary on the child test only.
        let binary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let result = try runProcess(binary, ["TrajectoryTests.InterruptedWriterTests/testChildProcessWritesThenIsKilled"],
                                    environment: [Self.childPathKey: path])
        XCTAssertEqual(result.status, SIGKILL, "child should die by SIGKILL:\n\(result.stdout)\n\(result.stderr)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: path), "child wrote no file:\n\(result.stderr)")

        let synced = (Self.frames / Self.syncEvery) * Self.syncEvery  // 20
        let reader = try AmberNetCDFReader(path: path)
        print("killed writer (\(Self.frames) frames appended, \(synced) synced): readers see \(reader.frameCount)")
        XCTAssertGreaterThanOrEqual(reader.frameCount, synced)
        XCTAssertLessThanOrEqual(reader.frameCount, Self.frames)
        for k in 0..<synced {
            XCTAssertEqual(try reader.coordinates(frame: k), Self.coordinates(frame: k).map(Double.init), "frame \(k)")
        }
        XCTAssertEqual(Array(try reader.values(of: "energy").prefix(synced)), (0..<synced).map { Double(-$0) })
        XCTAssertEqual(try reader.cell(frame: synced - 1), .cubic(30))

        // And an independent reader agrees.
        if let python = try? PythonTools.require(["netCDF4"]) {
            let out = try PythonTools.run(python, script: """
                import sys, netCDF4
                d = netCDF4.Dataset(sys.argv[1])
                print("frames", len(d.dimensions["frame"]), float(d["coordinates"][\(synced - 1), 0, 0]))
                """, arguments: [path])
            XCTAssertTrue(out.hasPrefix("frames \(reader.frameCount) \(Double(synced - 1))"), out)
        } else {
            print("notice: netCDF4 missing in .venv; independent check of the killed file skipped")
        }
    }

    /// While the writer is still open: after a sync, a reader in another process sees the synced frames.
    func testIndependentReaderSeesSyncedFramesWhileWriterIsOpen() throws {
        let python = try PythonTools.require(["netCDF4"])
        let directory = TestPaths.temporaryDirectory("trajectory-open")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("open.nc").path
        let writer = try AmberNetCDFWriter(path: path, atomCount: 2, periodic: false, syncEvery: 5)
        for k in 0..<7 { try writer.append(coordinates: [Double](repeating: Double(k), count: 6), time: Double(k)) }
        XCTAssertEqual(writer.syncedFrameCount, 5)
        let script = """
            import sys, netCDF4
            d = netCDF4.Dataset(sys.argv[1])
            n = len(d.dimensions["frame"])
            print("frames", n, float(d["coordinates"][4, 1, 2]))
            """
        let out = try PythonTools.run(python, script: script, arguments: [path])
        XCTAssertTrue(out.hasPrefix("frames 5 4.0"), out)
        try writer.close()
        let after = try PythonTools.run(python, script: script, arguments: [path])
        XCTAssertTrue(after.hasPrefix("frames 7 4.0"), after)
    }

    /// A writer dropped without `close()` is closed by `deinit`: every frame is kept.
    func testDroppedWriterIsClosedByDeinit() throws {
        let directory = TestPaths.temporaryDirectory("trajectory-dropped")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("dropped.nc").path
        do {
            let writer = try AmberNetCDFWriter(path: path, atomCount: 1, periodic: false, syncEvery: 100)
            for k in 0..<3 { try writer.append(coordinates: [Double(k), 0, 0], time: Double(k)) }
        }
        XCTAssertEqual(try AmberNetCDFReader(path: path).frameCount, 3)
    }
}
