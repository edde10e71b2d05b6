import Foundation

/// Everything that can go wrong reading or writing a file in this module.
///
/// Each case carries the path so a message read in a log says which file.
public enum TrajectoryError: Error, CustomStringConvertible, Equatable {
    /// A netCDF library call failed: the operation, the `nc_strerror` text and the code.
    case netCDF(path: String, operation: String, message: String, code: Int32)
    /// The file exists and `overwrite` was false.
    case fileExists(path: String)
    /// The file cannot be created or opened (missing directory, no permission).
    case notWritable(path: String, reason: String)
    /// The file opened but is not what this reader understands.
    case notAmberNetCDF(path: String, reason: String)
    /// A caller passed data of the wrong shape or a value out of range.
    case invalidArgument(String)
    /// A .npy file that this reader cannot decode.
    case invalidNumPy(path: String, reason: String)

    public var description: String {
        switch self {
        case let .netCDF(path, operation, message, code):
            return "netCDF error in \(operation) for '\(path)': \(message) (code \(code))"
        case let .fileExists(path):
            return "'\(path)' already exists; pass overwrite: true (or --overwrite) to replace it"
        case let .notWritable(path, reason):
            return "cannot write '\(path)': \(reason)"
        case let .notAmberNetCDF(path, reason):
            return "'\(path)' is not an AMBER NetCDF trajectory: \(reason)"
        case let .invalidArgument(message):
            return message
        case let .invalidNumPy(path, reason):
            return "'\(path)' is not a .npy file this reader supports: \(reason)"
        }
    }
}

extension TrajectoryError: LocalizedError {
    public var errorDescription: String? { description }
}
