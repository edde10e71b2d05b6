import CNetCDF
import Foundation

/// Writes an AMBER NetCDF 1.0 trajectory (NetCDF-3, 64-bit offset), the format
/// read by VMD, cpptraj, MDAnalysis and mdtraj.
///
/// Layout (see ../shared/RECIPES.md): global `Conventions` = "AMBER",
/// `ConventionVersion` = "1.0", `program`, `programVersion`, `title`; dimensions
/// `frame` (unlimited), `spatial` = 3, `atom`; variables `spatial` = "xyz",
/// `coordinates` float [frame, atom, spatial] in Å, `time` float [frame] in ps,
/// and when periodic `cell_spatial` = "abc", `cell_angular` = "alpha","beta ","gamma",
/// `cell_lengths` double [frame, 3] in Å, `cell_angles` double [frame, 3] in degrees.
/// Each name in `perFrameVariables` becomes a double [frame] variable (readers that
/// do not know it ignore it). `globalAttributes` adds global attributes (text, integer or
/// double), e.g. the provenance `ensemble` records (`ensemble_chains`, `ensemble_plugin`, …);
/// AMBER readers ignore attributes they do not know.
///
/// The header's record count is flushed (`nc_sync`) every `syncEvery` frames and on
/// `close()`, so a process killed at any moment leaves a file that readers open
/// with every frame written before the last sync. `deinit` closes a writer that
/// was not closed explicitly.
///
/// Two-dimensional systems: the caller pads z with 0; the file always holds three
/// components per atom.
///
/// ```swift
/// let writer = try AmberNetCDFWriter(path: "run.nc", atomCount: 13, periodic: false,
///                                    perFrameVariables: ["energy"])
/// try writer.append(coordinates: x, time: 0.5, values: ["energy": -42.1])
/// try writer.close()
/// ```
public final class AmberNetCDFWriter {
    /// Names of the fixed variables; per-frame variables may not reuse them.
    public static let reservedNames: Set<String> = [
        "spatial", "coordinates", "time", "cell_spatial", "cell_angular", "cell_lengths",
        "cell_angles", "velocities", "forces", "label", "frame", "atom",
    ]

    /// The value of an extra global attribute.
    public enum Attribute: Equatable, Sendable {
        case text(String)
        case integer(Int)
        case double(Double)
    }

    /// Global attributes the writer sets itself; `globalAttributes` may not reuse them.
    public static let reservedAttributes: Set<String> = [
        "title", "application", "program", "programVersion", "Conventions", "ConventionVersion",
    ]

    public let path: String
    public let atomCount: Int
    public let periodic: Bool
    public let perFrameVariables: [String]
    public let syncEvery: Int
    /// Frames appended so far.
    public private(set) var frameCount = 0
    /// Frames guaranteed to be on disk (the count at the last sync).
    public private(set) var syncedFrameCount = 0

    private var ncid: Int32 = -1
    private var isOpen = false
    private var coordinatesID: Int32 = 0
    private var timeID: Int32 = 0
    private var cellLengthsID: Int32 = 0
    private var cellAnglesID: Int32 = 0
    private var valueIDs: [Int32] = []
    private var frameBuffer: [Float]

