import Equivariant
import Foundation
import PluginHost

/// Discrete-time paths of a batch: states[k] holds x_k of every trajectory, [batch, n·d],
/// k = 0…K. For PIS x_0 = 0 and x_K is the sample; for iDEM x_K is the noise end and x_0
/// the sample.
public struct DiffusionPaths {
    public var batch: Int
    public var states: [[Double]]
    /// Reduced energy u of each sample.
    public var sampleEnergies: [Double]
    /// ∇u at x_k (PIS with Langevin preconditioning, k = 1…K−1; empty arrays elsewhere).
    public var energyGradients: [[Double]]
    /// Log importance weight of each sample: log π̃(x) + log p_ref(τ) − log p_θ(τ).
    public var logWeights: [Double]

    /// The samples [batch, n·d].
    public var samples: [Double] { states.last! }

    /// The samples with their energies and log-weights, `stride` = n·d coordinates each.
    public func sampleBatch(stride: Int) -> SampleBatch {
        SampleBatch(stride: stride, positions: samples, energies: sampleEnergies, logWeights: logWeights)
    }
}

/// What the path forward pass hands its backward pass: the log-ratios r(τ) [batch], d log p_F /
/// d f per state [(K − first)·batch, n·d] and the clipped Langevin directions (same layout).
public struct PathForward {
    public var residuals: [Double]
    var directions: [Double]
    var clippedGradients: [Double]
}

/// The neural part of a diffusion sampler: the EGNN drift (PIS: f_θ; iDEM: the score
/// s_θ), log Z_θ and the Langevin scale table, with the processes that use them.
///
/// PIS process (docs/samplers.md, Zhang & Chen 2022; Sendera et al. 2024), t_k = k/K:
///     x_0 = 0,  x_{k+1} = x_k + f_θ(x_k, t_k) Δt + σ √Δt ε_k
///     log p_F(τ) = Σ_k log N(x_{k+1}; x_k + f_θ Δt, σ²Δt)
///     log p_B(τ | x_K) = Σ_{k≥1} log N(x_k; (t_k/t_{k+1}) x_{k+1}, σ²Δt t_k/t_{k+1})
///     r(τ) = log p_F − log p_B + u(x_K),   log w = −r.
/// With preconditioning f = NN₁(x,t) + c_k · clip(−∇u(x)). At k = 0 all particles sit at the
/// origin, where every E(n)-equivariant field vanishes: f(x_0) = 0 without a network call.
public final class DiffusionModel {
    /// Fixed but for `resolveScales`, once, when a dsm run's data are made.
    public private(set) var configuration: DiffusionConfiguration
    public let space: DiffusionSpace
    let network: NetworkField
    /// The EGNN's flat parameters (Equivariant's layout).
    public var networkParameters: [Double] {
        get { network.parameters }
        set { network.parameters = newValue }
    }
    /// dL/dθ accumulated by `backpropagate` (same layout).
    public var networkGradients: [Double] { network.gradients }
    public var networkParameterCount: Int { network.parameterCount }
    public func zeroGradients() { network.zeroGradients() }
    /// log Z_θ (trajectory balance).
    public var logZ = 0.0
    /// log Z_θ when the method learns it (tb), else nil.
    public var learnedLogZ: Double? { configuration.method.training.learnsLogZ ? logZ : nil }
    /// c_k of the Langevin term, one per time step.
    public var langevinScale: [Double]

    public init(configuration: DiffusionConfiguration, space: DiffusionSpace, threads: Int = 2) throws {
        try configuration.validate()
        self.configuration = configuration
        self.space = space
        let egnn = configuration.network(for: space)
        switch configuration.precision ?? .double {
        case .double: network = try EGNN<Double>(configuration: egnn, seed: configuration.seed, threads: threads)
        case .float: network = try SinglePrecisionField(configuration: egnn, seed: configuration.seed, threads: threads)
        }
        langevinScale = [Double](repeating: configuration.langevinInitialScale ?? 0, count: configuration.timeSteps)
        if configuration.parameterization == .edm && space.isPeriodic {
            throw DiffusionError.invalidConfiguration("the EDM parameterization scales positions by c_in(σ), which a periodic box does not allow: use the noise parameterization on a torus")
        }
    }

