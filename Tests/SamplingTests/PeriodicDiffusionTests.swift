import Equivariant
import Foundation
import PluginHost
import Sampling
import TestSupport
import XCTest

/// Diffusion samplers on the torus: wrapped kernels, exact weights on known targets,
/// symmetries of the drift, gradients, training; g(r).
final class PeriodicDiffusionTests: XCTestCase {
    static var wells: Plugin?

    /// docs/examples/periodic_wells.c: u = κ Σ (1 − cos 2πx/L), log Z = nd(log L − κ + log I₀(κ)).
    func wellsSystem(_ parameters: String) throws -> EnergySystem {
        if Self.wells == nil {
            let source = TestPaths.repositoryRoot.appendingPathComponent("docs/examples/periodic_wells.c")
            let library = try compileCPlugin(source: source, name: "periodic-wells",
                                             in: TestPaths.temporaryDirectory("periodic-wells"))
            Self.wells = try PluginLoader.load(path: library.path)
        }
        return try Self.wells!.makeSystem(parameters: parameters)
    }

    func configuration(_ method: DiffusionMethod) -> DiffusionConfiguration {
        var c = DiffusionConfiguration(method: method)
        c.timeSteps = 10
        c.hidden = 16
        c.layers = 2
        c.batch = 32
        c.localSearchEvery = 0
        c.noiseScale = 1
        return c
    }

    /// log of the 1-D wrapped normal by brute force over 41 images.
    func bruteForceLogWrapped(_ r: Double, variance: Double, edge: Double) -> Double {
        var sum = 0.0
        for k in -20...20 { let y = r + Double(k) * edge; sum += exp(-y * y / (2 * variance)) }
        return log(sum) - 0.5 * log(2 * Double.pi * variance)
    }

    func testPeriodicSpaceWrapsAndItsKernelIsTheWrappedGaussian() {
        let box = [2.0, 3.0]
        let space = DiffusionSpace(particles: 3, box: box)
        XCTAssertEqual(space.effectiveDimension, 6)
        assertClose(space.logVolume, 3 * log(6), absolute: 1e-12)
        var x = [-0.5, 3.2, 4.1, -6.0, 1.0, 2.999999]
        space.constrain(&x)
        for (j, v) in x.enumerated() { XCTAssertTrue(v >= 0 && v < box[j % 2], "\(v) not in [0, \(box[j % 2]))") }
        assertClose(x[0], 1.5, absolute: 1e-12); assertClose(x[1], 0.2, absolute: 1e-12)
        assertClose(x[3], 0, absolute: 1e-12)
        var rng = SeededGenerator(seed: 4)
        // σ ≪ L (single image), σ ~ L/3 and σ > L (several images).
        for s in [0.05, 0.6, 2.5] {
            let variance = s * s
            for _ in 0..<20 {
                // Draws of the kernel (±3σ) around an arbitrary image.
                let raw = (0..<6).map { j in rng.normal() * 3 * s + Double(Int(rng.next() % 7) - 3) * box[j % 2] }
                var r = raw
                let value = space.logKernel(&r, configuration: 0, variance: variance)
                let expected = (0..<6).reduce(0.0) { $0 + bruteForceLogWrapped(raw[$1], variance: variance, edge: box[$1 % 2]) }
                assertClose(value, expected, relative: 1e-12, absolute: 1e-9, "σ = \(s)")
                // ρ/s² = ∂ log p/∂m = −∂ log p/∂r, by central differences.
                for j in 0..<6 {
                    let h = 1e-6
                    var plus = raw; plus[j] += h
                    var minus = raw; minus[j] -= h
                    let derivative = (space.logKernel(&plus, configuration: 0, variance: variance)
                                      - space.logKernel(&minus, configuration: 0, variance: variance)) / (2 * h)
                    assertClose(r[j] / variance, -derivative, relative: 1e-5, absolute: 1e-5, "σ = \(s), coordinate \(j)")
                }
            }
        }
    }

    /// Zero drift on u ≡ 0: p_F = U(box)·Π WN and p_B = Π WN cancel, so every log w is
    /// log Z = n·d·log L exactly and ESS = N.
    func testWeightsAreExactForTheUniformTargetOnTheTorus() throws {
        let system = try wellsSystem("kappa=0 box=2.5 particles=3 dimension=2")
        let space = DiffusionSpace(particles: 3, box: system.box!)
        let model = try DiffusionModel(configuration: configuration(.tb), space: space)
        model.networkParameters = model.networkParameters.map { _ in 0 }
        var rng = SeededGenerator(seed: 3)
        let paths = try model.samplePIS(batch: 64, system: system, rng: &rng)
        let logZ = 6 * log(2.5)
        for w in paths.logWeights { assertClose(w, logZ, absolute: 1e-9) }
        XCTAssertEqual(ImportanceWeights(logWeights: paths.logWeights).effectiveSampleSize, 64, accuracy: 1e-9)
        for x in paths.samples { XCTAssertTrue(x >= 0 && x < 2.5) }
        for (r, w) in zip(model.pathResiduals(paths).residuals, paths.logWeights) { assertClose(-r, w, absolute: 1e-9) }
        // Backward (off-policy) paths of the stationary reference give the same exact weights.
        let back = try model.backwardPaths(from: paths.samples, energies: paths.sampleEnergies, system: system, rng: &rng)
        for w in back.logWeights { assertClose(w, logZ, absolute: 1e-9) }
    }

