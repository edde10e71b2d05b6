import Foundation

/// Element types of .npy files this module reads and writes (little-endian only).
public enum NumPyDType: String, Sendable, CaseIterable {
    case float32 = "<f4"
    case float64 = "<f8"
    case int32 = "<i4"
    case int64 = "<i8"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .float32, .int32: return 4
        case .float64, .int64: return 8
        }
    }
}

/// An n-dimensional array in NumPy's .npy format (versions 1.0, 2.0 and 3.0 read; 1.0 or
/// 2.0 written), C (row-major) order, values held as Double.
///
/// Format: magic `\x93NUMPY`, major and minor version bytes, header length
/// (UInt16 LE in 1.0, UInt32 LE in 2.0/3.0), an ASCII Python dict literal
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (10000, 8), }` padded with
/// spaces and a newline so the data starts at a multiple of 64 bytes, then the data.
///
/// ```swift
/// let samples = try NumPyArray(contentsOf: "test_split_LJ13-1000.npy")  // shape [10000, 39]
/// try NumPyArray(shape: [2, 3], values: x).write(to: "x.npy", as: .float32)
/// ```
public struct NumPyArray: Equatable, Sendable {
    /// Dimensions, outermost first; [] for a scalar.
    public var shape: [Int]
    /// Elements in C order; `values.count == shape.product`.
    public var values: [Double]
    /// The element type the array was read as (or will be written as by default).
    public var dtype: NumPyDType

    /// - Throws: `.invalidArgument` if `values.count` is not the product of `shape`.
    public init(shape: [Int], values: [Double], dtype: NumPyDType = .float64) throws {
        guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == values.count else {
            throw TrajectoryError.invalidArgument(
                "NumPyArray shape \(shape) holds \(shape.reduce(1, *)) values, got \(values.count)")
        }
        self.shape = shape
        self.values = values
        self.dtype = dtype
    }

