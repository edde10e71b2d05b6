import Foundation
import TestSupport
import Trajectory
import XCTest

final class NumPyArrayTests: XCTestCase {
    /// Hand-built .npy bytes: magic, version, header length, header text padded to 64 bytes, data.
    static func npy(major: UInt8 = 1, header dict: String, data: [UInt8]) -> Data {
        let prefix = major == 1 ? 10 : 12
        var header = dict
        while (prefix + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [major, 0]
        let n = header.utf8.count
        out += major == 1 ? [UInt8(n & 0xFF), UInt8(n >> 8)] : [UInt8(n & 0xFF), UInt8(n >> 8), 0, 0]
        return Data(out + Array(header.utf8) + data)
    }

    static func bytes<T>(_ values: [T]) -> [UInt8] {
        values.withUnsafeBytes { Array($0) }  // little-endian host
    }

    func testVersion1Float32() throws {
        let data = Self.npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                            data: Self.bytes([Float(1), 2, 3, 4.5, -5, 6.25]))
        let a = try NumPyArray(npyData: data)
        XCTAssertEqual(a.shape, [2, 3])
        XCTAssertEqual(a.dtype, .float32)
        XCTAssertEqual(a.values, [1, 2, 3, 4.5, -5, 6.25])
    }

    func testVersion2Float64() throws {
        let data = Self.npy(major: 2, header: "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
                            data: Self.bytes([0.1, 0.2, 1e300]))
        let a = try NumPyArray(npyData: data)
        XCTAssertEqual(a.shape, [3])
        XCTAssertEqual(a.values, [0.1, 0.2, 1e300])
    }

    func testIntegerTypesAndScalar() throws {
        let i4 = Self.npy(header: "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 1), }",
                          data: Self.bytes([Int32(-7), 9]))
        XCTAssertEqual(try NumPyArray(npyData: i4).values, [-7, 9])
        let i8 = Self.npy(header: "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }",
                          data: Self.bytes([Int64(1) << 40]))
        XCTAssertEqual(try NumPyArray(npyData: i8).values, [Double(1 << 40)])
        let scalar = Self.npy(header: "{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
                              data: Self.bytes([2.5]))
        let s = try NumPyArray(npyData: scalar)
        XCTAssertEqual(s.shape, [])
        XCTAssertEqual(s.values, [2.5])
    }

