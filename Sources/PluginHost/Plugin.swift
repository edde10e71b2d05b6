import EnsemblePluginABI
import Foundation

/// Why a plugin file could not be used. Every case names the file.
public enum PluginError: Error, CustomStringConvertible, Equatable {
    case notLoadable(path: String, reason: String)
    case missingEntry(path: String, reason: String)
    case nullTable(path: String)
    case abiMismatch(path: String, plugin: UInt32, host: UInt32)
    case structTooSmall(path: String, size: UInt32, required: Int)
    case invalidName(path: String)
    case missingFunction(path: String, function: String)
    case duplicateName(path: String, name: String, firstPath: String)
    case unknownPlugin(name: String, known: [String])
    case createFailed(plugin: String, message: String)
    case invalidSystem(plugin: String, message: String)

    public var description: String {
        switch self {
        case let .notLoadable(path, reason): return "\(path): not a loadable shared library: \(reason)"
        case let .missingEntry(path, reason):
            return "\(path): no symbol '\(ENSEMBLE_PLUGIN_ENTRY_SYMBOL)' (\(reason))"
        case let .nullTable(path): return "\(path): ensemble_plugin_entry() returned NULL"
        case let .abiMismatch(path, plugin, host):
            return "\(path): plugin ABI version \(plugin) but this host speaks version \(host)"
        case let .structTooSmall(path, size, required):
            return "\(path): plugin table is \(size) bytes, ABI version 1 needs at least \(required)"
        case let .invalidName(path): return "\(path): plugin name is NULL or empty"
        case let .missingFunction(path, function): return "\(path): required function '\(function)' is NULL"
        case let .duplicateName(path, name, first):
            return "\(path): a plugin named '\(name)' was already loaded from \(first)"
        case let .unknownPlugin(name, known):
            let list = known.isEmpty ? "none found: use --plugin-dir or ENSEMBLE_PLUGIN_PATH" : known.joined(separator: ", ")
            return "unknown plugin '\(name)' (known: \(list))"
        case let .createFailed(plugin, message):  // a plugin that names itself is not named twice
            return message.hasPrefix("\(plugin): ") ? message : "\(plugin): \(message)"
        case let .invalidSystem(plugin, message): return "\(plugin): \(message)"
        }
    }
}

extension PluginError: LocalizedError {
    public var errorDescription: String? { description }
}

/// One loaded plugin library: its metadata and a factory of energy systems.
///
/// The library is never `dlclose`d: Swift runtime metadata inside a plugin must
/// outlive every object the host made from it.
public final class Plugin: @unchecked Sendable {
    public let path: String
    public let name: String
    public let version: String
    public let summary: String
    public let parametersHelp: String
    let table: UnsafePointer<ensemble_plugin>

    /// Size of the version-1.0 table: every field up to `initial_positions` (later minor
    /// revisions append fields, which the host reads only when `struct_size` covers them).
    public static let minimumTableSize = MemoryLayout<ensemble_plugin>.offset(of: \ensemble_plugin.bonds)!
    /// The table's `struct_size` (how many fields the plugin knows about).
    let tableSize: Int

    init(path: String, table: UnsafePointer<ensemble_plugin>) throws {
        let t = table.pointee
        guard t.abi_version == UInt32(ENSEMBLE_PLUGIN_ABI_VERSION) else {
            throw PluginError.abiMismatch(path: path, plugin: t.abi_version, host: UInt32(ENSEMBLE_PLUGIN_ABI_VERSION))
        }
        guard Int(t.struct_size) >= Plugin.minimumTableSize else {
            throw PluginError.structTooSmall(path: path, size: t.struct_size, required: Plugin.minimumTableSize)
        }
        guard let namePointer = t.name, namePointer.pointee != 0 else { throw PluginError.invalidName(path: path) }
        let required: [(String, Bool)] = [
            ("create", t.create != nil), ("destroy", t.destroy != nil),
            ("particle_count", t.particle_count != nil), ("dimension", t.dimension != nil),
            ("evaluate", t.evaluate != nil),
        ]
        if let missing = required.first(where: { !$0.1 }) {
            throw PluginError.missingFunction(path: path, function: missing.0)
        }
        self.path = path
        self.table = table
        self.tableSize = Int(t.struct_size)
        self.name = String(cString: namePointer)
        self.version = t.version.map { String(cString: $0) } ?? "?"
        self.summary = t.description.map { String(cString: $0) } ?? ""
        self.parametersHelp = t.parameters_help.map { String(cString: $0) } ?? ""
    }

