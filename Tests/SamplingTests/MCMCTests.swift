import Equivariant
import Foundation
import PluginHost
import Sampling
import TestSupport
import XCTest

/// MALA and parallel tempering against systems with a known answer.
final class MCMCTests: XCTestCase {
    static var harmonic: Plugin?

    func harmonicPlugin() throws -> Plugin {
        if let plugin = Self.harmonic { return plugin }
        let plugin = try PluginLoader.load(path: try buildHarmonicPlugin().path)
        Self.harmonic = plugin
        return plugin
    }

    /// ⟨x²⟩ per coordinate, averaged over recorded frames, with a batch-means error.
    func secondMoment(settings: MCMCSettings, parameters: String) throws -> (Double, Double, MCMCSummary) {
        let system = try harmonicPlugin().makeSystem(parameters: parameters)
        var series: [Double] = []
        let summary = try ChainRunner(settings: settings).run(
            system: system, space: .free(particles: system.particleCount, dimension: system.dimension),
            start: [Double](repeating: 0, count: system.coordinateCount),
            record: { x, _ in series.append(x.reduce(0) { $0 + $1 * $1 } / Double(x.count)) })
        let (mean, error) = Statistics.meanAndError(series)
        return (mean, error, summary)
    }

    func testMALAReproducesTheHarmonicSecondMoment() throws {
        var settings = MCMCSettings()
        settings.chains = 8
        settings.burnIn = 500
        settings.thin = 5
        settings.samples = 8 * 2000
        // k = 2, kT = 0.5: ⟨x²⟩ = kT/k = 0.25
        let (mean, error, summary) = try secondMoment(settings: settings, parameters: "k=2 temperature=0.5 particles=4")
        XCTAssertLessThan(abs(mean - 0.25), 4 * error + 1e-3, "⟨x²⟩ = \(mean) ± \(error)")
        XCTAssertLessThan(error, 0.01)
        XCTAssertEqual(summary.frames, 16000)
        // Step size adaptation reached the target during burn-in, then froze.
        XCTAssertEqual(summary.acceptance[0], 0.574, accuracy: 0.08)
        // Energy ⟨u⟩ = D/2 for a Gaussian in D = 12 dimensions.
        XCTAssertLessThan(abs(summary.energyMean - 6), 4 * summary.energyError + 0.02, "\(summary.energyMean)")
        XCTAssertEqual(summary.energyEvaluations, summary.gradientEvaluations)
        XCTAssertEqual(summary.energyEvaluations, 8 * (1 + 500 + 2000 * 5))
    }

    /// Any kernel runs in the one chain runner: HMC, MALA then HMC (`SequenceKernel`) and a
    /// mixture of the two keep ⟨x²⟩ = kT/k, and the step size adapts toward the first kernel's target.
    func testHMCAndComposedKernelsReproduceTheHarmonicSecondMoment() throws {
        let system = try harmonicPlugin().makeSystem(parameters: "k=2 temperature=0.5 particles=4")
        let space = Space.free(particles: system.particleCount, dimension: system.dimension)
        let mala = MALAKernel(space: space, system: system)
        let hmc = HMCKernel(space: space, system: system, leapfrogSteps: 3)
        var settings = MCMCSettings()
        settings.chains = 8
        settings.burnIn = 2000
        settings.thin = 4
        settings.samples = 8 * 1000
        let kernels: [any MCMCKernel] = [hmc, SequenceKernel(mala, hmc), MixtureKernel(mala, hmc, probability: 0.5)]
        for kernel in kernels {
            var series: [Double] = []
            let summary = try ChainRunner(settings: settings).run(
                kernel: kernel, start: [Double](repeating: 0, count: system.coordinateCount), jitter: 0.01,
                record: { x, _, _ in series.append(x.reduce(0) { $0 + $1 * $1 } / Double(x.count)) })
            let (mean, error) = Statistics.meanAndError(series)
            XCTAssertLessThan(abs(mean - 0.25), 4 * error + 1e-3, "\(type(of: kernel)): ⟨x²⟩ = \(mean) ± \(error)")
            XCTAssertEqual(summary.frames, 8000)
            XCTAssertEqual(summary.acceptance[0], kernel.targetAcceptance!, accuracy: 0.1, "\(type(of: kernel))")
        }
    }

