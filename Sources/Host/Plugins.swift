import ArgumentParser
import Foundation
import PluginHost

extension Ensemble {
    /// `ensemble plugins`: every plugin found, and every file that failed with the reason.
    struct Plugins: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the energy plugins found, with their parameters; report files that failed to load.")

        @OptionGroup var search: PluginSearchOptions

        @Flag(help: "Print each plugin's name only.")
        var namesOnly = false
        @Option(help: ArgumentHelp("Also write the listing (plugins, parameters, shadowed and failed files) as JSON.",
                                   valueName: "path.json"))
        var json: String?
        @Flag(help: "Replace an existing --json file.")
        var overwrite = false

        func validate() throws {
            var files = OutputFiles()
            files.output("--json", json)
            try files.check(overwrite: overwrite)
        }

        /// The listing as JSON (`--json`).
        struct Listing: Codable {
            struct Entry: Codable { var name, version, file, summary, parametersHelp: String }
            var searched: [String]
            var plugins: [Entry]
            var shadowed: [String]
            var notLoaded: [String]
        }

        func run() throws {
            let directories = PluginLoader.searchDirectories(explicit: search.pluginDirectories)
            let discovery = PluginLoader.discover(in: directories)
            defer {
                if let json {
                    let shadowed = discovery.failures.filter { if case .duplicateName = $0.error { true } else { false } }
                    let broken = discovery.failures.filter { if case .duplicateName = $0.error { false } else { true } }
                    let listing = Listing(
                        searched: directories,
                        plugins: discovery.plugins.map { .init(name: $0.name, version: $0.version, file: $0.path,
                                                               summary: $0.summary, parametersHelp: $0.parametersHelp) },
                        shadowed: shadowed.map { "\($0.error)" }, notLoaded: broken.map { "\($0.error)" })
                    do { try writeJSON(listing, to: json) } catch { print("cannot write \(json): \(error)") }
                }
            }
            if namesOnly {
                discovery.plugins.forEach { print($0.name) }
                return
            }
            print("searched: \(directories.joined(separator: ", "))")
            if discovery.plugins.isEmpty { print("no plugins found") }
            for plugin in discovery.plugins {
                print("")
                print("\(plugin.name) \(plugin.version)")
                print("  file: \(plugin.path)")
                print("  \(plugin.summary)")
                if !plugin.parametersHelp.isEmpty {
                    print("  parameters:")
                    for line in plugin.parametersHelp.split(separator: "\n") { print("    \(line)") }
                }
            }
            let shadowed = discovery.failures.filter { if case .duplicateName = $0.error { true } else { false } }
            let broken = discovery.failures.filter { if case .duplicateName = $0.error { false } else { true } }
            if !shadowed.isEmpty {
                print("\nshadowed (same name as a plugin found earlier in the search order; the earlier one is used):")
                for failure in shadowed { print("  \(failure.error)") }
            }
            if !broken.isEmpty {
                print("\nnot loaded:")
                for failure in broken { print("  \(failure.error)") }
            }
        }
    }
}