    public var steps: Int { configuration.timeSteps }
    public var dt: Double { 1 / Double(configuration.timeSteps) }
    public func time(_ k: Int) -> Double { Double(k) / Double(configuration.timeSteps) }

    /// Flat scalar parameters [log Z, c_0 … c_{K−1}] (own optimiser, larger learning rate).
    public var scalars: [Double] {
        get { [logZ] + langevinScale }
        set { logZ = newValue[0]; langevinScale = Array(newValue.dropFirst()) }
    }

    /// Takes a training state's parameters (network and scalars).
    public func load(_ state: TrainerState) {
        precondition(state.parameters.count == network.parameterCount && state.scalars.count == 1 + langevinScale.count,
                     "the state's parameters do not fit this model")
        network.parameters = state.parameters
        scalars = state.scalars
        if let scale = state.dataScale { sigmaData = scale }
    }

    /// Takes a state for sampling: its parameter average where it keeps one, else its parameters.
    public func loadForSampling(_ state: TrainerState) {
        load(state)
        if let average = state.averageParameters, average.count == network.parameterCount {
            network.parameters = average
        }
    }

    /// Takes the data's rms coordinate σ_d: the preconditioning's scale, and the absolute values
    /// of a configuration whose scales are relative to the data (`scalesFromData`).
    public func resolveScales(dataScale sd: Double) {
        sigmaData = sd
        configuration = configuration.resolvingScales(dataScale: sd)
    }

    /// σ_d of the EDM preconditioning (the data's rms coordinate; 1 until the data are known).
    public var sigmaData = 1.0

    /// ln β of the temperature a temperature-conditioned network draws at (0: the target, β = 1;
    /// ignored by an unconditioned one).
    public var logBeta = 0.0

    /// Whether the network takes ln β (`DiffusionConfiguration.temperatureConditioned`).
    public var isTemperatureConditioned: Bool { configuration.temperatureConditioned == true }

    /// β of the law the model draws (exp(`logBeta`) when temperature-conditioned, else 1): its
    /// importance weights are for exp(−βu).
    public var drawBeta: Double { isTemperatureConditioned ? exp(logBeta) : 1 }

    /// The bond graph's harmonic prior (`DiffusionConfiguration.bondGraph`), nil for isotropic noise.
    public private(set) lazy var harmonicPrior: HarmonicPrior? = configuration.bondGraph?.harmonicPrior()

    /// Unit noise of the diffusion for `batch` configurations: A ε under a harmonic prior, else
    /// the space's isotropic noise.
    public func noise(batch: Int, rng: inout SeededGenerator) -> [Double] {
        harmonicPrior?.noise(batch: batch, dimension: space.dimension, rng: &rng) ?? space.noise(batch: batch, rng: &rng)
    }

    /// The network's conditioning for a batch of m: `logBeta` each (empty when unconditioned).
    func conditions(_ m: Int) -> [Double] {
        isTemperatureConditioned ? [Double](repeating: logBeta, count: m) : []
    }

    /// The network's field at positions [m, n·d] and times [m] (PIS: NN₁ of the drift;
    /// iDEM: the score s_θ), for inspection and tests.
    public func networkField(positions: [Double], times: [Double]) -> [Double] {
        network.forward(positions: positions, times: times, conditions: conditions(times.count))
    }

    // MARK: - PIS drift

    /// clip(−∇u), projected; each particle's d-vector norm-clipped at `langevinClip`.
    func clippedScore(_ gradient: [Double], batch: Int) -> [Double] {
        var g = gradient.map { -$0 }
        space.project(&g)
        space.clipParticles(&g, maxNorm: configuration.langevinClip)
        return g
    }

    /// f at states of several time steps at once: `x` [m, n·d], `stepIndex` [m].
    func drift(_ x: [Double], stepIndex: [Int], energyGradient: [Double]?) -> (drift: [Double], clipped: [Double]) {
        var f = network.forward(positions: x, times: stepIndex.map { time($0) }, conditions: conditions(stepIndex.count))
        var clipped: [Double] = []
        if configuration.langevinPreconditioning, let energyGradient {
            clipped = clippedScore(energyGradient, batch: stepIndex.count)
            let stride = space.coordinateCount
            for m in 0..<stepIndex.count {
                let c = langevinScale[stepIndex[m]]
                for i in 0..<stride { f[m * stride + i] += c * clipped[m * stride + i] }
            }
        }
        return (f, clipped)
    }