    /// Von Mises wells: log Ẑ of the untrained samplers (PIS and the iDEM reverse SDE, whose
    /// prior is uniform) agrees with the quadrature log Z within its error bar.
    func testLogZOfPeriodicWellsMatchesTheAnalyticValue() throws {
        let kappa = 0.7, edge = 2.0
        let system = try wellsSystem("kappa=\(kappa) box=\(edge) particles=2 dimension=2")
        // log I₀(κ) by the trapezoid rule on the periodic integrand (spectrally accurate).
        let m = 2000
        let i0 = (0..<m).reduce(0.0) { $0 + exp(kappa * cos(2 * Double.pi * Double($1) / Double(m))) } / Double(m)
        let logZ = 4 * (log(edge) - kappa + log(i0))
        for method in [DiffusionMethod.tb, .idem] {
            var c = configuration(method)
            c.sigmaMin = 0.01
            c.sigmaMax = 2
            let model = try DiffusionModel(configuration: c, space: DiffusionSpace(particles: 2, box: system.box!))
            var rng = SeededGenerator(seed: 8)
            let weights = ImportanceWeights(logWeights: try model.generate(count: 3000, system: system, rng: &rng).logWeights)
            print("\(method): log Ẑ \(weights.logZ) ± \(weights.logZError()) vs \(logZ), ESS/N \(weights.effectiveSampleFraction)")
            XCTAssertLessThan(abs(weights.logZ - logZ), 4 * weights.logZError() + 0.01, "\(method)")
            XCTAssertLessThanOrEqual(weights.meanLogWeight, logZ + 0.01, "\(method): the ELBO bounds log Z")
        }
    }

    /// The drift network on the torus: invariant under translations modulo the box,
    /// equivariant under particle permutations and the cubic box's axis swaps and reflections.
    func testPeriodicDriftSymmetries() throws {
        try checkPeriodicDriftSymmetries(smooth: false)
        try checkPeriodicDriftSymmetries(smooth: true)
    }

    func checkPeriodicDriftSymmetries(smooth: Bool) throws {
        let n = 5, d = 3, edge = 3.0
        var c = configuration(.tb)
        c.graphCutoff = 1.4
        c.smoothCutoff = smooth
        let model = try DiffusionModel(configuration: c, space: DiffusionSpace(particles: n, box: [edge, edge, edge]))
        var rng = SeededGenerator(seed: 21)
        model.networkParameters = model.networkParameters.map { _ in 0.3 * rng.normal() }
        let x = (0..<(n * d)).map { _ in rng.uniform() * edge }
        let t = [0.4]
        let f = model.networkField(positions: x, times: t)
        XCTAssertGreaterThan(f.map(abs).max()!, 1e-3, "a non-trivial field")
        func check(_ y: [Double], _ expected: [Double], _ what: String) {
            let g = model.networkField(positions: y, times: t)
            for j in g.indices { assertClose(g[j], expected[j], relative: 1e-9, absolute: 1e-10, what) }
        }
        // Translation by a shift, then wrapped.
        var shifted = x
        for j in shifted.indices { shifted[j] += [1.7, -2.9, 4.4][j % d] }
        Space.wrap(&shifted, box: [edge, edge, edge])
        check(shifted, f, "translation modulo the box")
        // Permutation of particles.
        let perm = [3, 0, 4, 1, 2]
        let permuted = perm.flatMap { Array(x[($0 * d)..<($0 * d + d)]) }
        check(permuted, perm.flatMap { Array(f[($0 * d)..<($0 * d + d)]) }, "permutation")
        // Axis swap x ↔ y and reflection z → L − z (symmetries of the cube).
        var swapped = x, expected = f
        for i in 0..<n {
            let b = i * d
            swapped[b] = x[b + 1]; swapped[b + 1] = x[b]; swapped[b + 2] = edge - x[b + 2]
            expected[b] = f[b + 1]; expected[b + 1] = f[b]; expected[b + 2] = -f[b + 2]
        }
        check(swapped, expected, "cubic symmetry")
    }

