import ArgumentParser
import Equivariant
import Foundation
import PluginHost
import Sampling

extension Ensemble {
    /// `ensemble bench`: energy+gradient throughput and MALA steps per second.
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure energy+gradient throughput (configurations/s) and MALA steps/s.",
            discussion: """
                Without --plugin: LJ-13 and LJ-55 (lennard-jones presets). Configurations are the plugin's \
                start structure plus 0.02 Gaussian noise. Each number is the best of --repeats timed runs.

                Example:
                  ensemble bench --batch 1024 --threads 2
                  ensemble bench --plugin double-well --batch 4096
                """)

        @OptionGroup var search: PluginSearchOptions
        @Option(help: "A plugin to measure instead of LJ-13 and LJ-55.")
        var plugin: String?
        @Option(name: .customLong("param"), help: "Plugin parameter KEY=VALUE (repeatable).")
        var parameters: [String] = []
        @Option(help: "Configurations per evaluate call.")
        var batch: Int = 1024
        @Option(name: .customLong("threads"), help: ArgumentHelp(
            "Threads that evaluate energies; without it, every core of this machine.", valueName: "n"))
        var threadCount: Int?
        var threads: Int { threadCount ?? ProcessInfo.processInfo.activeProcessorCount }
        @Option(help: "Timed repetitions (best is reported).")
        var repeats: Int = 5
        @Option(help: "MALA chains for the steps/s measurement.")
        var chains: Int = 64
        @Option(help: ArgumentHelp("Also write the measurements as JSON.", valueName: "path.json"))
        var json: String?
        @Option(help: ArgumentHelp("Time the training step of one case instead (dw4-idem, lj13-idem, dw4-tb, lj13-tb) and print it as one JSON line; `make bench` compares it with PyTorch.", valueName: "case"))
        var train: String?
        @Option(help: "Timed training steps (--train; the median is reported).")
        var steps: Int = 5
        @Option(help: ArgumentHelp("Time the network while drawing for one case instead (dw4, lj13, lj55: the EDM denoiser of `train --method dsm`'s default EGNN, Float engine, --batch configurations per call, all --threads) and print network forwards per second as one JSON line; scripts/bench_egnn_torch.py --sample CASE times PyTorch on the same network.", valueName: "case"))
        var sample: String?
        @Flag(help: "Replace an existing --json file.")
        var overwrite = false

        /// One measured system (`--json`).
        struct Measurement: Codable {
            var system: String
            var plugin: String
            var pluginParameters: String
            var energyGradientPerSecond: Double
            var energyOnlyPerSecond: Double
            var msPerBatch: Double
            var malaStepsPerSecond: Double
            var malaChainStepsPerSecond: Double
        }
        struct Report: Codable {
            var command = "bench"
            var threads: Int
            var batch: Int
            var chains: Int
            var repeats: Int
            var results: [Measurement]
        }

        func validate() throws {
            guard batch > 0, threads > 0, repeats > 0, chains > 0 else {
                throw ValidationError("--batch, --threads, --repeats and --chains must be positive")
            }
            var files = OutputFiles()
            files.output("--json", json)
            try files.check(overwrite: overwrite)
        }

        func run() throws {
            if let sample { return try benchSample(sample) }
            if let train {
                guard let bench = TrainBenchCase.all.first(where: { $0.name == train }) else {
                    throw ValidationError("--train \(train) is not a case; choose one of \(TrainBenchCase.all.map(\.name).joined(separator: ", "))")
                }
                var line = try bench.measure(search: search, threads: threads, steps: steps)
                line["threads"] = Double(threads)
                let data = try JSONSerialization.data(withJSONObject: ["case": bench.name, "title": bench.title, "result": line],
                                                      options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            let discovery = search.discover()
            let cases: [(String, String, String)] = plugin.map { [($0, parameters.joined(separator: ";"), $0)] }
                ?? [("lennard-jones", "preset=lj13", "LJ-13"), ("lennard-jones", "preset=lj55", "LJ-55")]
            print("threads: \(threads), batch: \(batch)")
            var results: [Measurement] = []
            for (name, parameterString, title) in cases {
                let chosen = try discovery.pluginWarningOfShadows(named: name)
                FatalSignals.watch(plugin: chosen)  // a crash in it is one line naming it, as under sample
                let system = try chosen.makeSystem(parameters: parameterString)
                system.threads = threads
                // The batch's positions, gradients and their copies; each MALA chain ~10 arrays.
                try MemoryLimit.check("--batch", batch, bytesPerUnit: Double(system.coordinateCount) * 8 * 4,
                                      detail: "\(system.coordinateCount) coordinates of \(title) × 8 bytes × 4 arrays")
                try MemoryLimit.check("--chains", chains, bytesPerUnit: Double(system.coordinateCount) * 8 * 10,
                                      detail: "\(system.coordinateCount) coordinates of \(title) × 8 bytes × 10 arrays")
                let start = system.initialPositions() ?? [Double](repeating: 0, count: system.coordinateCount)
                var rng = SeededGenerator(seed: 1)
                let x = (0..<batch).flatMap { _ in start.map { $0 + 0.02 * rng.normal() } }
                _ = try system.evaluate(x, batch: batch) // warm-up
                let withGradient = try best(repeats) { _ = try system.evaluate(x, batch: batch) }
                let energyOnly = try best(repeats) { _ = try system.evaluate(x, batch: batch, withGradients: false) }
                print(String(format: "%@ energy+gradient, batch %d: %.0f configurations/s (%.3f ms per batch)",
                             title, batch, Double(batch) / withGradient, withGradient * 1e3))
                print(String(format: "%@ energy only,     batch %d: %.0f configurations/s",
                             title, batch, Double(batch) / energyOnly))
                var kernel = MALAKernel(space: Space.forMCMC(system, at: start, fixCentreOfMass: system.box == nil), system: system)
                kernel.strict = true
                var walkers = try kernel.initialize((0..<chains).flatMap { _ in start.map { $0 + 0.01 * rng.normal() } })
                let steps = 200
                let seconds = try best(max(1, repeats / 2)) {
                    for _ in 0..<steps { try kernel.step(&walkers, stepSize: 1e-4, rng: &rng) }
                }
                print(String(format: "%@ MALA, %d chains: %.0f steps/s (%.0f chain-steps/s)",
                             title, chains, Double(steps) / seconds, Double(steps * chains) / seconds))
                results.append(Measurement(
                    system: title, plugin: name, pluginParameters: parameterString,
                    energyGradientPerSecond: Double(batch) / withGradient, energyOnlyPerSecond: Double(batch) / energyOnly,
                    msPerBatch: withGradient * 1e3, malaStepsPerSecond: Double(steps) / seconds,
                    malaChainStepsPerSecond: Double(steps * chains) / seconds))
            }
            if let json {
                try writeJSON(Report(threads: threads, batch: batch, chains: chains, repeats: repeats, results: results), to: json)
                print("wrote \(json)")
            }
        }

        /// Best wall time in seconds of `count` runs.
        func best(_ count: Int, _ body: () throws -> Void) rethrows -> Double {
            var best = Double.infinity
            for _ in 0..<count {
                let start = DispatchTime.now().uptimeNanoseconds
                try body()
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
            }
            return best
        }
    }
}