    // MARK: - PIS paths

    /// The first step whose drift is computed: 1 when x_0 = 0 (free/centred: every
    /// equivariant field vanishes there), 0 on the torus (x_0 is uniform).
    var firstDriftStep: Int { space.isPeriodic ? 0 : 1 }

    /// Runs the forward policy for `batch` trajectories. With `exploration` e > 0 the noise
    /// standard deviation is √(σ² + e²) (off-policy); the stored log-weights are always
    /// those of the policy itself (exact only for e = 0).
    ///
    /// Periodic spaces: x_0 ~ U(box) (log p_F gets −log V^n), every step is wrapped, and the
    /// kernels are wrapped Gaussians (`DiffusionSpace.logKernel`).
    public func samplePIS(batch: Int, system: EnergySystem, rng: inout SeededGenerator,
                          exploration: Double = 0) throws -> DiffusionPaths {
        let stride = space.coordinateCount, K = steps, sigma = configuration.noiseScale
        let precondition = configuration.langevinPreconditioning
        var x = space.initialStates(batch: batch, rng: &rng)
        var states = [x]
        var gradients: [[Double]] = []
        var logPF = [Double](repeating: -space.logVolume, count: batch)
        let variance = sigma * sigma * dt
        let scale = (sigma * sigma + exploration * exploration).squareRoot() * dt.squareRoot()
        var r = [Double](repeating: 0, count: batch * stride)
        for k in 0..<K {
            var f = [Double](repeating: 0, count: batch * stride)
            if k >= firstDriftStep {
                var g: [Double]? = nil
                if precondition {
                    g = try system.evaluate(x, batch: batch, withGradients: true).gradients
                    gradients.append(g!)
                } else {
                    gradients.append([])
                }
                f = drift(x, stepIndex: [Int](repeating: k, count: batch), energyGradient: g).drift
            } else {
                gradients.append([])
            }
            let e = space.noise(batch: batch, rng: &rng)
            var next = x
            for j in next.indices {
                next[j] = x[j] + f[j] * dt + scale * e[j]
                r[j] = next[j] - x[j] - f[j] * dt
            }
            for b in 0..<batch { logPF[b] += space.logKernel(&r, configuration: b, variance: variance) }
            space.constrain(&next)
            guard next.allSatisfy(\.isFinite) else { throw DiffusionError.divergedPositions(timeStep: k) }
            x = next
            states.append(x)
        }
        let energies = try system.evaluate(x, batch: batch, withGradients: false).energies
        let logPB = backwardLogDensity(states, batch: batch)
        let logWeights = (0..<batch).map { -energies[$0] + logPB[$0] - logPF[$0] }
        return DiffusionPaths(batch: batch, states: states, sampleEnergies: energies,
                              energyGradients: gradients, logWeights: logWeights)
    }

    /// log p_B(τ | x_K) of the reference process.
    ///
    /// - free, centred: the pinned Brownian bridge to 0,
    ///   Σ_{k≥1} log N(x_k; (t_k/t_{k+1}) x_{k+1}, σ²Δt t_k/t_{k+1}).
    /// - periodic: the reference starts uniform and takes wrapped Brownian steps, which leaves
    ///   the uniform law invariant, so its time reversal is the same wrapped Brownian motion:
    ///   Σ_{k=0}^{K−1} log WN(x_k − x_{k+1}; σ²Δt), and its x_K-marginal is uniform.
    public func backwardLogDensity(_ states: [[Double]], batch: Int) -> [Double] {
        let stride = space.coordinateCount, sigma = configuration.noiseScale
        var out = [Double](repeating: 0, count: batch)
        var r = [Double](repeating: 0, count: batch * stride)
        for k in (space.isPeriodic ? 0 : 1)..<steps {
            let ratio = space.isPeriodic ? 1 : time(k) / time(k + 1), variance = sigma * sigma * dt * ratio
            let a = states[k], b = states[k + 1]
            for j in r.indices { r[j] = a[j] - ratio * b[j] }
            for t in 0..<batch { out[t] += space.logKernel(&r, configuration: t, variance: variance) }
        }
        return out
    }