    /// dL/dθ and dL/dc of the TB loss through wrapped kernels (several images summed) against
    /// central finite differences.
    func testPeriodicPathGradientsMatchFiniteDifferences() throws {
        let system = try wellsSystem("kappa=1.5 box=1.5 particles=3 dimension=2")
        var c = configuration(.tb)
        c.langevinPreconditioning = true
        c.timeSteps = 4
        c.batch = 4
        c.noiseScale = 1.2  // s = σ√Δt = 0.6 > L/20: the image sum is active
        let model = try DiffusionModel(configuration: c, space: DiffusionSpace(particles: 3, box: system.box!))
        var rng = SeededGenerator(seed: 5)
        model.networkParameters = model.networkParameters.map { $0 + 0.05 * rng.normal() }
        model.langevinScale = model.langevinScale.indices.map { 0.1 + 0.05 * Double($0) }
        model.logZ = 0.4
        let paths = try model.samplePIS(batch: 4, system: system, rng: &rng, exploration: 0.3)
        func loss() -> Double { PathObjective.trajectoryBalance(residuals: model.pathResiduals(paths).residuals, logZ: model.logZ).loss }
        let forward = model.pathResiduals(paths)
        let objective = PathObjective.trajectoryBalance(residuals: forward.residuals, logZ: model.logZ)
        model.zeroGradients()
        let table = model.backpropagate(forward, residualGradient: objective.residualGradient)
        let analytic = model.networkGradients
        let h = 1e-6
        for k in 0..<4 {
            model.langevinScale[k] += h; let plus = loss()
            model.langevinScale[k] -= 2 * h; let minus = loss()
            model.langevinScale[k] += h
            assertClose(table[k], (plus - minus) / (2 * h), relative: 1e-5, absolute: 1e-6, "table \(k)")
        }
        let count = model.networkParameterCount
        for p in [0, 7, count / 3, count / 2, count - 1, count - 5] {
            let original = model.networkParameters[p]
            model.networkParameters[p] = original + h; let plus = loss()
            model.networkParameters[p] = original - h; let minus = loss()
            model.networkParameters[p] = original
            assertClose(analytic[p], (plus - minus) / (2 * h), relative: 1e-4, absolute: 1e-7, "parameter \(p)")
        }
    }

    /// A short TB run with Langevin preconditioning on the wells lowers the loss and raises ESS.
    func testShortPeriodicTrainingDecreasesTheLoss() throws {
        let system = try wellsSystem("kappa=3 box=2 particles=2 dimension=2")
        var c = configuration(.tb)
        c.langevinPreconditioning = true
        c.exploration = 0
        c.learningRate = 3e-3
        let model = try DiffusionModel(configuration: c, space: DiffusionSpace(particles: 2, box: system.box!))
        let trainer = DiffusionTrainer(model: model, system: system, explorationHorizon: 1)
        var losses: [Double] = []
        for _ in 0..<120 { losses.append(try trainer.step().loss) }
        let first = losses.prefix(20).reduce(0, +) / 20, last = losses.suffix(20).reduce(0, +) / 20
        print("periodic wells TB: mean loss first 20 steps \(first), last 20 \(last)")
        XCTAssertLessThan(last, 0.5 * first)
    }

    // MARK: - g(r)

    func testRadialDistributionOfUniformPointsIsOne() {
        var rng = SeededGenerator(seed: 2)
        let box = [4.0, 4.0, 4.0], n = 20, frames = 400
        let x = (0..<(frames * n * 3)).map { _ in rng.uniform() * 4 }
        let rdf = RadialDistribution.compute(positions: x, particles: n, box: box, bins: 20)
        var chi = 0.0
        for b in 2..<20 {  // the first bins hold few pairs
            XCTAssertLessThan(abs(rdf.g[b] - 1), 5 * rdf.error[b] + 1e-9, "bin \(b): g \(rdf.g[b]) ± \(rdf.error[b])")
            chi += pow((rdf.g[b] - 1) / rdf.error[b], 2)
        }
        XCTAssertLessThan(chi / 18, 2.5)
        // Importance-weighted with uniform weights: the same mean.
        let weighted = RadialDistribution.compute(positions: x, particles: n, box: box, bins: 20,
                                                  weights: [Double](repeating: 1.0 / Double(frames), count: frames))
        for b in 0..<20 { assertClose(weighted.g[b], rdf.g[b], relative: 1e-12, absolute: 1e-12) }
    }

    /// Three particles in a 10 × 10 box: distances 1, 2 (minimum image across the edge) and 3.
    func testRadialDistributionByHand() {
        let x = [1.0, 1.0, 2.0, 1.0, 9.0, 1.0]
        let rdf = RadialDistribution.compute(positions: x, particles: 3, box: [10, 10], bins: 5, maxRadius: 5)
        // g_b = count_b / (3 pairs · π((b+1)² − b²) / 100), bins [b, b+1).
        let ideal = (0..<5).map { 3 * Double.pi * Double(2 * $0 + 1) / 100 }
        let counts = [0.0, 1, 1, 1, 0]
        for b in 0..<5 { assertClose(rdf.g[b], counts[b] / ideal[b], relative: 1e-12, absolute: 1e-12, "bin \(b)") }
        assertClose(rdf.radii[2], 2.5, absolute: 1e-12)
    }

    func testWeightedEstimateUsesTheDeltaMethod() {
        let values = [1.0, 2.0, 4.0], weights = [0.5, 0.25, 0.25]
        let (mean, error) = WeightedEstimate.meanAndError(values, weights: weights)
        assertClose(mean, 2, absolute: 1e-12)
        assertClose(error, (0.25 * 1 + 0.0625 * 0 + 0.0625 * 4).squareRoot(), absolute: 1e-12)
    }
}
