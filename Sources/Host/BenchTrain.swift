import Foundation
import PluginHost
import Sampling

/// `ensemble bench --train CASE`: the wall time of the training step `ensemble train` runs
/// (the product's `DiffusionTrainer.step`, Float engine), at the sizes of the reference codes;
/// `scripts/bench_train_torch.py` times the same step in PyTorch as DEM / gfn-diffusion compute it.
struct TrainBenchCase {
    var name: String
    var title: String
    var plugin: String
    var parameters: String
    var method: DiffusionMethod
    var hidden: Int
    var layers: Int
    var batch: Int
    /// iDEM: Monte-Carlo draws K per point; tb: time steps.
    var size: Int

    /// DEM's iDEM sizes (DW-4: EGNN 128×3, LJ-13: 128×5; 512 buffer points a step, K = 1000)
    /// and gfn-diffusion's TB sizes (batch 300, 100 steps; LJ-13 smaller to fit two cores).
    static let all = [
        TrainBenchCase(name: "dw4-idem", title: "DW-4 iDEM, batch 512, K 1000, EGNN 128×3", plugin: "double-well",
                       parameters: "", method: .idem, hidden: 128, layers: 3, batch: 512, size: 1000),
        TrainBenchCase(name: "lj13-idem", title: "LJ-13 iDEM, batch 512, K 1000, EGNN 128×5", plugin: "lennard-jones",
                       parameters: "preset=lj13", method: .idem, hidden: 128, layers: 5, batch: 512, size: 1000),
        TrainBenchCase(name: "dw4-tb", title: "DW-4 TB, batch 300, 100 steps, EGNN 64×3", plugin: "double-well",
                       parameters: "", method: .tb, hidden: 64, layers: 3, batch: 300, size: 100),
        TrainBenchCase(name: "lj13-tb", title: "LJ-13 TB, batch 64, 50 steps, EGNN 64×3", plugin: "lennard-jones",
                       parameters: "preset=lj13", method: .tb, hidden: 64, layers: 3, batch: 64, size: 50),
    ]

    /// The configuration `ensemble train` would build for this case (Float engine; TB on-policy
    /// only, no local search, no exploration noise, so every timed step is the same work).
    var configuration: DiffusionConfiguration {
        var c = DiffusionConfiguration(method: method)
        c.precision = DiffusionConfiguration.defaults(for: method).precision
        c.hidden = hidden
        c.layers = layers
        c.batch = batch
        if !method.usesPaths {  // a score model: `size` Monte-Carlo draws
            var settings = EnergyMatching.Settings()
            settings.monteCarloSamples = size
            c.setSettings(settings)
            c.sigmaMin = plugin == "double-well" ? 1e-5 : 0.01
            c.sigmaMax = plugin == "double-well" ? 3 : 2
        } else {
            c.timeSteps = size
            c.useBuffer = false
            c.localSearchEvery = 0
            c.exploration = 0
        }
        return c
    }

    /// Median wall milliseconds of `steps` training steps after one warm-up step (iDEM's first
    /// step also fills the buffer with its 1024 prior draws; no refill falls in the timed steps).
    func measure(search: PluginSearchOptions, threads: Int, steps: Int) throws -> [String: Double] {
        let system = try SystemOptions.makeSystem(search: search, plugin: plugin,
                                                  parameters: parameters.isEmpty ? [] : [parameters], threads: threads)
        let model = try DiffusionModel(configuration: configuration, space: DiffusionSpace.of(system), threads: threads)
        let trainer = DiffusionTrainer(model: model, system: system)
        try trainer.step()
        var times: [Double] = []
        for _ in 0..<steps {
            let start = DispatchTime.now().uptimeNanoseconds
            try trainer.step()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-6)
        }
        times.sort()
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return ["ms": times[times.count / 2], "min_ms": times[0], "peak_rss_mb": Double(usage.ru_maxrss) / 1024,
                "steps": Double(steps)]
    }
}
