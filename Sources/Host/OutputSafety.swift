import ArgumentParser
import Foundation

/// One rule for every file a command writes (issue 23, docs/safety.md), checked in `validate()`,
/// before any work starts:
/// - an output that already exists is replaced only with `--overwrite`;
/// - an output is never one of the command's inputs, nor another of its outputs, even with
///   `--overwrite` (`evaluate a.nc --json a.nc` used to destroy the trajectory);
/// - an output is not a directory, and its directory exists and is writable.
///
/// Replacing is done so that a failed run leaves the old file as it was: JSON, SVG and PDB files
/// are written whole to a temporary file and renamed into place, trajectories are written to a
/// temporary sibling (`temporarySibling`) and renamed when they are complete.
struct OutputFiles {
    /// (what to call it in messages — the option, e.g. "--json", or a noun like "the topology" —,
    /// path, where it comes from, e.g. "written beside --out").
    var outputs: [(name: String, path: String, note: String?)] = []
    var inputs: [(name: String, path: String)] = []

    /// Adds an output when `path` is given.
    mutating func output(_ name: String, _ path: String?, note: String? = nil) {
        if let path { outputs.append((name, path, note)) }
    }

    /// Adds an input when `path` is given.
    mutating func input(_ name: String, _ path: String?) {
        if let path { inputs.append((name, path)) }
    }

    /// - Throws: `ValidationError` naming the option, the path and what to do.
    func check(overwrite: Bool) throws {
        for (index, output) in outputs.enumerated() {
            let label = "\(output.name) \(output.path)\(output.note.map { " (\($0))" } ?? "")"
            if let input = inputs.first(where: { sameFile($0.path, output.path) }) {
                throw ValidationError("\(label) is the same file as \(input.name) \(input.path), an input of this command: an output never replaces an input, even with --overwrite; write it elsewhere")
            }
            if let other = outputs[..<index].first(where: { sameFile($0.path, output.path) }) {
                throw ValidationError("\(label) is the same file as \(other.name) \(other.path)\(other.note.map { " (\($0))" } ?? ""): give each output its own file")
            }
            try checkOutputPath(output.path, overwrite: overwrite, option: output.name, note: output.note)
        }
    }
}

/// Check that `path` can be created: its directory exists and is writable, it is not a
/// directory, and it does not exist unless `overwrite`.
func checkOutputPath(_ path: String, overwrite: Bool, option: String = "--out", note: String? = nil) throws {
    let url = URL(fileURLWithPath: path)
    let label = "\(option) \(path)" + (note.map { " (\($0))" } ?? "")
    let directory = url.deletingLastPathComponent().path
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw ValidationError("\(label): directory '\(directory)' does not exist")
    }
    guard FileManager.default.isWritableFile(atPath: directory) else {
        throw ValidationError("\(label): directory '\(directory)' is not writable")
    }
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
        if isDirectory.boolValue {
            throw ValidationError("\(label) is a directory: give the path of a file (in it, or elsewhere)")
        }
        if !overwrite {
            throw ValidationError("\(label) already exists; pass --overwrite to replace it")
        }
    }
}

/// Whether two paths name the same file: the same path once the directory's symbolic links
/// are resolved, or (when both exist) the same device and inode (hard links, `./a` and `a`).
func sameFile(_ a: String, _ b: String) -> Bool {
    func canonical(_ path: String) -> String {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        let directory = url.deletingLastPathComponent().resolvingSymlinksInPath()
        return directory.appendingPathComponent(url.lastPathComponent).path
    }
    if canonical(a) == canonical(b) { return true }
    var sa = stat(), sb = stat()
    guard stat(a, &sa) == 0, stat(b, &sb) == 0 else { return false }
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
}

/// The topology written beside a trajectory: the same path with .pdb.
func topologyPath(of trajectory: String) -> String {
    URL(fileURLWithPath: trajectory).deletingPathExtension().appendingPathExtension("pdb").path
}

/// Where a file that replaces `path` is written until it is complete: a sibling (same
/// directory, so the final `rename` is atomic) named after it and this process.
func temporarySibling(of path: String) -> String {
    let url = URL(fileURLWithPath: path)
    return url.deletingLastPathComponent()
        .appendingPathComponent("\(url.lastPathComponent).partial-\(getpid())").path
}

/// Sizes checked against the machine's memory before anything is allocated or written
/// (issue 23: `--chains 1000000000` used to end in "failed to allocate 64000000032 bytes" and a
/// backtrace, after the output file was created).
enum MemoryLimit {
    /// Physical memory of this machine, bytes.
    static var physicalBytes: Double { Double(ProcessInfo.processInfo.physicalMemory) }

    /// Throws when `count` units of `bytesPerUnit` each (a lower estimate of what the run keeps
    /// in memory) exceed the physical memory; the message names the option, the estimate, the
    /// memory and the largest value that fits.
    /// - Parameters:
    ///   - option: e.g. "--chains".
    ///   - count: the option's value.
    ///   - bytesPerUnit: bytes each unit (chain, batch element) needs.
    ///   - detail: how the estimate is made, e.g. "8 coordinates × 8 bytes × 10 arrays".
    static func check(_ option: String, _ count: Int, bytesPerUnit: Double, detail: String,
                      physical: Double = physicalBytes) throws {
        let needed = Double(count) * bytesPerUnit
        guard needed > physical else { return }
        let largest = max(0, Int((physical / bytesPerUnit).rounded(.down)))
        throw FailureMessage("\(option) \(count) needs about \(gigabytes(needed)) of memory (\(count) × \(detail)), more than this machine's \(gigabytes(physical)): the largest \(option) that fits is about \(largest)")
    }

    static func gigabytes(_ bytes: Double) -> String {
        bytes >= 1e9 ? String(format: "%.3g GB", bytes / 1e9) : String(format: "%.3g MB", bytes / 1e6)
    }
}