    func testRejectsBadFiles() {
        func reason(_ data: Data) -> String {
            do { _ = try NumPyArray(npyData: data, path: "x.npy"); return "no error" } catch { return "\(error)" }
        }
        let good = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }"
        var badMagic = Self.npy(header: good, data: Self.bytes([Float(1)]))
        badMagic[1] = UInt8(ascii: "X")
        XCTAssertTrue(reason(badMagic).contains("magic"), reason(badMagic))
        let fortran = Self.npy(header: "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
                               data: Self.bytes([Float](repeating: 0, count: 4)))
        XCTAssertTrue(reason(fortran).contains("fortran_order"), reason(fortran))
        let bigEndian = Self.npy(header: "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", data: [0, 0, 0, 0])
        XCTAssertTrue(reason(bigEndian).contains(">f4"), reason(bigEndian))
        let short = Self.npy(header: "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", data: Self.bytes([1.0]))
        XCTAssertTrue(reason(short).contains("bytes"), reason(short))
        var version9 = Self.npy(header: good, data: Self.bytes([Float(1)]))
        version9[6] = 9
        XCTAssertTrue(reason(version9).contains("version"), reason(version9))
        XCTAssertTrue(reason(Data([0x93, 0x4E])).contains("magic"))
        XCTAssertThrowsError(try NumPyArray(contentsOf: "/nonexistent/file.npy"))
    }

    func testWriteReadRoundTrip() throws {
        let dir = TestPaths.temporaryDirectory("npy")
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = TestRandom(seed: 7)
        let values = (0..<24).map { _ in rng.normal() }
        let a = try NumPyArray(shape: [2, 3, 4], values: values)
        let path = dir.appendingPathComponent("a.npy").path
        try a.write(to: path)
        XCTAssertEqual(try NumPyArray(contentsOf: path), a)
        try a.write(to: path, as: .float32)
        let f = try NumPyArray(contentsOf: path)
        XCTAssertEqual(f.dtype, .float32)
        XCTAssertEqual(f.values, values.map { Double(Float($0)) })
        // Header is padded so the data starts at a multiple of 64 bytes.
        let data = a.npyData()
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        XCTAssertEqual((10 + headerLength) % 64, 0)
        XCTAssertThrowsError(try NumPyArray(shape: [2, 2], values: [1, 2, 3]))
    }

    /// NumPy itself reads what we write, and we read what NumPy writes (v1 and v2).
    func testNumPyInterop() throws {
        let python = try PythonTools.require(["numpy"])
        let dir = TestPaths.temporaryDirectory("npy-interop")
        defer { try? FileManager.default.removeItem(at: dir) }
        let ours = dir.appendingPathComponent("ours.npy").path
        try NumPyArray(shape: [3, 2], values: [1, 2, 3, 4, 5, 6.5]).write(to: ours, as: .float32)
        let theirs1 = dir.appendingPathComponent("v1.npy").path, theirs2 = dir.appendingPathComponent("v2.npy").path
        let out = try PythonTools.run(python, script: """
            import sys, numpy as np
            from numpy.lib import format as fmt
            a = np.load(sys.argv[1])
            assert a.dtype == np.float32 and a.shape == (3, 2) and a[2, 1] == 6.5, (a.dtype, a.shape, a)
            b = np.arange(12, dtype=np.float64).reshape(2, 3, 2) / 4
            np.save(sys.argv[2], b)
            with open(sys.argv[3], "wb") as f:
                fmt.write_array(f, b.astype(np.float32), version=(2, 0))
            print("numpy OK")
            """, arguments: [ours, theirs1, theirs2])
        XCTAssertTrue(out.contains("numpy OK"), out)
        let v1 = try NumPyArray(contentsOf: theirs1), v2 = try NumPyArray(contentsOf: theirs2)
        XCTAssertEqual(v1.shape, [2, 3, 2])
        XCTAssertEqual(v1.values, (0..<12).map { Double($0) / 4 })
        XCTAssertEqual(v2.shape, [2, 3, 2])
        XCTAssertEqual(v2.dtype, .float32)
        XCTAssertEqual(v2.values, v1.values)
    }

    // MARK: Reference benchmark sets (../shared/reference; never copied into the repository)

    func reference(_ name: String) throws -> String {
        guard let dir = TestPaths.sharedReference,
              FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).path) else {
            throw XCTSkip("reference file \(name) not available (../shared/reference): skipped")
        }
        return dir.appendingPathComponent(name).path
    }

    func testReadsDW4ReferenceSet() throws {
        let a = try NumPyArray(contentsOf: reference("test_split_DW4.npy"))
        XCTAssertEqual(a.shape, [10000, 8])
        XCTAssertEqual(a.dtype, .float32)
        XCTAssertTrue(a.values.allSatisfy(\.isFinite))
    }

    func testLJ13ReferenceSetHasZeroCentreOfMass() throws {
        let a = try NumPyArray(contentsOf: reference("test_split_LJ13-1000.npy"))
        XCTAssertEqual(a.shape, [10000, 39])
        var worst = 0.0
        for frame in 0..<a.shape[0] {
            for d in 0..<3 {
                var sum = 0.0
                for atom in 0..<13 { sum += a.values[frame * 39 + atom * 3 + d] }
                worst = max(worst, abs(sum / 13))
            }
        }
        XCTAssertLessThan(worst, 1e-5, "LJ-13 frames should be centred")
    }
}