    /// Trajectories made by the reference's backward process from given samples x_K
    /// (the off-policy trajectories of the replay buffer). Periodic: wrapped Brownian steps
    /// down to x_0.
    public func backwardPaths(from samples: [Double], energies: [Double], system: EnergySystem,
                              rng: inout SeededGenerator) throws -> DiffusionPaths {
        let stride = space.coordinateCount, K = steps, sigma = configuration.noiseScale
        let batch = energies.count, first = firstDriftStep
        var states = [[Double]](repeating: [], count: K + 1)
        states[K] = samples
        states[0] = [Double](repeating: 0, count: batch * stride)
        for k in Swift.stride(from: K - 1, through: first == 0 ? 0 : 1, by: -1) {
            let ratio = first == 0 ? 1 : time(k) / time(k + 1), sd = (sigma * sigma * dt * ratio).squareRoot()
            let e = space.noise(batch: batch, rng: &rng)
            var x = states[k + 1]
            for j in x.indices { x[j] = ratio * x[j] + sd * e[j] }
            space.constrain(&x)
            states[k] = x
        }
        var gradients: [[Double]] = [[Double]](repeating: [], count: K)
        if configuration.langevinPreconditioning {
            let all = Array(states[first..<K].joined())
            let g = try system.evaluate(all, batch: batch * (K - first), withGradients: true).gradients
            for k in first..<K { gradients[k] = Array(g[((k - first) * batch * stride)..<((k - first + 1) * batch * stride)]) }
        }
        var paths = DiffusionPaths(batch: batch, states: states, sampleEnergies: energies,
                                   energyGradients: gradients, logWeights: [])
        paths.logWeights = pathResiduals(paths).residuals.map { -$0 }
        return paths
    }

    /// r(τ) = log p_F(τ) − log p_B(τ | x_K) + u(x_K) for every path, with one network
    /// forward over all states k = first…K−1; returns what `backpropagate` needs with them.
    /// (The network keeps its own activations for its next `backward`.)
    public func pathResiduals(_ paths: DiffusionPaths) -> PathForward {
        let stride = space.coordinateCount, K = steps, batch = paths.batch, sigma = configuration.noiseScale
        let first = firstDriftStep
        let variance = sigma * sigma * dt
        let all = Array(paths.states[first..<K].joined())
        let index = (first..<K).flatMap { [Int](repeating: $0, count: batch) }
        let gradient: [Double]? = configuration.langevinPreconditioning ? Array(paths.energyGradients[first..<K].joined()) : nil
        let (f, clipped) = drift(all, stepIndex: index, energyGradient: gradient)
        var residualDirections = [Double](repeating: 0, count: f.count)
        var logPF = [Double](repeating: -space.logVolume, count: batch)
        var r = [Double](repeating: 0, count: batch * stride)
        if first == 1 {  // k = 0: zero drift at the origin.
            for j in r.indices { r[j] = paths.states[1][j] - paths.states[0][j] }
            for b in 0..<batch { logPF[b] += space.logKernel(&r, configuration: b, variance: variance) }
        }
        for k in first..<K {
            let x = paths.states[k], y = paths.states[k + 1]
            let offset = (k - first) * batch * stride
            for j in r.indices { r[j] = y[j] - x[j] - f[offset + j] * dt }
            for b in 0..<batch { logPF[b] += space.logKernel(&r, configuration: b, variance: variance) }
            for j in r.indices { residualDirections[offset + j] = r[j] / (sigma * sigma) }  // d log p / d f
        }
        let logPB = backwardLogDensity(paths.states, batch: batch)
        return PathForward(residuals: (0..<batch).map { logPF[$0] - logPB[$0] + paths.sampleEnergies[$0] },
                           directions: residualDirections, clippedGradients: clipped)
    }

