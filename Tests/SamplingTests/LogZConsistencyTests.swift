import Foundation
import PluginHost
import Sampling
import TestSupport
import XCTest

/// log Z of DW-4 two independent ways: annealed importance sampling (Neal 2001) from a
/// Gaussian, and the importance weights of a briefly trained tempered-data sampler drawn by
/// the probability-flow ODE. Both are consistent estimators of the same number.
final class LogZConsistencyTests: XCTestCase {
    let space = DiffusionSpace(particles: 4, dimension: 2, kind: .centred)

    /// AIS on π_λ ∝ N(0, s²)^{1−λ} π^λ in the zero-centre-of-mass subspace (D' = 6), λ on a
    /// 400-point grid, two MALA steps per level; returns log Ẑ and its bootstrap error.
    func annealedLogZ(_ system: EnergySystem, walkers n: Int, seed: UInt64) throws -> (Double, Double) {
        let s2 = 2.25, stride = 8, levels = 400
        var rng = SeededGenerator(seed: seed)
        var x = space.noise(batch: n, rng: &rng).map { $0 * s2.squareRoot() }
        func energy(_ x: [Double], _ lambda: Double) throws -> (e: [Double], g: [Double], u: [Double]) {
            var (u, g) = try system.evaluate(x, batch: n, withGradients: true)
            space.project(&g)
            var e = [Double](repeating: 0, count: n)
            for b in 0..<n {
                var sq = 0.0
                for i in 0..<stride { sq += x[b * stride + i] * x[b * stride + i] }
                e[b] = (1 - lambda) * sq / (2 * s2) + lambda * u[b]
                for i in 0..<stride { g[b * stride + i] = (1 - lambda) * x[b * stride + i] / s2 + lambda * g[b * stride + i] }
            }
            return (e, g, u)
        }
        var logW = [Double](repeating: 0, count: n)
        var h = 0.05
        for k in 1...levels {
            let lambda = pow(Double(k) / Double(levels), 3), previous = pow(Double(k - 1) / Double(levels), 3)
            var current = try energy(x, previous)
            for b in 0..<n {
                var sq = 0.0
                for i in 0..<stride { sq += x[b * stride + i] * x[b * stride + i] }
                logW[b] -= (lambda - previous) * (current.u[b] - sq / (2 * s2))
            }
            current = try energy(x, lambda)
            for _ in 0..<2 {
                let e = space.noise(batch: n, rng: &rng)
                var y = x
                for j in y.indices { y[j] += -h * current.g[j] + (2 * h).squareRoot() * e[j] }
                let proposed = try energy(y, lambda)
                var accepted = 0
                for b in 0..<n {
                    var forward = 0.0, backward = 0.0
                    for i in 0..<stride {
                        let j = b * stride + i, d = y[j] - x[j]
                        forward += (d + h * current.g[j]) * (d + h * current.g[j])
                        backward += (-d + h * proposed.g[j]) * (-d + h * proposed.g[j])
                    }
                    if log(rng.uniform()) < -(proposed.e[b] - current.e[b]) - (backward - forward) / (4 * h) {
                        accepted += 1
                        for i in 0..<stride { x[b * stride + i] = y[b * stride + i] }
                        current.e[b] = proposed.e[b]; current.u[b] = proposed.u[b]
                        for i in 0..<stride { current.g[b * stride + i] = proposed.g[b * stride + i] }
                    }
                }
                h *= exp(Double(accepted) / Double(n) - 0.574)
            }
        }
        let logZ0 = 0.5 * 6 * log(2 * Double.pi * s2)
        let w = ImportanceWeights(logWeights: logW.map { $0 + logZ0 })
        return (w.logZ, w.logZError())
    }

    func testProbabilityFlowLogZAgreesWithAnnealedImportanceSamplingOnDW4() throws {
        try requireBuilt(TestPaths.plugin("DoubleWell"))
        let plugin = try PluginLoader.load(path: TestPaths.plugin("DoubleWell").path)
        let system = try plugin.makeSystem(parameters: "")
        let (ais, aisError) = try annealedLogZ(system, walkers: 1000, seed: 3)

        var c = DiffusionConfiguration(method: .dsm)
        c.precision = .float
        c.hidden = 32
        c.layers = 3
        c.batch = 128
        c.timeSteps = 50
        c.sigmaMin = 0.01
        c.sigmaMax = 3
        var data = MCMCSettings()
        data.samples = 2000
        data.chains = 32
        data.replicas = 6
        data.maxTemperature = 8
        data.burnIn = 2000
        data.thin = 100
        data.initialStepSize = 0.01
        c.data = data
        c.bufferCapacity = 2000
        let model = try DiffusionModel(configuration: c, space: space)
        let trainer = DiffusionTrainer(model: model, system: system)
        for _ in 0..<1500 { try trainer.step() }
        var rng = SeededGenerator(seed: 5)
        let drawn = try model.generate(count: 600, system: system, rng: &rng, probabilityFlow: true)
        let weights = ImportanceWeights(logWeights: drawn.logWeights)
        let flow = weights.logZ, flowError = weights.logZError()
        print("DW-4 log Z: AIS \(ais) ± \(aisError); probability flow \(flow) ± \(flowError) (ESS/N \(weights.effectiveSampleFraction))")
        XCTAssertGreaterThan(weights.effectiveSampleFraction, 0.01, "the weights must carry information for this check to bite")
        XCTAssertEqual(flow, ais, accuracy: 3 * (aisError * aisError + flowError * flowError).squareRoot() + 0.05)
    }
}
