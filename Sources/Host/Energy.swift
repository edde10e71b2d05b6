import ArgumentParser
import Foundation
import PluginHost
import Trajectory

extension Ensemble {
    /// `ensemble energy`: reduced energies of every frame of a trajectory, as CSV.
    struct Energy: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the reduced energy u = U/kT of every frame of a trajectory (CSV: frame,energy).",
            discussion: """
                TRAJECTORY is an AMBER NetCDF file (coordinates in Å, converted with the plugin's length unit) \
                or a NumPy .npy file of shape (frames, particles·dimension) in the plugin's own units, as the \
                public benchmark test sets are (README, "Reference samples"). The evaluation count goes to stderr.

                Example:
                  ensemble sample --plugin double-well --samples 5000 --out dw4.nc
                  ensemble energy --plugin double-well dw4.nc > dw4.csv
                """)

        @OptionGroup var system: SystemOptions

        @Argument(help: ArgumentHelp("An AMBER NetCDF (.nc) or NumPy (.npy) trajectory.", valueName: "trajectory"))
        var trajectory: String

        func run() throws {
            let energySystem = try system.makeSystem()
            let set = try SampleSet(path: trajectory, system: energySystem)
            let (frames, positions) = (set.count, set.positions)
            var output = "frame,energy\n"
            let chunk = 1024
            var start = 0
            while start < frames {
                let count = min(chunk, frames - start)
                let slice = Array(positions[(start * energySystem.coordinateCount)..<((start + count) * energySystem.coordinateCount)])
                let energies: [Double]
                do {
                    energies = try energySystem.evaluate(slice, batch: count, withGradients: false).energies
                } catch {
                    throw FailureMessage("frames \(start)..<\(start + count): \(error)")
                }
                for (i, u) in energies.enumerated() { output += "\(start + i),\(u)\n" }
                start += count
            }
            FileHandle.standardOutput.write(Data(output.utf8))
            if let line = set.provenanceLine {
                FileHandle.standardError.write(Data("# \(trajectory): \(line)\(set.recordedChains.map { $0 > 1 ? "; frame f belongs to chain f mod \($0)" : "" } ?? "")\n".utf8))
            }
            FileHandle.standardError.write(Data(
                "# \(energySystem.energyEvaluations) energy evaluations, \(energySystem.gradientEvaluations) gradient evaluations\n".utf8))
        }
    }
}
