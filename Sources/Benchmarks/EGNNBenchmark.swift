import Equivariant
import Foundation

enum EGNNBenchmark {
    struct Case {
        var name: String, label: String, particles: Int, dimension: Int, batch: Int
        var hidden = 64, layers = 4
    }

    static let cases: [Case] = [
        Case(name: "dw4-128", label: "DW-4", particles: 4, dimension: 2, batch: 128),
        Case(name: "dw4-512", label: "DW-4", particles: 4, dimension: 2, batch: 512),
        Case(name: "lj13-128", label: "LJ-13", particles: 13, dimension: 3, batch: 128),
        Case(name: "lj13-512", label: "LJ-13", particles: 13, dimension: 3, batch: 512),
        Case(name: "lj55-64", label: "LJ-55", particles: 55, dimension: 3, batch: 64),
    ]

    static func peakRSSMegabytes() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024  // kilobytes on Linux
    }

    static func cpuSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Wall milliseconds per call (median and minimum over repetitions
    /// filling ~`seconds`) and process CPU milliseconds per call (all threads;
    /// robust to other processes sharing the cores).
    struct Timing { var median: Double, min: Double, cpu: Double
        var cell: String { String(format: "%.2f (%.2f) [%.1f]", median, min, cpu) }
    }

    static func time(seconds: Double, _ body: () -> Void) -> Timing {
        body()  // warm-up (allocates buffers)
        var samples: [Double] = []
        let start = DispatchTime.now().uptimeNanoseconds
        let cpu0 = cpuSeconds()
        repeat {
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            samples.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        } while samples.count < 3 || (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 < seconds && samples.count < 200)
        let cpu = (cpuSeconds() - cpu0) * 1e3 / Double(samples.count)
        samples.sort()
        return Timing(median: samples[samples.count / 2], min: samples[0], cpu: cpu)
    }

    static func run(_ args: [String]) {
        var threads = 2, only: String? = nil, seconds = 2.0
        var i = 0
        while i < args.count {
            switch args[i] {
            case "--threads": threads = Int(args[i + 1]) ?? 2; i += 1
            case "--case": only = args[i + 1]; i += 1
            case "--seconds": seconds = Double(args[i + 1]) ?? 2; i += 1
            default: print("unknown option \(args[i])"); exit(2)
            }
            i += 1
        }
        let selected = cases.filter { only == nil || $0.name == only }
        if selected.isEmpty { print("no case named \(only ?? "")"); exit(2) }
        print("EGNN (Swift, Float32), threads \(threads); ms per batch: wall median (wall min) [CPU ms, all threads]")
        print("| case | batch | hidden×layers | edges/batch | forward | fwd+bwd | train step | peak RSS MB |")
        print("|---|---|---|---|---|---|---|---|")
        for c in selected {
            let config = EGNNConfiguration(particles: c.particles, dimension: c.dimension, hidden: c.hidden,
                                           layers: c.layers, aggregation: .sum)
            let net = try! EGNN<Float>(configuration: config, seed: 1, threads: threads)
            var adam = Adam<Float>(parameterCount: net.parameterCount, learningRate: 1e-4)
            var rng = SplitMix64(seed: 2)
            let count = c.batch * c.particles * c.dimension
            let x = (0..<count).map { _ in Float(rng.uniform(-1.5, 1.5)) }
            let target = (0..<count).map { _ in Float(rng.uniform(-1, 1)) }
            let t = (0..<c.batch).map { _ in Float(rng.uniform(0, 1)) }
            func lossGradient(_ v: [Float]) -> [Float] {
                let scale = 2 / Float(count)
                return zip(v, target).map { scale * ($0 - $1) }  // d/dv of mean((v − y)²)
            }
            let fwd = time(seconds: seconds) { _ = net.forward(positions: x, times: t) }
            let fb = time(seconds: seconds) {
                let v = net.forward(positions: x, times: t)
                net.zeroGradients()
                _ = net.backward(outputGradient: lossGradient(v))
            }
            let step = time(seconds: seconds) {
                let v = net.forward(positions: x, times: t)
                net.zeroGradients()
                _ = net.backward(outputGradient: lossGradient(v))
                adam.step(parameters: &net.parameters, gradients: net.gradients)
            }
            let edges = c.batch * c.particles * (c.particles - 1)
            print("| \(c.label) \(c.particles)×\(c.dimension)D | \(c.batch) | \(c.hidden)×\(c.layers) | \(edges) | "
                  + "\(fwd.cell) | \(fb.cell) | \(step.cell) | " + String(format: "%.0f |", peakRSSMegabytes()))
        }
    }
}