    /// Create an energy system from `key=value` pairs separated by ';' or whitespace.
    /// - Throws: `PluginError.createFailed` with the plugin's own message.
    public func makeSystem(parameters: String = "") throws -> EnergySystem {
        var error = [CChar](repeating: 0, count: 2048)
        guard let system = table.pointee.create(parameters, &error, error.count) else {
            let message = String(cString: error)
            throw PluginError.createFailed(plugin: name, message: message.isEmpty ? "create failed" : message)
        }
        return try EnergySystem(plugin: self, handle: system, parameters: parameters)
    }
}

/// Finds and loads plugin libraries.
public enum PluginLoader {
    /// Load one library through `dlopen(RTLD_NOW | RTLD_LOCAL)` and validate its table.
    public static func load(path: String) throws -> Plugin {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw PluginError.notLoadable(path: path, reason: dlerrorText())
        }
        guard let symbol = dlsym(handle, ENSEMBLE_PLUGIN_ENTRY_SYMBOL) else {
            throw PluginError.missingEntry(path: path, reason: dlerrorText())
        }
        let entry = unsafeBitCast(symbol, to: ensemble_plugin_entry_fn.self)
        guard let table = entry() else { throw PluginError.nullTable(path: path) }
        return try Plugin(path: path, table: table)
    }

    /// Directories searched, in order: explicit ones, `$ENSEMBLE_PLUGIN_PATH`
    /// (colon-separated), then the directory of the running executable.
    public static func searchDirectories(explicit: [String],
                                         environment: [String: String] = ProcessInfo.processInfo.environment)
        -> [String]
    {
        var directories = explicit
        if let path = environment["ENSEMBLE_PLUGIN_PATH"] {
            directories += path.split(separator: ":").map(String.init).filter { !$0.isEmpty }
        }
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        directories.append(exe.path)
        var seen = Set<String>()
        return directories.filter { seen.insert(URL(fileURLWithPath: $0).standardizedFileURL.path).inserted }
    }

    /// The result of scanning directories: plugins that loaded, and every file that failed, with why.
    public struct Discovery {
        public var plugins: [Plugin] = []
        public var failures: [(path: String, error: PluginError)] = []

        /// The plugin called `name`, or `PluginError.unknownPlugin` listing the known ones.
        public func plugin(named name: String) throws -> Plugin {
            if let plugin = plugins.first(where: { $0.name == name }) { return plugin }
            throw PluginError.unknownPlugin(name: name, known: plugins.map(\.name))
        }
    }

    /// Load every `*.so` in `directories`. A failing file is recorded, never fatal;
    /// a second plugin with an already-loaded name is a failure too.
    public static func discover(in directories: [String]) -> Discovery {
        var discovery = Discovery()
        var loadedPaths = Set<String>()
        for directory in directories {
            guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else { continue }
            for file in entries.sorted() where file.hasSuffix(".so") {
                let path = URL(fileURLWithPath: directory).appendingPathComponent(file).path
                let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
                guard loadedPaths.insert(real).inserted else { continue }
                do {
                    let plugin = try load(path: path)
                    if let first = discovery.plugins.first(where: { $0.name == plugin.name }) {
                        discovery.failures.append((path, .duplicateName(path: path, name: plugin.name, firstPath: first.path)))
                    } else {
                        discovery.plugins.append(plugin)
                    }
                } catch let error as PluginError {
                    discovery.failures.append((path, error))
                } catch {
                    discovery.failures.append((path, .notLoadable(path: path, reason: "\(error)")))
                }
            }
        }
        return discovery
    }

    private static func dlerrorText() -> String {
        dlerror().map { String(cString: $0) } ?? "unknown dlopen error"
    }
}
