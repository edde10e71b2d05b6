import ArgumentParser
import Distributed
import Foundation
import PluginHost

/// Where plugins are looked for, and how many threads evaluate energies.
struct PluginSearchOptions: ParsableArguments {
    @Option(name: .customLong("plugin-dir"), help: ArgumentHelp(
        "A directory of plugin libraries (repeatable); searched before $ENSEMBLE_PLUGIN_PATH and the executable's directory.",
        valueName: "dir"))
    var pluginDirectories: [String] = []

    func validate() throws {
        for directory in pluginDirectories {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ValidationError("--plugin-dir \(directory): no such directory (give a directory that holds plugin .so files)")
            }
        }
    }

    func discover() -> PluginLoader.Discovery {
        PluginLoader.discover(in: PluginLoader.searchDirectories(explicit: pluginDirectories))
    }
}

extension PluginLoader.Discovery {
    /// The plugin called `name`; when other files carry the same name, a warning on stderr says
    /// which file wins (the first in search order) and which are ignored.
    func pluginWarningOfShadows(named name: String) throws -> Plugin {
        let plugin = try plugin(named: name)
        for case let (_, .duplicateName(path, duplicate, first)) in failures where duplicate == name && Communicator.world.isRoot {
            FileHandle.standardError.write(Data(
                "warning: two plugins are named '\(name)': using \(first) (found first: --plugin-dir, then $ENSEMBLE_PLUGIN_PATH, then the executable's directory), ignoring \(path)\n".utf8))
        }
        return plugin
    }
}

/// Which plugin, with which parameters.
struct SystemOptions: ParsableArguments {
    @OptionGroup var search: PluginSearchOptions

    @Option(help: ArgumentHelp("The energy plugin's name (see `ensemble plugins`).", valueName: "name"))
    var plugin: String

    @Option(name: .customLong("param"), help: ArgumentHelp(
        "A plugin parameter KEY=VALUE (repeatable), e.g. --param preset=lj13.", valueName: "key=value"))
    var parameters: [String] = []

    @Option(name: .customLong("threads"), help: ArgumentHelp(
        "Threads that evaluate energies; without it, every core of this machine.", valueName: "n"))
    var threadCount: Int?
    var threads: Int { threadCount ?? ProcessInfo.processInfo.activeProcessorCount }

    func validate() throws {
        try Self.checkParameters(parameters)
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    static func checkParameters(_ parameters: [String]) throws {
        for parameter in parameters where !parameter.contains("=") || parameter.hasPrefix("=") {
            throw ValidationError("--param '\(parameter)' is not KEY=VALUE (e.g. --param particles=13)")
        }
    }

    /// The parameter string handed to the plugin: pairs joined by ';'.
    var parameterString: String { parameters.joined(separator: ";") }

    /// Load the plugin and create the system; errors name the plugin and what to fix.
    func makeSystem() throws -> EnergySystem {
        try Self.makeSystem(search: search, plugin: plugin, parameters: parameters, threads: threads)
    }

    /// The system of `plugin` with `parameters` (KEY=VALUE each) evaluated on `threads` threads,
    /// from values rather than a command line (a checkpoint's plugin, another command's options).
    static func makeSystem(search: PluginSearchOptions, plugin: String, parameters: [String],
                           threads: Int) throws -> EnergySystem {
        try checkParameters(parameters)
        let parameterString = parameters.joined(separator: ";")
        let discovery = search.discover()
        let chosen: Plugin
        do {
            chosen = try discovery.pluginWarningOfShadows(named: plugin)
        } catch {
            let broken = discovery.failures.map { "\n  not loaded: \($0.error)" }.joined()
            throw FailureMessage("\(error)\(broken)")
        }
        let system: EnergySystem
        do {
            system = try chosen.makeSystem(parameters: parameterString)
        } catch {
            throw FailureMessage("\(error)\nparameters of '\(chosen.name)':\n\(chosen.parametersHelp)")
        }
        system.threads = threads
        FatalSignals.watch(plugin: chosen)
        return system
    }
}

/// An error whose text is the whole message for the user; exit code 1.
struct FailureMessage: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
