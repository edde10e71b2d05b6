import Foundation
import TestSupport
import Trajectory
import XCTest

/// Clear errors: existing files, unwritable places, wrong shapes, foreign files.
final class AmberNetCDFErrorTests: XCTestCase {
    var directory: URL!
    override func setUp() { directory = TestPaths.temporaryDirectory("trajectory-errors") }
    override func tearDown() { try? FileManager.default.removeItem(at: directory) }

    func testRefusesToOverwriteWithoutFlag() throws {
        let path = directory.appendingPathComponent("exists.nc").path
        try Data("precious".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try AmberNetCDFWriter(path: path, atomCount: 2, periodic: false)) { error in
            XCTAssertEqual(error as? TrajectoryError, .fileExists(path: path))
            XCTAssertTrue("\(error)".contains("overwrite"), "\(error)")
        }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "precious", "file untouched")
        let writer = try AmberNetCDFWriter(path: path, atomCount: 2, periodic: false, overwrite: true)
        try writer.append(coordinates: [Double](repeating: 1, count: 6), time: 0)
        try writer.close()
        XCTAssertEqual(try AmberNetCDFReader(path: path).frameCount, 1)
    }

    func testMissingDirectoryIsNotWritable() {
        let path = directory.appendingPathComponent("no/such/dir/t.nc").path
        XCTAssertThrowsError(try AmberNetCDFWriter(path: path, atomCount: 2, periodic: false)) { error in
            guard case .notWritable(let p, let reason)? = error as? TrajectoryError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(p, path)
            XCTAssertTrue(reason.contains("does not exist"), reason)
        }
    }

    func testReadOnlyDirectoryIsNotWritable() throws {
        let readOnly = directory.appendingPathComponent("ro")
        try FileManager.default.createDirectory(at: readOnly, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o500], ofItemAtPath: readOnly.path)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: readOnly.path) }
        if getuid() == 0 && access(readOnly.path, W_OK) == 0 {
            throw XCTSkip("running as root: a read-only directory is still writable")
        }
        let path = readOnly.appendingPathComponent("t.nc").path
        XCTAssertThrowsError(try AmberNetCDFWriter(path: path, atomCount: 2, periodic: false)) { error in
            guard case .notWritable(let p, let reason)? = error as? TrajectoryError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(p, path)
            XCTAssertFalse(reason.isEmpty)
        }
    }

    /// /proc refuses new files even for root, so this exercises nc_create's own failure.
    func testUnwritableSystemDirectoryIsNotWritable() throws {
        let path = "/proc/ensemble-\(getpid()).nc"
        guard FileManager.default.fileExists(atPath: "/proc/self") else { throw XCTSkip("no /proc on this system") }
        XCTAssertThrowsError(try AmberNetCDFWriter(path: path, atomCount: 2, periodic: false)) { error in
            guard case .notWritable(let p, let reason)? = error as? TrajectoryError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(p, path)
            XCTAssertFalse(reason.isEmpty)
            print("error reads: \(error)")
        }
    }

    func testPathThatIsADirectoryFails() throws {
        let path = directory.appendingPathComponent("adir").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        XCTAssertThrowsError(try AmberNetCDFWriter(path: path, atomCount: 2, periodic: false, overwrite: true)) { error in
            XCTAssertTrue("\(error)".contains(path), "\(error)")
            print("error reads: \(error)")
        }
    }

    func testWrongShapesAndNames() throws {
        let path = directory.appendingPathComponent("shape.nc").path
        XCTAssertThrowsError(try AmberNetCDFWriter(path: path, atomCount: 0, periodic: false))
        XCTAssertThrowsError(try AmberNetCDFWriter(path: path, atomCount: 2, periodic: false, syncEvery: 0))
        XCTAssertThrowsError(try AmberNetCDFWriter(path: path, atomCount: 2, periodic: false,
                                                   perFrameVariables: ["coordinates"]))
        XCTAssertThrowsError(try AmberNetCDFWriter(path: path, atomCount: 2, periodic: false,
                                                   perFrameVariables: ["bad name"]))
        XCTAssertThrowsError(try AmberNetCDFWriter(path: path, atomCount: 2, periodic: false,
                                                   perFrameVariables: ["e", "e"]))
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "a refused header leaves no file")

        let writer = try AmberNetCDFWriter(path: path, atomCount: 2, periodic: false, perFrameVariables: ["energy"])
        let x = [Double](repeating: 0, count: 6)
        XCTAssertThrowsError(try writer.append(coordinates: [1.0, 2, 3], time: 0, values: ["energy": 1]))
        XCTAssertThrowsError(try writer.append(coordinates: x, time: 0), "missing energy")
        XCTAssertThrowsError(try writer.append(coordinates: x, time: 0, values: ["energy": 1, "other": 2]))
        XCTAssertThrowsError(try writer.append(coordinates: x, time: 0, cell: .cubic(10), values: ["energy": 1]))
        try writer.append(coordinates: x, time: 0, values: ["energy": 1])
        try writer.close()

        let periodic = try AmberNetCDFWriter(path: directory.appendingPathComponent("p.nc").path,
                                             atomCount: 2, periodic: true)
        XCTAssertThrowsError(try periodic.append(coordinates: x, time: 0), "periodic needs a cell")
        try periodic.close()
    }

    func testReaderRejectsForeignFiles() throws {
        let text = directory.appendingPathComponent("text.nc").path
        try Data("not netcdf at all".utf8).write(to: URL(fileURLWithPath: text))
        XCTAssertThrowsError(try AmberNetCDFReader(path: text)) { error in
            XCTAssertTrue("\(error)".contains(text), "\(error)")
        }
        XCTAssertThrowsError(try AmberNetCDFReader(path: directory.appendingPathComponent("absent.nc").path))
    }

    /// A valid netCDF file without `Conventions = "AMBER"` (written by netCDF4) is refused by name.
    func testReaderRejectsNetCDFWithoutAmberConventions() throws {
        let python = try PythonTools.require(["netCDF4"])
        let path = directory.appendingPathComponent("plain.nc").path
        _ = try PythonTools.run(python, script: """
            import sys, netCDF4
            d = netCDF4.Dataset(sys.argv[1], "w", format="NETCDF3_64BIT_OFFSET")
            d.createDimension("frame", None); d.createDimension("atom", 2); d.createDimension("spatial", 3)
            d.createVariable("coordinates", "f4", ("frame", "atom", "spatial"))
            d.close()
            """, arguments: [path])
        XCTAssertThrowsError(try AmberNetCDFReader(path: path)) { error in
            guard case .notAmberNetCDF(_, let reason)? = error as? TrajectoryError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertTrue(reason.contains("Conventions"), reason)
        }
    }
}
