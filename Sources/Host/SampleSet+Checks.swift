import Foundation
import PluginHost
import Trajectory

extension SampleSet {
    /// Refuses a NetCDF trajectory that does not belong to `system`, or that is cut short:
    /// - a periodic cell where the plugin has none, none where it has one, or edges that differ
    ///   from the plugin's box (relative 1e-5, Å);
    /// - non-zero z for a 2-D plugin;
    /// - frames that hold no data: all coordinates exactly zero (what netCDF returns for records
    ///   past the end of a truncated file) or the netCDF float fill value (records never written).
    /// - Parameters:
    ///   - coordinates: every frame, Å, [frame][atom][3].
    ///   - unit: Å per plugin length unit of the file (`lengthUnit(of:system:)`).
    /// - Throws: `FailureMessage` naming the file, what it holds and what the plugin expects.
    static func checkCompatible(_ reader: AmberNetCDFReader, coordinates: [Double], system: EnergySystem,
                                unit: Double) throws {
        let path = reader.path, n = reader.atomCount, frames = reader.frameCount
        let name = "'\(system.plugin.name)'\(system.parameters.isEmpty ? "" : " (\(system.parameters))")"
        func edges(_ values: [Double]) -> String { values.map { String(format: "%.6g", $0) }.joined(separator: " × ") + " Å" }
        if frames > 0 {
            let cell = try reader.cell(frame: 0)
            switch (cell, system.box) {
            case let (cell?, nil):
                throw FailureMessage("\(path) is periodic (cell \(edges([cell.lengths.x, cell.lengths.y, cell.lengths.z]))) but plugin \(name) is a free (non-periodic) system: give the plugin the file's box (e.g. --param box=... or density=...), or use a file made with this plugin")
            case let (nil, box?):
                throw FailureMessage("\(path) has no periodic cell but plugin \(name) has the box \(edges(box.map { $0 * unit })): use a file made with this periodic system")
            case let (cell?, box?):
                let file = [cell.lengths.x, cell.lengths.y, cell.lengths.z].prefix(box.count)
                let expected = box.map { $0 * unit }
                if zip(file, expected).contains(where: { abs($0 - $1) > 1e-5 * max(abs($1), 1e-12) }) {
                    throw FailureMessage("\(path): its cell \(edges(Array(file))) differs from the box of plugin \(name), \(edges(expected)): give the plugin the file's box (or density), or use a file made with these parameters")
                }
            case (nil, nil): break
            }
        }
        let perFrame = n * 3
        if system.dimension == 2 {
            for f in 0..<frames {
                for i in 0..<n where coordinates[f * perFrame + i * 3 + 2] != 0 {
                    throw FailureMessage("\(path): frame \(f) has z ≠ 0 (3-D coordinates), but plugin \(name) is 2-D: use a file made with a 2-D system")
                }
            }
        }
        var empty: [Int] = []
        for f in 0..<frames {
            let frame = coordinates[(f * perFrame)..<((f + 1) * perFrame)]
            if n > 1 && frame.allSatisfy({ $0 == 0 }) || frame.contains(where: { abs($0) >= 9.9e36 }) { empty.append(f) }
        }
        guard let first = empty.first else { return }
        if empty == Array(first..<frames) {
            throw FailureMessage("\(path) is truncated: its header lists \(frames) frames, but frames \(first)..<\(frames) hold no data (all zero or never written); only the first \(first) frames are complete (an interrupted copy or a full disk?)")
        }
        throw FailureMessage("\(path): \(empty.count) frame(s) hold no data (all coordinates zero or the netCDF fill value), the first at frame \(first) of \(frames): the file is damaged")
    }
}