    /// Back-propagates dL/dr (per path) through `forward` (this model's last `pathResiduals`):
    /// adds dL/dθ into `network.gradients` and returns dL/dc (Langevin table, K entries).
    public func backpropagate(_ forward: PathForward, residualGradient dr: [Double]) -> [Double] {
        let stride = space.coordinateCount, batch = forward.residuals.count, K = steps, first = firstDriftStep
        let clippedGradients = forward.clippedGradients
        precondition(dr.count == batch)
        var outputGradient = forward.directions
        for k in first..<K { for b in 0..<batch {
            let base = ((k - first) * batch + b) * stride
            for i in 0..<stride { outputGradient[base + i] *= dr[b] }
        } }
        network.backward(outputGradient: outputGradient)
        var tableGradient = [Double](repeating: 0, count: K)
        if configuration.langevinPreconditioning {
            for k in first..<K { for b in 0..<batch {
                let base = ((k - first) * batch + b) * stride
                var s = 0.0
                for i in 0..<stride { s += outputGradient[base + i] * clippedGradients[base + i] }
                tableGradient[k] += s
            } }
        }
        return tableGradient
    }

    // MARK: - iDEM (VE process)

    /// σ(t) = σ_min^(1−t) σ_max^t.
    public func sigma(_ t: Double) -> Double {
        pow(configuration.sigmaMin, 1 - t) * pow(configuration.sigmaMax, t)
    }

    /// s_θ = scoreScale(t) · network(x, t): 1 for iDEM (the network is the score, DEM), and
    /// −1/√h(t) for dsm, whose network predicts the noise ε (s = −ε_θ/√h): its output stays of
    /// order one at every noise level, where a direct score spans 10⁵ (σ_min = 10⁻⁵) to 0.3.
    public func scoreScale(_ t: Double) -> Double {
        configuration.method.training.predictsNoise(configuration)
            ? -1 / max(noiseVariance(t), 1e-300).squareRoot() : 1
    }

    /// s_θ(x, t) for a batch.
    public func score(positions x: [Double], times: [Double]) -> [Double] {
        if isPreconditioned { return score(positions: x, sigmas: times.map(noiseLevel)) }
        var s = network.forward(positions: x, times: times, conditions: conditions(times.count))
        let stride = space.coordinateCount
        for b in times.indices {
            let c = scoreScale(times[b])
            if c != 1 { for i in 0..<stride { s[b * stride + i] *= c } }
        }
        return s
    }

    /// Variance of the VE noising kernel x_t = x_0 + √h(t) ε: h(t) = σ(t)² − σ_min² (DEM), so
    /// that h(0) = 0 and the data are the t = 0 marginal exactly.
    public func noiseVariance(_ t: Double) -> Double {
        let s = sigma(t), m = configuration.sigmaMin
        return max(0, s * s - m * m)
    }

    /// Δσ²_k = σ(t_k)² − σ(t_{k−1})² = ∫ g² dt over step k of the VE grid (the exact increment
    /// the reverse SDE and the probability flow use; Euler–Maruyama's g(t_k)²Δt, with
    /// g² = dσ²/dt, overshoots it by 50 % at 30 geometric steps).
    public func varianceIncrement(_ k: Int) -> Double {
        let a = sigma(time(k)), b = sigma(time(k - 1))
        return a * a - b * b
    }

    /// Draws from the VE prior — N(0, σ_max²) in the space's D' dimensions, or uniform on a
    /// torus — with their log-densities.
    public func drawPrior(batch: Int, rng: inout SeededGenerator) -> (x: [Double], logDensity: [Double]) {
        if space.isPeriodic {
            let x = space.initialStates(batch: batch, rng: &rng)
            return (x, priorLogDensity(x))
        }
        let x = space.noise(batch: batch, rng: &rng).map { $0 * configuration.sigmaMax }
        return (x, priorLogDensity(x))
    }

    /// log p_prior of configurations [batch, D]: N(0, σ_max²) in the space's D' dimensions, or
    /// uniform on a torus.
    public func priorLogDensity(_ x: [Double]) -> [Double] {
        let stride = space.coordinateCount, batch = x.count / stride
        if space.isPeriodic { return [Double](repeating: -space.logVolume, count: batch) }
        let smax = configuration.sigmaMax
        return (0..<batch).map { b -> Double in
            var sq = 0.0
            for i in 0..<stride { sq += x[b * stride + i] * x[b * stride + i] }
            return space.logNormal(squaredDistance: sq, variance: smax * smax)
        }
    }

