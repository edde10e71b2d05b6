import Foundation

/// Parameter files: a versioned binary with a JSON header.
///
///     "EGNNPARM"            8 bytes magic
///     version               UInt32 LE (1)
///     header length         UInt32 LE
///     header                JSON: {version, scalar, count, configuration}
///     parameters            count × (Float32|Float64) LE
///     checksum              UInt64 LE, FNV-1a over header + parameters
///
/// A file of the other precision loads with conversion.
struct ParameterFileHeader: Codable {
    var version: Int
    var scalar: String
    var count: Int
    var configuration: EGNNConfiguration
}

enum ParameterFile {
    static let magic = Array("EGNNPARM".utf8)
    static let version: UInt32 = 1

    static func fnv1a(_ bytes: UnsafeRawBufferPointer, _ seed: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
        var h = seed
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    static func encode<S: TensorScalar>(configuration: EGNNConfiguration, parameters: [S]) throws -> Data {
        let header = ParameterFileHeader(version: Int(version), scalar: S.typeName, count: parameters.count,
                                         configuration: configuration)
        let json = try JSONEncoder().encode(header)
        var data = Data(magic)
        withUnsafeBytes(of: version.littleEndian) { data.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(json.count).littleEndian) { data.append(contentsOf: $0) }
        let bodyStart = data.count
        data.append(json)
        parameters.withUnsafeBytes { data.append(contentsOf: $0) }  // x86-64/arm64: little-endian
        let sum = data.withUnsafeBytes { fnv1a(UnsafeRawBufferPointer(rebasing: $0[bodyStart...])) }
        withUnsafeBytes(of: sum.littleEndian) { data.append(contentsOf: $0) }
        return data
    }

    static func decode<S: TensorScalar>(_ data: Data, as: S.Type) throws -> (EGNNConfiguration, [S]) {
        func corrupt(_ s: String) -> EquivariantError { .corruptFile(s) }
        guard data.count >= 16 else { throw corrupt("file is \(data.count) bytes, shorter than the 16-byte preamble (truncated?)") }
        return try data.withUnsafeBytes { raw -> (EGNNConfiguration, [S]) in
            guard Array(raw[0..<8]) == magic else { throw corrupt("bad magic (not an EGNN parameter file)") }
            let version = raw.loadUnaligned(fromByteOffset: 8, as: UInt32.self).littleEndian
            guard version == ParameterFile.version else {
                throw corrupt("format version \(version), this build reads version \(ParameterFile.version)")
            }
            let headerLength = Int(raw.loadUnaligned(fromByteOffset: 12, as: UInt32.self).littleEndian)
            guard 16 + headerLength <= raw.count else { throw corrupt("header of \(headerLength) bytes runs past the end (truncated)") }
            let header: ParameterFileHeader
            do {
                header = try JSONDecoder().decode(ParameterFileHeader.self,
                                                  from: Data(raw[16..<(16 + headerLength)]))
            } catch {
                throw corrupt("unreadable JSON header: \(error)")
            }
            let width: Int
            switch header.scalar {
            case "Float32": width = 4
            case "Float64": width = 8
            default: throw corrupt("unknown scalar type \(header.scalar)")
            }
            let start = 16 + headerLength
            let expected = start + header.count * width + 8
            guard raw.count == expected else {
                throw corrupt("file is \(raw.count) bytes, header implies \(expected) (\(raw.count < expected ? "truncated" : "trailing bytes"))")
            }
            let stored = raw.loadUnaligned(fromByteOffset: expected - 8, as: UInt64.self).littleEndian
            let actual = fnv1a(UnsafeRawBufferPointer(rebasing: raw[16..<(expected - 8)]))
            guard stored == actual else { throw corrupt("checksum mismatch (file damaged)") }
            var values = [S](repeating: 0, count: header.count)
            for i in 0..<header.count {
                if width == 4 {
                    values[i] = S(Float(bitPattern: raw.loadUnaligned(fromByteOffset: start + 4 * i, as: UInt32.self).littleEndian))
                } else {
                    values[i] = S(Double(bitPattern: raw.loadUnaligned(fromByteOffset: start + 8 * i, as: UInt64.self).littleEndian))
                }
            }
            return (header.configuration, values)
        }
    }
}

extension EGNN {
    /// Writes configuration and parameters (see `ParameterFile` format).
    /// - Throws: file-system errors.
    public func save(to url: URL) throws {
        try ParameterFile.encode(configuration: configuration, parameters: parameters).write(to: url, options: .atomic)
    }

    /// Replaces the parameters with those in `url`.
    /// - Throws: `EquivariantError.corruptFile` (bad magic, version, header,
    ///   size, checksum) or `.shapeMismatch` (a different architecture, with
    ///   the first differing block named).
    public func load(from url: URL) throws {
        let (config, values) = try ParameterFile.decode(try Data(contentsOf: url), as: Scalar.self)
        let other = ParameterLayout(configuration: config)
        guard other.count == values.count else {
            throw EquivariantError.corruptFile("header's configuration has \(other.count) parameters, file holds \(values.count)")
        }
        if other != layout {
            let mine = layout.entries, theirs = other.entries
            let first = zip(mine, theirs).first { $0 != $1 }
            let detail = first.map { "\($0.name) \($0.shape) here vs \($1.name) \($1.shape) in file" }
                ?? "\(mine.count) blocks here vs \(theirs.count) in file"
            throw EquivariantError.shapeMismatch("\(detail) (model \(layout.count) parameters, file \(values.count))")
        }
        parameters = values
    }

    /// A model built from the configuration stored in `url`, with its parameters.
    public static func load(from url: URL, threads: Int = min(2, ProcessInfo.processInfo.activeProcessorCount)) throws -> EGNN {
        let (config, _) = try ParameterFile.decode(try Data(contentsOf: url), as: Scalar.self)
        let model = try EGNN(configuration: config, threads: threads)
        try model.load(from: url)
        return model
    }
}
