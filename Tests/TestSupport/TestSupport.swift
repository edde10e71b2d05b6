import Foundation
import XCTest

/// Where things are when tests run: the build folder holding the plugins and
/// the `ensemble` binary, the repository root, and the optional shared
/// reference data (../shared/reference), which a fresh clone may lack.
public enum TestPaths {
    /// Repository root, derived from this source file's location.
    public static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The SwiftPM build folder of the running test bundle (…/.build/<triple>/<config>).
    public static let buildDirectory: URL = {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        // The test binary lives inside <config>/ensemblePackageTests.xctest on Linux.
        if dir.pathExtension == "xctest" { dir = dir.deletingLastPathComponent() }
        return dir
    }()

    /// Path of a shipped plugin built by `swift build` (libNAME.so).
    public static func plugin(_ product: String) -> URL {
        buildDirectory.appendingPathComponent("lib\(product).so")
    }

    /// The `ensemble` executable.
    public static var ensembleExecutable: URL { buildDirectory.appendingPathComponent("ensemble") }

    /// ../shared/reference beside the repository, or nil (tests skip with a notice).
    public static var sharedReference: URL? {
        if let env = ProcessInfo.processInfo.environment["ENSEMBLE_REFERENCE"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        let url = repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/reference")
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }

    /// A fresh temporary directory, removed by the caller if wanted.
    public static func temporaryDirectory(_ label: String = "ensemble-test") -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Skip (with a printed notice) unless a built product exists.
public func requireBuilt(_ url: URL, file: StaticString = #filePath, line: UInt = #line) throws {
    if !FileManager.default.fileExists(atPath: url.path) {
        throw XCTSkip("\(url.lastPathComponent) is not built: run `swift build` (or `make test`) first")
    }
}

/// Result of running a child process.
public struct ProcessResult {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Run an executable with arguments, capturing stdout and stderr.
@discardableResult
public func runProcess(_ executable: String, _ arguments: [String],
                       environment: [String: String]? = nil,
                       currentDirectory: URL? = nil) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    if let currentDirectory { process.currentDirectoryURL = currentDirectory }
    let outPipe = Pipe(), errPipe = Pipe()
    process.standardOutput = outPipe
    process.standardError = errPipe
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Read both pipes concurrently so a chatty child never blocks.
    final class Box: @unchecked Sendable { var data = Data() }
    let out = Box()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async { out.data = outPipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    let errData = errPipe.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    let outData = out.data
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus,
                         stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}

/// The test virtual environment's Python (made by `make test` in .venv), or nil.
public enum PythonTools {
    public static var python: String? {
        let venv = TestPaths.repositoryRoot.appendingPathComponent(".venv/bin/python").path
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : nil
    }

    /// Python with `modules` importable, or an XCTSkip naming what is missing.
    public static func require(_ modules: [String]) throws -> String {
        guard let python else {
            throw XCTSkip("no .venv/bin/python: run `make test` to create the test venv")
        }
        let check = try runProcess(python, ["-c", modules.map { "import \($0)" }.joined(separator: "; ")])
        if check.status != 0 {
            throw XCTSkip("python modules \(modules) missing in .venv: \(check.stderr.suffix(300))")
        }
        return python
    }

    /// Run a Python script given as text; fails the test on a non-zero exit.
    public static func run(_ python: String, script: String, arguments: [String] = []) throws -> String {
        let result = try runProcess(python, ["-c", script] + arguments)
        if result.status != 0 {
            XCTFail("python failed (\(result.status)):\n\(result.stderr)")
        }
        return result.stdout
    }
}

/// Assert |a − b| ≤ absolute + relative·max(|a|, |b|).
public func assertClose(_ a: Double, _ b: Double, relative: Double = 0, absolute: Double = 0,
                        _ message: @autoclosure () -> String = "",
                        file: StaticString = #filePath, line: UInt = #line) {
    let tolerance = absolute + relative * max(abs(a), abs(b))
    if !(abs(a - b) <= tolerance) {
        XCTFail("\(a) vs \(b): |Δ| = \(abs(a - b)) > \(tolerance) \(message())", file: file, line: line)
    }
}

/// Central finite-difference gradient of a scalar function: (f(x+h e_i) − f(x−h e_i)) / 2h.
public func finiteDifferenceGradient(_ x: [Double], step h: Double = 1e-6,
                                     _ f: ([Double]) throws -> Double) rethrows -> [Double] {
    var g = [Double](repeating: 0, count: x.count)
    var y = x
    for i in x.indices {
        y[i] = x[i] + h
        let plus = try f(y)
        y[i] = x[i] - h
        let minus = try f(y)
        y[i] = x[i]
        g[i] = (plus - minus) / (2 * h)
    }
    return g
}

/// Deterministic SplitMix64 for test inputs (independent of library generators).
public struct TestRandom {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }
    /// Standard normal (Box–Muller).
    public mutating func normal() -> Double {
        let u1 = max(uniform(), 1e-300), u2 = uniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
}

/// Compile a C plugin source with the system C compiler into `directory/lib<name>.so`.
/// - Parameters:
///   - source: path of the .c file.
///   - defines: extra -D flags (without the -D).
public func compileCPlugin(source: URL, name: String, in directory: URL, defines: [String] = []) throws -> URL {
    let output = directory.appendingPathComponent("lib\(name).so")
    let include = TestPaths.repositoryRoot.appendingPathComponent("Sources/EnsemblePluginABI/include").path
    let result = try runProcess("/usr/bin/env", ["cc", "-O2", "-shared", "-fPIC", "-Wall", "-I", include]
        + defines.map { "-D\($0)" } + [source.path, "-o", output.path])
    if result.status != 0 {
        XCTFail("cc failed for \(source.lastPathComponent): \(result.stderr)")
    }
    return output
}

/// The example C plugin of docs/examples/harmonic.c, compiled into a temporary folder.
public func buildHarmonicPlugin(in directory: URL = TestPaths.temporaryDirectory("harmonic")) throws -> URL {
    try compileCPlugin(source: TestPaths.repositoryRoot.appendingPathComponent("docs/examples/harmonic.c"),
                       name: "harmonic", in: directory)
}
