import CNetCDF
import Foundation

/// Turn a netCDF status code into a thrown `TrajectoryError.netCDF` carrying
/// `nc_strerror` text, the failing operation and the file path.
@inline(__always)
func check(_ status: Int32, _ operation: @autoclosure () -> String, path: String) throws {
    if status != NC_NOERR {
        throw TrajectoryError.netCDF(path: path, operation: operation(),
                                     message: String(cString: nc_strerror(status)), code: status)
    }
}

/// A text attribute (`nc_put_att_text`), written without a trailing NUL as the AMBER readers expect.
func putTextAttribute(_ ncid: Int32, _ varid: Int32, _ name: String, _ value: String, path: String) throws {
    let bytes = Array(value.utf8).map { CChar(bitPattern: $0) }
    try check(nc_put_att_text(ncid, varid, name, bytes.count, bytes), "nc_put_att_text(\(name))", path: path)
}

/// A text attribute, or nil when it does not exist.
func textAttribute(_ ncid: Int32, _ varid: Int32, _ name: String) -> String? {
    var length = 0
    guard nc_inq_attlen(ncid, varid, name, &length) == NC_NOERR else { return nil }
    var xtype: nc_type = 0
    guard nc_inq_atttype(ncid, varid, name, &xtype) == NC_NOERR, xtype == NC_CHAR else { return nil }
    var buffer = [CChar](repeating: 0, count: length + 1)
    guard nc_get_att_text(ncid, varid, name, &buffer) == NC_NOERR else { return nil }
    let bytes = buffer.prefix(length).map { UInt8(bitPattern: $0) }
    // Some writers include a trailing NUL inside the attribute length.
    return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: "\0"))
}
