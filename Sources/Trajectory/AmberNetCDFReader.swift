import CNetCDF
import Foundation

/// Reads an AMBER NetCDF trajectory (any netCDF format the library opens).
///
/// Coordinates come back in Å as Double (the stored Float values converted
/// exactly), flat [atom][3] per frame; a `scale_factor` attribute, if a
/// foreign writer set one, is applied.
///
/// ```swift
/// let reader = try AmberNetCDFReader(path: "run.nc")
/// let x0 = try reader.coordinates(frame: 0)           // 3·atomCount values, Å
/// let energy = try reader.values(of: "energy")         // one per frame
/// ```
public final class AmberNetCDFReader {
    public let path: String
    /// Atoms per frame.
    public let atomCount: Int
    /// Frames in the file (as recorded in the header at the last sync).
    public let frameCount: Int
    /// Whether the file has `cell_lengths` and `cell_angles`.
    public let isPeriodic: Bool
    /// Global `title` attribute ("" if absent).
    public let title: String
    /// Every global attribute of text, integer or floating-point type (single values; the first
    /// value of a numeric array), e.g. `ensemble_chains` = .integer(4).
    public let globalAttributes: [String: AmberNetCDFWriter.Attribute]
    /// Names of the extra numeric variables with dimensions exactly (frame), e.g. "energy", "log_weight";
    /// `time` is not listed (see `times()`).
    public let perFrameVariableNames: [String]

    private let ncid: Int32
    private let coordinatesID: Int32
    private let coordinateScale: Double
    private let timeID: Int32?
    private let cellLengthsID: Int32?
    private let cellAnglesID: Int32?
    private var variableIDs: [String: Int32]

    /// Open `path` read-only and check that it follows the AMBER convention.
    /// - Throws: `TrajectoryError.netCDF` if netCDF cannot open it, `.notAmberNetCDF` if
    ///   `Conventions` is not "AMBER" or the `frame`/`atom`/`spatial` dimensions or the
    ///   `coordinates` variable are missing.
    public init(path: String) throws {
        self.path = path
        guard FileManager.default.fileExists(atPath: path) else {
            throw TrajectoryError.notAmberNetCDF(path: path, reason: "no such file")
        }
        var id: Int32 = -1
        try check(nc_open(path, NC_NOWRITE, &id), "nc_open", path: path)
        ncid = id
        do {
            guard let conventions = textAttribute(id, NC_GLOBAL, "Conventions") else {
                throw TrajectoryError.notAmberNetCDF(path: path, reason: "global attribute 'Conventions' is missing")
            }
            let tokens = conventions.split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
            guard tokens.contains("AMBER") else {
                throw TrajectoryError.notAmberNetCDF(
                    path: path, reason: "Conventions is '\(conventions)', expected 'AMBER'")
            }
            func dimension(_ name: String) throws -> Int {
                var dim: Int32 = 0, length = 0
                guard nc_inq_dimid(id, name, &dim) == NC_NOERR else {
                    throw TrajectoryError.notAmberNetCDF(path: path, reason: "dimension '\(name)' is missing")
                }
                try check(nc_inq_dimlen(id, dim, &length), "nc_inq_dimlen(\(name))", path: path)
                return length
            }
            frameCount = try dimension("frame")
            atomCount = try dimension("atom")
            guard try dimension("spatial") == 3 else {
                throw TrajectoryError.notAmberNetCDF(path: path, reason: "dimension 'spatial' is not 3")
            }
            func variable(_ name: String) -> Int32? {
                var v: Int32 = 0
                return nc_inq_varid(id, name, &v) == NC_NOERR ? v : nil
            }
            guard let coordinates = variable("coordinates") else {
                throw TrajectoryError.notAmberNetCDF(path: path, reason: "variable 'coordinates' is missing")
            }
            coordinatesID = coordinates
            var scale = 1.0
            if nc_get_att_double(id, coordinates, "scale_factor", &scale) != NC_NOERR { scale = 1 }
            coordinateScale = scale
            timeID = variable("time")
            cellLengthsID = variable("cell_lengths")
            cellAnglesID = variable("cell_angles")
            isPeriodic = cellLengthsID != nil && cellAnglesID != nil
            title = textAttribute(id, NC_GLOBAL, "title") ?? ""
            globalAttributes = Self.readGlobalAttributes(id)

            var frameDim: Int32 = 0
            try check(nc_inq_dimid(id, "frame", &frameDim), "nc_inq_dimid(frame)", path: path)
            var variableCount: Int32 = 0
            try check(nc_inq_nvars(id, &variableCount), "nc_inq_nvars", path: path)
            var names: [String] = []
            var ids: [String: Int32] = [:]
            for v in 0..<variableCount {
                var nameBuffer = [CChar](repeating: 0, count: Int(NC_MAX_NAME) + 1)
                var xtype: nc_type = 0, ndims: Int32 = 0
                try check(nc_inq_varname(id, v, &nameBuffer), "nc_inq_varname", path: path)
                try check(nc_inq_vartype(id, v, &xtype), "nc_inq_vartype", path: path)
                try check(nc_inq_varndims(id, v, &ndims), "nc_inq_varndims", path: path)
                guard ndims == 1, xtype != NC_CHAR, xtype != NC_STRING else { continue }
                var dims: [Int32] = [0]
                try check(nc_inq_vardimid(id, v, &dims), "nc_inq_vardimid", path: path)
                let name = String(cString: nameBuffer)
                if dims[0] == frameDim && name != "time" {
                    names.append(name)
                    ids[name] = v
                }
            }
            perFrameVariableNames = names
            variableIDs = ids
        } catch {
            nc_close(id)
            throw error
        }
    }

