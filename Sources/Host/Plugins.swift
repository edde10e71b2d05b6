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

        func run() throws {
            let directories = PluginLoader.searchDirectories(explicit: search.pluginDirectories)
            let discovery = PluginLoader.discover(in: directories)
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
            if !discovery.failures.isEmpty {
                print("\nnot loaded:")
                for failure in discovery.failures { print("  \(failure.error)") }
            }
        }
    }
}