    /// HMC with per-particle masses (a molecule's correction move) keeps every particle's ⟨x²⟩ =
    /// kT/k whatever its mass (the positions' distribution does not depend on the masses; a
    /// wrong kinetic energy in the acceptance would bias the light or the heavy ones). Without the
    /// step jitter the lightest-but-one particle here sits at a half period (ω εL ≈ π) and never mixes.
    func testMassWeightedHMCKeepsEveryParticlesSecondMoment() throws {
        let system = try harmonicPlugin().makeSystem(parameters: "k=2 temperature=0.5 particles=4")
        var hmc = HMCKernel(space: .free(particles: 4, dimension: system.dimension), system: system, leapfrogSteps: 4)
        hmc.masses = [1, 9, 0.25, 4]
        hmc.stepJitter = 0.2
        var settings = MCMCSettings()
        settings.chains = 8
        settings.burnIn = 1000
        settings.thin = 3
        settings.samples = 8 * 1500
        let d = system.dimension
        var series = [[Double]](repeating: [], count: 4)
        let summary = try ChainRunner(settings: settings).run(
            kernel: hmc, start: [Double](repeating: 0, count: system.coordinateCount), jitter: 0.01,
            record: { x, _, _ in
                for i in 0..<4 { series[i].append((0..<d).map { x[i * d + $0] * x[i * d + $0] }.reduce(0, +) / Double(d)) }
            })
        for i in 0..<4 {
            let (mean, error) = Statistics.meanAndError(series[i])
            XCTAssertLessThan(abs(mean - 0.25), 4 * error + 2e-3, "particle \(i) (mass \(hmc.masses![i])): ⟨x²⟩ = \(mean) ± \(error)")
            XCTAssertLessThan(error, 0.02)
        }
        XCTAssertEqual(summary.acceptance[0], 0.7, accuracy: 0.1)
    }

    /// Every kernel of `sample --sampler` (`KernelRegistry`), built and run as the command line
    /// runs it (`registration.make`, `ChainRunner.run(kernel:)`), keeps ⟨x²⟩ = kT/k = 0.25 and
    /// ⟨u⟩ = D/2 = 6 of a Gaussian (k = 2, kT = 0.5, 4 particles in 3D) within 4 batch-means
    /// errors, and a kernel at one temperature adapts to its own target acceptance (random-walk
    /// Metropolis: 0.234).
    func testEveryRegisteredKernelKeepsTheHarmonicMoments() throws {
        let system = try harmonicPlugin().makeSystem(parameters: "k=2 temperature=0.5 particles=4")
        let space = Space.free(particles: system.particleCount, dimension: system.dimension)
        XCTAssertNotNil(KernelRegistry.named("rwm"))
        XCTAssertEqual(Set(KernelRegistry.all.map(\.name)).count, KernelRegistry.all.count)
        for registration in KernelRegistry.all {
            var settings = MCMCSettings()
            settings.chains = 8
            settings.burnIn = 2000
            settings.thin = 5
            settings.samples = 8 * 2000
            if registration.tempered {
                settings.replicas = 4
                settings.maxTemperature = 4
            }
            let kernel = registration.make(space, system)
            var series: [Double] = []
            let summary = try ChainRunner(settings: settings).run(
                kernel: kernel, start: [Double](repeating: 0, count: system.coordinateCount), jitter: 0.01,
                record: { x, _, _ in series.append(x.reduce(0) { $0 + $1 * $1 } / Double(x.count)) })
            let (mean, error) = Statistics.meanAndError(series)
            XCTAssertLessThan(abs(mean - 0.25), 4 * error + 1e-3, "\(registration.name): ⟨x²⟩ = \(mean) ± \(error)")
            XCTAssertLessThan(error, 0.01, registration.name)
            XCTAssertLessThan(abs(summary.energyMean - 6), 4 * summary.energyError + 0.02,
                              "\(registration.name): ⟨u⟩ = \(summary.energyMean) ± \(summary.energyError)")
            XCTAssertEqual(summary.frames, 16000, registration.name)
            if !registration.tempered {
                XCTAssertEqual(summary.acceptance[0], kernel.targetAcceptance!, accuracy: 0.05, registration.name)
            }
        }
        XCTAssertEqual(KernelRegistry.named("rwm")!.make(space, system).targetAcceptance, 0.234)
        // Random-walk Metropolis needs no gradient.
        let rwm = KernelRegistry.named("rwm")!.make(space, system)
        let before = system.gradientEvaluations
        var settings = MCMCSettings()
        settings.burnIn = 10
        settings.samples = 4
        settings.thin = 1
        _ = try ChainRunner(settings: settings).run(kernel: rwm, start: [Double](repeating: 0, count: system.coordinateCount),
                                                    jitter: 0.01, record: { _, _, _ in })
        XCTAssertEqual(system.gradientEvaluations, before)
    }

    func testParallelTemperingReproducesTheHarmonicSecondMoment() throws {
        var settings = MCMCSettings()
        settings.chains = 4
        settings.replicas = 4
        settings.maxTemperature = 8
        settings.burnIn = 500
        settings.thin = 5
        settings.samples = 4 * 3000
        let (mean, error, summary) = try secondMoment(settings: settings, parameters: "k=4 particles=2")
        XCTAssertLessThan(abs(mean - 0.25), 4 * error + 1e-3, "⟨x²⟩ = \(mean) ± \(error)")
        XCTAssertEqual(summary.exchangeAcceptance.count, 3)
        for rate in summary.exchangeAcceptance { XCTAssertGreaterThan(rate, 0.05) }
        // Hotter levels take bigger steps.
        XCTAssertGreaterThan(summary.stepSizes[3], summary.stepSizes[0])
    }

