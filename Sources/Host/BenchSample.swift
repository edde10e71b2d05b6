import ArgumentParser
import Foundation
import Sampling

extension Ensemble.Bench {
    /// The systems of `bench --sample`: particles, dimension.
    static let sampleCases: [String: (particles: Int, dimension: Int, title: String)] = [
        "dw4": (4, 2, "DW-4"), "lj13": (13, 3, "LJ-13"), "lj55": (55, 3, "LJ-55"),
    ]

    /// Network forwards per second while drawing: the EDM denoiser D(x; σ) of the default dsm
    /// network (hidden 64 × 3 layers, Float engine, tanh range 15) on --batch configurations per
    /// call at noise levels spread over the grid, best of --repeats runs of --steps calls.
    func benchSample(_ name: String) throws {
        guard let system = Self.sampleCases[name] else {
            throw ValidationError("--sample \(name) is not a case; choose one of \(Self.sampleCases.keys.sorted().joined(separator: ", "))")
        }
        // The recommended engine, preconditioning and bound; the bare σ range (absolute).
        let recommended = DiffusionConfiguration.defaults(for: .dsm)
        var c = DiffusionConfiguration(method: .dsm)
        c.precision = recommended.precision
        c.parameterization = recommended.parameterization
        c.tanhRange = recommended.tanhRange
        c.data = MCMCSettings()
        let space = DiffusionSpace(particles: system.particles, dimension: system.dimension, kind: .centred)
        let model = try DiffusionModel(configuration: c, space: space, threads: threads)
        var rng = SeededGenerator(seed: 1)
        let x = space.noise(batch: batch, rng: &rng)
        let grid = model.noiseLevels(steps: steps + 1)
        _ = model.denoise(positions: x, sigmas: [Double](repeating: grid[0], count: batch))  // warm-up
        let seconds = try best(repeats) {
            for k in 0..<steps { _ = model.denoise(positions: x, sigmas: [Double](repeating: grid[k], count: batch)) }
        }
        let rate = Double(batch * steps) / seconds
        let line: [String: Any] = [
            "case": name, "title": "\(system.title) EGNN \(c.hidden)×\(c.layers) denoiser forward while drawing, Float, batch \(batch)",
            "forwards_per_second": rate, "ms_per_call": 1e3 * seconds / Double(steps), "batch": batch, "threads": threads,
            "hidden": c.hidden, "layers": c.layers,
        ]
        print(String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]), as: UTF8.self))
    }
}
