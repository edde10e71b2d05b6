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
        let arguments: [String]
        do { arguments = try RecipeFile.expand(Array(CommandLine.arguments.dropFirst())) } catch { exit(withError: error) }
        main(arguments)
    }
}