    deinit { nc_close(ncid) }

    private static func readGlobalAttributes(_ id: Int32) -> [String: AmberNetCDFWriter.Attribute] {
        var count: Int32 = 0
        guard nc_inq_natts(id, &count) == NC_NOERR else { return [:] }
        var result: [String: AmberNetCDFWriter.Attribute] = [:]
        for a in 0..<count {
            var nameBuffer = [CChar](repeating: 0, count: Int(NC_MAX_NAME) + 1)
            guard nc_inq_attname(id, NC_GLOBAL, a, &nameBuffer) == NC_NOERR else { continue }
            let name = String(cString: nameBuffer)
            var xtype: nc_type = 0, length = 0
            guard nc_inq_att(id, NC_GLOBAL, name, &xtype, &length) == NC_NOERR else { continue }
            switch xtype {
            case NC_CHAR:
                if let text = textAttribute(id, NC_GLOBAL, name) { result[name] = .text(text) }
            case NC_BYTE, NC_SHORT, NC_INT, NC_UBYTE, NC_USHORT, NC_UINT, NC_INT64, NC_UINT64:
                guard length >= 1 else { continue }
                var values = [Int64](repeating: 0, count: length)
                if nc_get_att_longlong(id, NC_GLOBAL, name, &values) == NC_NOERR { result[name] = .integer(Int(values[0])) }
            case NC_FLOAT, NC_DOUBLE:
                guard length >= 1 else { continue }
                var values = [Double](repeating: 0, count: length)
                if nc_get_att_double(id, NC_GLOBAL, name, &values) == NC_NOERR { result[name] = .double(values[0]) }
            default:
                continue
            }
        }
        return result
    }

    private func checkFrame(_ frame: Int) throws {
        guard (0..<frameCount).contains(frame) else {
            throw TrajectoryError.invalidArgument("frame \(frame) out of range 0..<\(frameCount) in '\(path)'")
        }
    }

    /// Coordinates of one frame in Å, flat [atom][3].
    public func coordinates(frame: Int) throws -> [Double] {
        try checkFrame(frame)
        return try coordinates(frames: frame..<(frame + 1))
    }

    /// Coordinates of a range of frames in Å, flat [frame][atom][3].
    public func coordinates(frames: Range<Int>) throws -> [Double] {
        guard frames.lowerBound >= 0, frames.upperBound <= frameCount else {
            throw TrajectoryError.invalidArgument("frames \(frames) out of range 0..<\(frameCount) in '\(path)'")
        }
        var out = [Double](repeating: 0, count: frames.count * atomCount * 3)
        if frames.isEmpty { return out }
        try check(nc_get_vara_double(ncid, coordinatesID, [frames.lowerBound, 0, 0], [frames.count, atomCount, 3], &out),
                  "nc_get_vara_double(coordinates)", path: path)
        if coordinateScale != 1 { for i in out.indices { out[i] *= coordinateScale } }
        return out
    }

    /// All frames' coordinates in Å, flat [frame][atom][3].
    public func allCoordinates() throws -> [Double] { try coordinates(frames: 0..<frameCount) }

    /// The `time` of every frame in ps (empty if the file has no `time` variable).
    public func times() throws -> [Double] {
        guard let timeID else { return [] }
        return try readFrameVector(timeID, name: "time")
    }

    /// The values of a per-frame variable (e.g. "energy"), one per frame.
    /// - Throws: `.invalidArgument` if the file has no such variable.
    public func values(of name: String) throws -> [Double] {
        guard let id = variableIDs[name] else {
            throw TrajectoryError.invalidArgument(
                "'\(path)' has no per-frame variable '\(name)'; it has \(perFrameVariableNames)")
        }
        return try readFrameVector(id, name: name)
    }

    private func readFrameVector(_ id: Int32, name: String) throws -> [Double] {
        var out = [Double](repeating: 0, count: frameCount)
        if frameCount == 0 { return out }
        try check(nc_get_vara_double(ncid, id, [0], [frameCount], &out), "nc_get_vara_double(\(name))", path: path)
        return out
    }

    /// The periodic cell of `frame`, or nil if the file is not periodic.
    public func cell(frame: Int) throws -> UnitCell? {
        guard let cellLengthsID, let cellAnglesID else { return nil }
        try checkFrame(frame)
        var lengths = [Double](repeating: 0, count: 3), angles = [Double](repeating: 0, count: 3)
        try check(nc_get_vara_double(ncid, cellLengthsID, [frame, 0], [1, 3], &lengths),
                  "nc_get_vara_double(cell_lengths)", path: path)
        try check(nc_get_vara_double(ncid, cellAnglesID, [frame, 0], [1, 3], &angles),
                  "nc_get_vara_double(cell_angles)", path: path)
        return UnitCell(lengths: SIMD3(lengths[0], lengths[1], lengths[2]),
                        angles: SIMD3(angles[0], angles[1], angles[2]))
    }
}