    /// Create the file and write its header.
    ///
    /// - Parameters:
    ///   - path: file to create.
    ///   - atomCount: atoms per frame (≥ 1).
    ///   - periodic: whether each frame carries a cell (`append` then requires `cell`).
    ///   - perFrameVariables: names of extra Double-per-frame variables, e.g. "energy", "log_weight".
    ///   - variableUnits: optional `units` attribute per extra variable, e.g. ["energy": "kT"].
    ///   - title: global `title` attribute.
    ///   - overwrite: replace an existing file; when false an existing file is an error.
    ///   - syncEvery: frames between `nc_sync` calls (≥ 1).
    ///   - program: global `program` attribute.
    ///   - programVersion: global `programVersion` attribute.
    ///   - globalAttributes: extra global attributes (names of letters, digits and _, not reserved).
    /// - Throws: `TrajectoryError.fileExists`, `.notWritable`, `.invalidArgument`, `.netCDF`.
    public init(path: String, atomCount: Int, periodic: Bool, perFrameVariables: [String] = [],
                variableUnits: [String: String] = [:], title: String = "ensemble trajectory",
                overwrite: Bool = false, syncEvery: Int = 10,
                program: String = "ensemble", programVersion: String = "0.1",
                globalAttributes: [String: Attribute] = [:]) throws {
        guard atomCount >= 1 else { throw TrajectoryError.invalidArgument("atomCount must be ≥ 1, got \(atomCount)") }
        guard syncEvery >= 1 else { throw TrajectoryError.invalidArgument("syncEvery must be ≥ 1, got \(syncEvery)") }
        for name in perFrameVariables {
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }),
                  name.first!.isLetter || name.first! == "_" else {
                throw TrajectoryError.invalidArgument("per-frame variable name '\(name)' must be letters, digits and _")
            }
            guard !Self.reservedNames.contains(name) else {
                throw TrajectoryError.invalidArgument("per-frame variable name '\(name)' is reserved by AMBER NetCDF")
            }
        }
        for name in globalAttributes.keys {
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }),
                  name.first!.isLetter || name.first! == "_" else {
                throw TrajectoryError.invalidArgument("global attribute name '\(name)' must be letters, digits and _")
            }
            guard !Self.reservedAttributes.contains(name) else {
                throw TrajectoryError.invalidArgument("global attribute name '\(name)' is set by the writer itself")
            }
        }
        guard Set(perFrameVariables).count == perFrameVariables.count else {
            throw TrajectoryError.invalidArgument("per-frame variable names repeat: \(perFrameVariables)")
        }
        self.path = path
        self.atomCount = atomCount
        self.periodic = periodic
        self.perFrameVariables = perFrameVariables
        self.syncEvery = syncEvery
        self.frameBuffer = [Float](repeating: 0, count: atomCount * 3)

        let fileManager = FileManager.default
        if fileManager.fileExists(atPath: path) && !overwrite { throw TrajectoryError.fileExists(path: path) }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        if !fileManager.fileExists(atPath: directory, isDirectory: &isDirectory) || !isDirectory.boolValue {
            throw TrajectoryError.notWritable(path: path, reason: "directory '\(directory)' does not exist")
        }

        let mode = (overwrite ? NC_CLOBBER : NC_NOCLOBBER) | NC_64BIT_OFFSET
        var id: Int32 = -1
        let status = nc_create(path, mode, &id)
        if status == NC_EEXIST { throw TrajectoryError.fileExists(path: path) }
        if status != NC_NOERR {
            let reason = String(cString: nc_strerror(status))
            if status > 0 || status == NC_EPERM {  // positive codes are errno values (EACCES, ENOENT, …)
                throw TrajectoryError.notWritable(path: path, reason: reason)
            }
            try check(status, "nc_create", path: path)
        }
        ncid = id
        isOpen = true
        do {
            try defineHeader(title: title, program: program, programVersion: programVersion, units: variableUnits,
                             attributes: globalAttributes)
        } catch {
            nc_close(ncid)
            isOpen = false
            try? fileManager.removeItem(atPath: path)
            throw error
        }
    }

    deinit {
        if isOpen { try? close() }
    }

    private func defineHeader(title: String, program: String, programVersion: String,
                              units: [String: String], attributes: [String: Attribute]) throws {
        var frameDim: Int32 = 0, spatialDim: Int32 = 0, atomDim: Int32 = 0
        try check(nc_def_dim(ncid, "frame", NC_UNLIMITED, &frameDim), "nc_def_dim(frame)", path: path)
        try check(nc_def_dim(ncid, "spatial", 3, &spatialDim), "nc_def_dim(spatial)", path: path)
        try check(nc_def_dim(ncid, "atom", atomCount, &atomDim), "nc_def_dim(atom)", path: path)

        try putTextAttribute(ncid, NC_GLOBAL, "title", title, path: path)
        try putTextAttribute(ncid, NC_GLOBAL, "application", "ensemble", path: path)
        try putTextAttribute(ncid, NC_GLOBAL, "program", program, path: path)
        try putTextAttribute(ncid, NC_GLOBAL, "programVersion", programVersion, path: path)
        try putTextAttribute(ncid, NC_GLOBAL, "Conventions", "AMBER", path: path)
        try putTextAttribute(ncid, NC_GLOBAL, "ConventionVersion", "1.0", path: path)
        for (name, value) in attributes.sorted(by: { $0.key < $1.key }) {
            switch value {
            case .text(let text):
                try putTextAttribute(ncid, NC_GLOBAL, name, text, path: path)
            case .integer(let integer):
                guard let value = Int32(exactly: integer) else {
                    throw TrajectoryError.invalidArgument("global attribute \(name) = \(integer) does not fit a netCDF int")
                }
                var v = value
                try check(nc_put_att_int(ncid, NC_GLOBAL, name, NC_INT, 1, &v), "nc_put_att_int(\(name))", path: path)
            case .double(let double):
                var v = double
                try check(nc_put_att_double(ncid, NC_GLOBAL, name, NC_DOUBLE, 1, &v), "nc_put_att_double(\(name))", path: path)
            }
        }

        var spatialID: Int32 = 0
        try check(nc_def_var(ncid, "spatial", NC_CHAR, 1, [spatialDim], &spatialID), "nc_def_var(spatial)", path: path)
        try check(nc_def_var(ncid, "time", NC_FLOAT, 1, [frameDim], &timeID), "nc_def_var(time)", path: path)
        try putTextAttribute(ncid, timeID, "units", "picosecond", path: path)
        try check(nc_def_var(ncid, "coordinates", NC_FLOAT, 3, [frameDim, atomDim, spatialDim], &coordinatesID),
                  "nc_def_var(coordinates)", path: path)
        try putTextAttribute(ncid, coordinatesID, "units", "angstrom", path: path)

        var cellSpatialID: Int32 = 0, cellAngularID: Int32 = 0
        if periodic {
            var cellSpatialDim: Int32 = 0, labelDim: Int32 = 0, cellAngularDim: Int32 = 0
            try check(nc_def_dim(ncid, "cell_spatial", 3, &cellSpatialDim), "nc_def_dim(cell_spatial)", path: path)
            try check(nc_def_dim(ncid, "label", 5, &labelDim), "nc_def_dim(label)", path: path)
            try check(nc_def_dim(ncid, "cell_angular", 3, &cellAngularDim), "nc_def_dim(cell_angular)", path: path)
            try check(nc_def_var(ncid, "cell_spatial", NC_CHAR, 1, [cellSpatialDim], &cellSpatialID),
                      "nc_def_var(cell_spatial)", path: path)
            try check(nc_def_var(ncid, "cell_angular", NC_CHAR, 2, [cellAngularDim, labelDim], &cellAngularID),
                      "nc_def_var(cell_angular)", path: path)
            try check(nc_def_var(ncid, "cell_lengths", NC_DOUBLE, 2, [frameDim, cellSpatialDim], &cellLengthsID),
                      "nc_def_var(cell_lengths)", path: path)
            try putTextAttribute(ncid, cellLengthsID, "units", "angstrom", path: path)
            try check(nc_def_var(ncid, "cell_angles", NC_DOUBLE, 2, [frameDim, cellAngularDim], &cellAnglesID),
                      "nc_def_var(cell_angles)", path: path)
            try putTextAttribute(ncid, cellAnglesID, "units", "degree", path: path)
        }
        for name in perFrameVariables {
            var id: Int32 = 0
            try check(nc_def_var(ncid, name, NC_DOUBLE, 1, [frameDim], &id), "nc_def_var(\(name))", path: path)
            if let unit = units[name] { try putTextAttribute(ncid, id, "units", unit, path: path) }
            valueIDs.append(id)
        }
        try check(nc_enddef(ncid), "nc_enddef", path: path)

        try putText(spatialID, "xyz", count: [3])
        if periodic {
            try putText(cellSpatialID, "abc", count: [3])
            try putText(cellAngularID, "alphabeta gamma", count: [3, 5])
        }
        try sync()
    }

    private func putText(_ varid: Int32, _ text: String, count: [Int]) throws {
        let bytes = Array(text.utf8).map { CChar(bitPattern: $0) }
        let start = [Int](repeating: 0, count: count.count)
        try check(nc_put_vara_text(ncid, varid, start, count, bytes), "nc_put_vara_text", path: path)
    }

    /// Append one frame.
    ///
    /// - Parameters:
    ///   - coordinates: positions in Å, flat [atom][3] (x0, y0, z0, x1, …), `3·atomCount` values;
    ///     stored as Float.
    ///   - time: simulation time in ps (or the sample index for samplers without time).
    ///   - cell: the periodic cell; required when the writer is periodic, forbidden otherwise.
    ///   - values: one Double per name in `perFrameVariables` (all of them, no others).
    /// - Throws: `TrajectoryError.invalidArgument` for wrong shapes or names, `.netCDF` on I/O errors.
    public func append<T: BinaryFloatingPoint>(coordinates: [T], time: Double, cell: UnitCell? = nil,
                                                values: [String: Double] = [:]) throws {
        guard isOpen else { throw TrajectoryError.invalidArgument("append to closed trajectory '\(path)'") }
        guard coordinates.count == 3 * atomCount else {
            throw TrajectoryError.invalidArgument(
                "frame has \(coordinates.count) coordinates, expected 3 × \(atomCount) atoms = \(3 * atomCount) ('\(path)')")
        }
        if periodic && cell == nil {
            throw TrajectoryError.invalidArgument("periodic trajectory '\(path)' needs a cell for every frame")
        }
        if !periodic && cell != nil {
            throw TrajectoryError.invalidArgument("trajectory '\(path)' was created non-periodic; pass no cell")
        }
        for key in values.keys where !perFrameVariables.contains(key) {
            throw TrajectoryError.invalidArgument("unknown per-frame variable '\(key)'; declared: \(perFrameVariables)")
        }
        let perFrame = try perFrameVariables.map { name -> Double in
            guard let value = values[name] else {
                throw TrajectoryError.invalidArgument("missing per-frame variable '\(name)' for '\(path)'")
            }
            return value
        }
        for i in 0..<coordinates.count { frameBuffer[i] = Float(coordinates[i]) }

        let frame = frameCount
        try check(nc_put_vara_float(ncid, coordinatesID, [frame, 0, 0], [1, atomCount, 3], frameBuffer),
                  "nc_put_vara_float(coordinates, frame \(frame))", path: path)
        var t = Float(time)
        try check(nc_put_vara_float(ncid, timeID, [frame], [1], &t), "nc_put_vara_float(time)", path: path)
        if let cell {
            let lengths = [cell.lengths.x, cell.lengths.y, cell.lengths.z]
            let angles = [cell.angles.x, cell.angles.y, cell.angles.z]
            try check(nc_put_vara_double(ncid, cellLengthsID, [frame, 0], [1, 3], lengths),
                      "nc_put_vara_double(cell_lengths)", path: path)
            try check(nc_put_vara_double(ncid, cellAnglesID, [frame, 0], [1, 3], angles),
                      "nc_put_vara_double(cell_angles)", path: path)
        }
        for (id, value) in zip(valueIDs, perFrame) {
            var v = value
            try check(nc_put_vara_double(ncid, id, [frame], [1], &v), "nc_put_vara_double", path: path)
        }
        frameCount += 1
        if frameCount % syncEvery == 0 { try sync() }
    }

    /// Flush data and the header's frame count to disk (`nc_sync`).
    public func sync() throws {
        guard isOpen else { return }
        try check(nc_sync(ncid), "nc_sync", path: path)
        syncedFrameCount = frameCount
    }

    /// Sync and close the file. Further appends throw; closing twice does nothing.
    public func close() throws {
        guard isOpen else { return }
        isOpen = false
        let syncStatus = nc_sync(ncid)
        let closeStatus = nc_close(ncid)
        try check(syncStatus, "nc_sync", path: path)
        try check(closeStatus, "nc_close", path: path)
        syncedFrameCount = frameCount
    }
}
