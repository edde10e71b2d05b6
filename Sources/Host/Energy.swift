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
                benchmark sets in ../shared/reference are. The evaluation count goes to stderr.

                Example:
                  ensemble energy --plugin double-well ../shared/reference/test_split_DW4.npy > dw4.csv
                """)

        @OptionGroup var system: SystemOptions

        @Argument(help: ArgumentHelp("An AMBER NetCDF (.nc) or NumPy (.npy) trajectory.", valueName: "trajectory"))
        var trajectory: String

        func run() throws {
            let energySystem = try system.makeSystem()
            let (frames, positions) = try readFrames(trajectory, for: energySystem)
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
            FileHandle.standardError.write(Data(
                "# \(energySystem.energyEvaluations) energy evaluations, \(energySystem.gradientEvaluations) gradient evaluations\n".utf8))
        }
    }
}

/// Frames of a .nc or .npy file as plugin coordinates [frames·n·d].
/// - Throws: a clear message when the atom or coordinate count does not match the plugin.
func readFrames(_ path: String, for system: EnergySystem) throws -> (frames: Int, positions: [Double]) {
    guard FileManager.default.fileExists(atPath: path) else { throw FailureMessage("\(path): no such file") }
    let n = system.particleCount, d = system.dimension
    if path.hasSuffix(".npy") {
        let array = try NumPyArray(contentsOf: path)
        let frames = array.shape.first ?? 0
        let perFrame = array.shape.dropFirst().reduce(1, *)
        guard array.shape.count >= 2, perFrame == n * d else {
            throw FailureMessage("\(path): shape \(array.shape) does not match \(system.plugin.name) with \(n) particles × \(d) dimensions (expected (frames, \(n * d)))")
        }
        return (frames, array.values)
    }
    let reader = try AmberNetCDFReader(path: path)
    guard reader.atomCount == n else {
        throw FailureMessage("\(path): \(reader.atomCount) atoms, but \(system.plugin.name) has \(n) particles")
    }
    let xyz = try reader.allCoordinates()
    var positions = [Double](repeating: 0, count: reader.frameCount * n * d)
    let scale = 1 / system.lengthUnitAngstrom
    for f in 0..<reader.frameCount {
        for i in 0..<n { for k in 0..<d { positions[(f * n + i) * d + k] = xyz[(f * n + i) * 3 + k] * scale } }
    }
    return (reader.frameCount, positions)
}