    func testParallelTemperingCrossesADoubleWellBarrierThatMALADoesNot() throws {
        // DW in 1 pair (2 particles, 1 effective coordinate): wells at d = d0 ± √(−b/2c).
        let path = TestPaths.plugin("DoubleWell")
        try requireBuilt(path)
        let system = try PluginLoader.load(path: path.path)
            .makeSystem(parameters: "particles=2 dimension=2 b=-8 c=1 d0=4")
        let start = [0.0, 0, 2, 0]
        func fractionFar(_ settings: MCMCSettings) throws -> Double {
            var far = 0, total = 0
            _ = try ChainRunner(settings: settings).run(system: system, space: Space.forMCMC(system, at: start, fixCentreOfMass: true), start: start,
                record: { x, _ in
                    for c in 0..<(x.count / 4) {
                        let d = hypot(x[4 * c] - x[4 * c + 2], x[4 * c + 1] - x[4 * c + 3])
                        if d > 4 { far += 1 }
                        total += 1
                    }
                })
            return Double(far) / Double(total)
        }
        var settings = MCMCSettings()
        settings.chains = 4
        settings.burnIn = 300
        settings.samples = 4000
        settings.thin = 2
        let mala = try fractionFar(settings)
        settings.replicas = 6
        settings.maxTemperature = 20
        let pt = try fractionFar(settings)
        // The far well (d ≈ 6) has more phase space in 2D (∝ d): exact weight > 0.5.
        XCTAssertLessThan(mala, 0.05, "MALA stays in the start well")
        XCTAssertGreaterThan(pt, 0.4, "PT visits both wells: \(pt)")
    }

    func testSameSeedGivesIdenticalFramesAndCentreOfMassStaysZero() throws {
        let path = TestPaths.plugin("LennardJones")
        try requireBuilt(path)
        let system = try PluginLoader.load(path: path.path).makeSystem(parameters: "preset=lj13")
        let start = try XCTUnwrap(system.initialPositions())
        XCTAssertTrue(try system.isTranslationInvariant(at: start))
        var settings = MCMCSettings()
        settings.chains = 3
        settings.burnIn = 50
        settings.samples = 30
        settings.seed = 42
        func frames() throws -> [Double] {
            var all: [Double] = []
            _ = try ChainRunner(settings: settings).run(system: system, space: Space.forMCMC(system, at: start, fixCentreOfMass: true), start: start,
                                                       record: { x, _ in all += x })
            return all
        }
        let a = try frames(), b = try frames()
        XCTAssertEqual(a, b)
        XCTAssertEqual(a.count, 30 * 39)
        for frame in 0..<30 {
            for k in 0..<3 {
                let mean = (0..<13).reduce(0.0) { $0 + a[frame * 39 + $1 * 3 + k] } / 13
                XCTAssertEqual(mean, 0, accuracy: 1e-12)
            }
        }
        settings.seed = 43
        XCTAssertNotEqual(try frames(), a)
    }

    func testLBFGSFindsTheMinimumOfAQuadratic() {
        let result = LBFGSMinimizer().minimize([3, -2, 1]) { x in
            let v = 2 * (x[0] - 1) * (x[0] - 1) + 5 * (x[1] + 1) * (x[1] + 1) + x[2] * x[2] + x[0] * x[2]
            return (v, [4 * (x[0] - 1) + x[2], 10 * (x[1] + 1), 2 * x[2] + x[0]])
        }
        // ∇ = 0: 4(x0−1) + x2 = 0, x1 = −1, 2x2 + x0 = 0 → x0 = 8/7, x2 = −4/7
        XCTAssertEqual(result.position[0], 8.0 / 7, accuracy: 1e-7)
        XCTAssertEqual(result.position[1], -1, accuracy: 1e-7)
        XCTAssertEqual(result.position[2], -4.0 / 7, accuracy: 1e-7)
    }

    func testBatchMeansErrorOfIndependentNormals() {
        var rng = SeededGenerator(seed: 9)
        let values = (0..<20000).map { _ in rng.normal() }
        let (mean, error) = Statistics.meanAndError(values)
        // σ/√N = 0.00707; batch means estimate it within ~±35% with 20 blocks.
        XCTAssertEqual(error, 1 / 20000.0.squareRoot(), accuracy: 0.0035)
        XCTAssertLessThan(abs(mean), 4 * error)
    }
}
