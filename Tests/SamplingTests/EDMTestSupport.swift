import Foundation
import PluginHost
import Sampling
import XCTest

/// A small EDM-preconditioned dsm configuration (EGNN 16 × 2, σ ∈ [0.01, σ_max]) for tests.
func smallEDMConfiguration(sigmaMax: Double, seed: UInt64 = 1) -> DiffusionConfiguration {
    var c = DiffusionConfiguration(method: .dsm)
    c.hidden = 16
    c.layers = 2
    c.sigmaMin = 1e-2
    c.sigmaMax = sigmaMax
    c.seed = seed
    c.data = MCMCSettings()
    c.parameterization = .edm
    return c
}

/// The same, training on DW-4 parallel-tempering data (4 chains, 400 frames, batch 32, a quarter
/// of the chains held out for validation).
func smallDW4Configuration(replicas: Int = 1, maxTemperature: Double = 5) -> DiffusionConfiguration {
    var c = smallEDMConfiguration(sigmaMax: 3)
    c.batch = 32
    c.validationFraction = 0.25
    c.data = MCMCSettings(chains: 4, burnIn: 500, thin: 10, samples: 400, seed: 3, replicas: replicas, maxTemperature: maxTemperature)
    return c
}

/// An untrained EDM model scaled to a field of order one, so that its draws are far off a target.
func untrainedEDMModel(_ c: DiffusionConfiguration, space: DiffusionSpace, sigmaData: Double) throws -> DiffusionModel {
    let m = try DiffusionModel(configuration: c, space: space)
    m.networkParameters = m.networkParameters.map { $0 * 3 }
    m.sigmaData = sigmaData
    return m
}

/// Draws 3000 samples by a deterministic integrator on 12 noise levels with exact weights and
/// asserts that the draws are off the target (sd of log w > 0.1, so the check bites) and that
/// log Ẑ = logmeanexp(log w) equals the analytic `logZ` within max(3 standard errors, 0.02).
/// - Returns: the draws (for further checks).
@discardableResult
func assertExactWeightsRecover(logZ: Double, model: DiffusionModel, system: EnergySystem, integrator: Integrator = .heun,
                               seed: UInt64, label: String, file: StaticString = #filePath, line: UInt = #line) throws -> DiffusionPaths {
    var rng = SeededGenerator(seed: seed)
    let drawn = try model.sampleNoiseLevels(batch: 3000, system: system,
                                            settings: DrawSettings(integrator: integrator, steps: 12, stochastic: false, exactWeights: true),
                                            rng: &rng)
    let weights = ImportanceWeights(logWeights: drawn.logWeights)
    let spread = Statistics.meanAndDeviation(drawn.logWeights).deviation
    print("\(label): log Ẑ \(weights.logZ) ± \(weights.logZError()) (exact \(logZ)), ESS/N \(weights.effectiveSampleFraction), sd(log w) \(spread)")
    XCTAssertGreaterThan(spread, 0.1, "\(label): the draws should be off the target for the test to bite", file: file, line: line)
    XCTAssertEqual(weights.logZ, logZ, accuracy: max(3 * weights.logZError(), 0.02), label, file: file, line: line)
    return drawn
}