    /// Reverse SDE (the "reverse diffusion" discretisation of Song et al. 2021: drift Δσ²_k s_θ,
    /// noise variance Δσ²_k = σ(t_k)² − σ(t_{k−1})², which equals Euler–Maruyama's g²Δt as K → ∞)
    /// from x_K ~ N(0, σ_max²) (periodic: x_K ~ U(box)) down to
    /// t = 0, with the path-measure importance weight (docs/samplers.md, iDEM):
    ///     log w = −u(x_0) + Σ log q(x_{k+1}|x_k) − log p_prior(x_K) − Σ log p_θ(x_k|x_{k+1}),
    ///     q = N(x_k, σ(t_{k+1})² − σ(t_k)²),  p_θ = N(x_{k+1} + Δσ² s_θ, Δσ²) at t_{k+1}
    /// (wrapped Gaussians on the torus). The returned `states` run from noise to sample
    /// (states.last = x_0).
    /// `score` replaces the network's s_θ (an oracle score in tests); default: the network.
    /// Without `keepStates` only the samples are kept (states = [x_0]).
    public func sampleReverseSDE(batch: Int, system: EnergySystem, rng: inout SeededGenerator,
                                 keepStates: Bool = true,
                                 score field: (([Double], [Double]) -> [Double])? = nil) throws -> DiffusionPaths {
        let stride = space.coordinateCount, K = steps
        var (x, logPrior) = drawPrior(batch: batch, rng: &rng)
        var logW = logPrior.map { -$0 }
        var states = [x]
        var rModel = [Double](repeating: 0, count: batch * stride)
        var rForward = rModel
        for k in Swift.stride(from: K, through: 1, by: -1) {
            let t = time(k)
            let times = [Double](repeating: t, count: batch)
            let score = field?(x, times) ?? self.score(positions: x, times: times)
            let e = space.noise(batch: batch, rng: &rng)
            var next = x
            let variance = varianceIncrement(k)
            let sd = variance.squareRoot()
            for j in next.indices {
                next[j] = x[j] + variance * score[j] + sd * e[j]
                rModel[j] = next[j] - x[j] - variance * score[j]
                rForward[j] = x[j] - next[j]
            }
            for b in 0..<batch {
                logW[b] += space.logKernel(&rForward, configuration: b, variance: variance)
                    - space.logKernel(&rModel, configuration: b, variance: variance)
            }
            space.constrain(&next)
            guard next.allSatisfy(\.isFinite) else { throw DiffusionError.divergedPositions(timeStep: k) }
            x = next
            if keepStates { states.append(x) }
        }
        if !keepStates { states = [x] }
        let energies = try system.evaluate(x, batch: batch, withGradients: false).energies
        for b in 0..<batch { logW[b] -= drawBeta * energies[b] }
        return DiffusionPaths(batch: batch, states: states, sampleEnergies: energies, energyGradients: [],
                              logWeights: logW)
    }

    /// Draws samples with the model's own process (PIS or reverse SDE), in chunks of `chunk`.
    /// `probabilityFlow`: VE models draw by the probability-flow ODE with exact weights
    /// (`sampleProbabilityFlow`) instead of the reverse SDE.
    public func generate(count: Int, system: EnergySystem, rng: inout SeededGenerator, chunk: Int = 256,
                         probabilityFlow: Bool = false) throws -> (samples: [Double], energies: [Double], logWeights: [Double]) {
        var samples: [Double] = [], energies: [Double] = [], logWeights: [Double] = []
        var done = 0
        while done < count {
            let m = min(chunk, count - done)
            let paths = configuration.method.usesVEProcess
                ? (probabilityFlow ? try sampleProbabilityFlow(batch: m, system: system, rng: &rng)
                                   : try sampleReverseSDE(batch: m, system: system, rng: &rng, keepStates: false))
                : try samplePIS(batch: m, system: system, rng: &rng)
            samples += paths.samples
            energies += paths.sampleEnergies
            logWeights += paths.logWeights
            done += m
        }
        return (samples, energies, logWeights)
    }
}
