import ArgumentParser
import Foundation

/// `ensemble` — equilibrium samples of exp(−u(x)) for any energy plugin.
@main
struct Ensemble: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ensemble",
        abstract: "Boltzmann sampling of particle systems with energy plugins, MCMC and diffusion samplers.",
        discussion: """
            Energies come from plugins: shared libraries found in --plugin-dir, $ENSEMBLE_PLUGIN_PATH \
            (colon-separated) and the directory of this executable. `ensemble plugins` lists them.

            Start here:
              ensemble plugins
              ensemble sample --plugin lennard-jones --param preset=lj13 \\
                --sampler pt --samples 2000 --out lj13.nc
              vmd lj13.pdb lj13.nc
            """,
        version: "0.1.0",
        subcommands: [Plugins.self, Energy.self, Sample.self, Train.self, Evaluate.self, RDF.self, Ramachandran.self,
                      Bench.self, PlotTraining.self])

    /// Parses the command line with every `--config FILE` expanded (`RecipeFile`), then runs.
    static func main() {
        var arguments: [String]
        do { arguments = try RecipeFile.expand(Array(CommandLine.arguments.dropFirst())) } catch { exit(withError: error) }
        if let message = unknownSubcommand(arguments) {
            FileHandle.standardError.write(Data("Error: \(message)\n".utf8))
            Foundation.exit(64)
        }
        arguments = joiningNegativeValues(arguments)
        main(arguments)
    }

    /// `--samples -5` would read as a missing value followed by an unknown option "-5" ("Missing
    /// value for '--samples'", issue 23); `--samples=-5` reaches the option, whose check then
    /// says what is wrong ("--samples must be a positive integer, got -5").
    static func joiningNegativeValues(_ arguments: [String]) -> [String] {
        var result: [String] = []
        var i = 0
        while i < arguments.count {
            let argument = arguments[i]
            if argument == "--" { result += arguments[i...]; break }
            if argument.hasPrefix("--"), !argument.contains("="), i + 1 < arguments.count,
               arguments[i + 1].range(of: #"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"#, options: .regularExpression) != nil {
                result.append("\(argument)=\(arguments[i + 1])")
                i += 2
                continue
            }
            result.append(argument)
            i += 1
        }
        return result
    }

    /// "unknown command 'sampel'; did you mean 'sample'?" when the first word is not a
    /// subcommand (issue 23: it answered "Unknown option '--plugin'"); nil otherwise.
    static func unknownSubcommand(_ arguments: [String]) -> String? {
        guard let first = arguments.first, !first.hasPrefix("-") else { return nil }
        let names = configuration.subcommands.compactMap { $0.configuration.commandName ?? $0._commandName } + ["help"]
        guard !names.contains(first) else { return nil }
        let nearest = names.min { editDistance($0, first) < editDistance($1, first) }!
        let hint = editDistance(nearest, first) <= max(2, first.count / 3) ? "; did you mean '\(nearest)'?" : "."
        return "unknown command '\(first)'\(hint) Commands: \(names.filter { $0 != "help" }.joined(separator: ", ")) (ensemble --help)"
    }

    /// Levenshtein distance between two words.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + [Int](repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