    /// Read a .npy file.
    /// - Throws: `TrajectoryError.invalidNumPy` for a bad magic string, an unsupported version or
    ///   dtype, `fortran_order: True`, or a data size that does not match the shape.
    public init(contentsOf path: String) throws {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw TrajectoryError.invalidNumPy(path: path, reason: "cannot read: \(error.localizedDescription)")
        }
        try self.init(npyData: data, path: path)
    }

    /// Decode .npy bytes; `path` only labels errors.
    public init(npyData data: Data, path: String = "<data>") throws {
        let bytes = [UInt8](data)
        func fail(_ reason: String) -> TrajectoryError { .invalidNumPy(path: path, reason: reason) }
        let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw fail("bad magic string (expected \\x93NUMPY)") }
        let major = bytes[6]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("truncated header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw fail("format version \(major).\(bytes[7]) is not supported (1.0, 2.0, 3.0 are)")
        }
        guard headerStart + headerLength <= bytes.count else { throw fail("truncated header") }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        let (dtype, fortranOrder, shape) = try Self.parseHeader(header, fail: fail)
        guard !fortranOrder else { throw fail("fortran_order is True; only C-order arrays are supported") }
        let count = shape.reduce(1, *)
        let dataStart = headerStart + headerLength
        guard bytes.count - dataStart == count * dtype.size else {
            throw fail("data holds \(bytes.count - dataStart) bytes, shape \(shape) of \(dtype.rawValue) needs \(count * dtype.size)")
        }
        var values = [Double](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress! + dataStart
            for i in 0..<count {
                let p = base + i * dtype.size
                switch dtype {
                case .float32: values[i] = Double(Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(as: UInt32.self))))
                case .float64: values[i] = Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(as: UInt64.self)))
                case .int32: values[i] = Double(Int32(littleEndian: p.loadUnaligned(as: Int32.self)))
                case .int64: values[i] = Double(Int64(littleEndian: p.loadUnaligned(as: Int64.self)))
                }
            }
        }
        self.shape = shape
        self.values = values
        self.dtype = dtype
    }

    /// Parse the Python dict literal of the header.
    static func parseHeader(_ header: String, fail: (String) -> TrajectoryError)
        throws -> (NumPyDType, Bool, [Int]) {
        func value(after key: String) throws -> Substring {
            guard let keyRange = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\"") else {
                throw fail("header has no '\(key)': \(header)")
            }
            var rest = header[keyRange.upperBound...].drop(while: { $0 == " " })
            guard rest.first == ":" else { throw fail("malformed header near '\(key)': \(header)") }
            rest = rest.dropFirst().drop(while: { $0 == " " })
            return rest
        }
        // descr
        let descrRest = try value(after: "descr")
        guard let quote = descrRest.first, quote == "'" || quote == "\"",
              let end = descrRest.dropFirst().firstIndex(of: quote) else {
            throw fail("descr is not a simple type string (structured dtypes are not supported): \(header)")
        }
        let descr = String(descrRest[descrRest.index(after: descrRest.startIndex)..<end])
        guard let dtype = NumPyDType(rawValue: descr) else {
            throw fail("dtype '\(descr)' is not supported (\(NumPyDType.allCases.map(\.rawValue)))")
        }
        // fortran_order
        let fortranRest = try value(after: "fortran_order")
        let fortran: Bool
        if fortranRest.hasPrefix("True") { fortran = true } else if fortranRest.hasPrefix("False") { fortran = false } else {
            throw fail("fortran_order is neither True nor False: \(header)")
        }
        // shape
        let shapeRest = try value(after: "shape")
        guard shapeRest.first == "(", let close = shapeRest.firstIndex(of: ")") else {
            throw fail("shape is not a tuple: \(header)")
        }
        let inner = shapeRest[shapeRest.index(after: shapeRest.startIndex)..<close]
        var shape: [Int] = []
        for part in inner.split(separator: ",") {
            let trimmed = part.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "L", with: "")
            if trimmed.isEmpty { continue }
            guard let n = Int(trimmed), n >= 0 else { throw fail("shape entry '\(part)' is not a count: \(header)") }
            shape.append(n)
        }
        return (dtype, fortran, shape)
    }

    /// The .npy bytes of this array stored as `dtype` (default: `self.dtype`); version 1.0
    /// unless the header needs more than 65535 bytes, then 2.0.
    public func npyData(as dtype: NumPyDType? = nil) -> Data {
        let dtype = dtype ?? self.dtype
        let shapeText: String
        switch shape.count {
        case 0: shapeText = "()"
        case 1: shapeText = "(\(shape[0]),)"
        default: shapeText = "(" + shape.map(String.init).joined(separator: ", ") + ")"
        }
        let dict = "{'descr': '\(dtype.rawValue)', 'fortran_order': False, 'shape': \(shapeText), }"
        var major: UInt8 = 1
        var prefix = 10
        if dict.utf8.count + 1 + 64 > 65535 { major = 2; prefix = 12 }
        let unpadded = prefix + dict.utf8.count + 1
        let padding = (64 - unpadded % 64) % 64
        let header = dict + String(repeating: " ", count: padding) + "\n"
        let headerLength = header.utf8.count
        var out = Data([0x93] + Array("NUMPY".utf8) + [major, 0])
        if major == 1 {
            out.append(contentsOf: [UInt8(headerLength & 0xFF), UInt8(headerLength >> 8)])
        } else {
            out.append(contentsOf: (0..<4).map { UInt8((headerLength >> (8 * $0)) & 0xFF) })
        }
        out.append(contentsOf: Array(header.utf8))
        var body = [UInt8](repeating: 0, count: values.count * dtype.size)
        body.withUnsafeMutableBytes { raw in
            for (i, v) in values.enumerated() {
                let p = raw.baseAddress! + i * dtype.size
                switch dtype {
                case .float32: p.storeBytes(of: Float(v).bitPattern.littleEndian, as: UInt32.self)
                case .float64: p.storeBytes(of: v.bitPattern.littleEndian, as: UInt64.self)
                case .int32: p.storeBytes(of: Int32(v.rounded()).littleEndian, as: Int32.self)
                case .int64: p.storeBytes(of: Int64(v.rounded()).littleEndian, as: Int64.self)
                }
            }
        }
        out.append(contentsOf: body)
        return out
    }

    /// Write the array to `path` as `dtype` (default: `self.dtype`), replacing an existing file.
    /// - Throws: `.notWritable` if the file cannot be written.
    public func write(to path: String, as dtype: NumPyDType? = nil) throws {
        do { try npyData(as: dtype).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw TrajectoryError.notWritable(path: path, reason: error.localizedDescription)
        }
    }
}
