import Equivariant
import Foundation

/// How a score model's network output becomes the score (dsm).
public enum ScoreParameterization: String, Codable, Sendable, CaseIterable {
    /// The network predicts the noise ε of x_t = x_0 + √h ε: s = −ε_θ/√h(t).
    case noise
    /// EDM preconditioning: the network F is the scaled residual of a denoiser D(x; σ).
    case edm
}

/// The distribution of training noise levels of an EDM-preconditioned model.
public enum NoiseLevelDistribution: Codable, Equatable, Sendable {
    /// ln σ uniform over [ln σ_min, ln σ_max].
    case logUniform
    /// ln σ ~ N(mean, std²), truncated to [σ_min, σ_max] (EDM's P_mean, P_std).
    case logNormal(mean: Double, std: Double)
    /// With probability `uniform` log-uniform, else the log-normal (coverage of every σ, with the
    /// small σ that set a cluster's energy weighted up).
    case mixture(mean: Double, std: Double, uniform: Double)
}

/// Everything that defines a diffusion sampler and its training. Typed, nested, Codable:
/// it goes into the checkpoint as is.
public struct DiffusionConfiguration: Codable, Equatable, Sendable {
    public var method: DiffusionMethod
    /// Time steps K of the discretised process (T = 1, Δt = 1/K).
    public var timeSteps = 50
    /// PIS (tb, logvar): diffusion coefficient σ of the pinned-Brownian reference (x_T ~ N(0, σ²T)).
    public var noiseScale = 2.0
    /// The network's engine: float (EGNN<Float>, SIMD kernels) or double; nil: double
    /// (checkpoints written before the field existed, and the library's default for tests).
    public var precision: NetworkPrecision? = nil
    /// EGNN width and depth.
    public var hidden = 64
    public var layers = 3
    /// EGNN coordinate-weight bound range·tanh(φ) (EGNN `tanh=True`; DEM's configs use it);
    /// nil: unbounded. Keeps an untrained network's reverse SDE from blowing up.
    public var tanhRange: Double? = nil
    /// Trajectories (tb, logvar) or regression points (idem) per step.
    public var batch = 64
    public var learningRate = 1e-3
    /// Learning rate of log Z_θ (larger, as in gfn-diffusion's flow learning rate).
    public var scalarLearningRate = 0.1
    /// Learning rate of the Langevin scale table c_k.
    public var langevinLearningRate = 1e-2
    /// Global gradient-norm clip of the network's parameters.
    public var gradientNormClip = 100.0
    /// f = NN₁(x,t) + c(t)·clip(∇log π(x)), c a learned per-time-step scalar table.
    public var langevinPreconditioning = false
    /// Initial value of every c_k (0: the drift starts as the network alone). σ²/2 makes the
    /// untrained process an unadjusted Langevin chain for π with step σ²Δt/2 (f = (σ²/2)∇log π
    /// with noise σ√Δt).
    public var langevinInitialScale: Double? = nil
    /// Norm clip of each particle's d-vector of ∇log π in the Langevin term (per particle, as
    /// DEM clips its score targets; a per-configuration clip weakens accurate forces).
    public var langevinClip = 20.0
    /// Exploration: extra standard deviation added to the forward policy's noise while
    /// generating training trajectories (decays linearly to 0 over the run).
    public var exploration = 0.2
    /// Replay buffer capacity (terminal samples, FIFO).
    public var bufferCapacity = 10_000
    /// Rank-prioritised sampling: p(rank r) ∝ 1/(k·N + r) (gfn-diffusion's rank weighting).
    public var rankPriority = 0.01
    /// Every odd step trains on backward trajectories from buffer samples (off-policy).
    public var useBuffer = true
    /// MALA local search on buffer samples every this many steps (0: off).
    public var localSearchEvery = 10
    /// MALA steps per local search.
    public var localSearchSteps = 20
    /// iDEM: VE noise range σ(t) = σ_min^(1−t) σ_max^t.
    public var sigmaMin = 1e-3
    public var sigmaMax = 3.0
    /// iDEM, tsm: norm clip of each particle's d-vector of the score target (DEM: 20).
    public var scoreClip = 20.0
    /// dsm: the network predicts the noise ε (s_θ = −ε_θ/√h; nil or true) or the score itself
    /// (false; loss λ(t)|s_θ + ε/√h|² with λ = h, the same objective with another output scale).
    public var predictsNoise: Bool? = nil
    /// dsm: blend in the target-score identity ∇log p_t(x_t) = E[−∇u(x_0) | x_t] (the force
    /// at the data point, one gradient evaluation per regression point): target =
    /// a·(−ε/√h) + (1 − a)·(−∇u(x_0)) with a = h/(h + σ*²). Both terms are unbiased for the same
    /// score; the force term has small variance where σ ≪ σ* and the noise term where σ ≫ σ*.
    /// nil: plain denoising score matching.
    public var forceBlendSigma: Double? = nil
    /// dsm: how the parallel-tempering data are made (target-temperature frames; every
    /// evaluation counts in the training budget). nil for the other methods, and when the data
    /// come from a trajectory file (`dataFile`).
    public var data: MCMCSettings? = nil
    /// dsm: the data were read from a trajectory (e.g. `ensemble sample`'s Langevin replica
    /// exchange for a molecule), not made by parallel tempering; what it cost is in the budget.
    public var dataFile: TrajectoryData? = nil
    /// A type per particle, one-hot in the EGNN's node features: atom identity for a molecule
    /// (alanine dipeptide is not permutation-symmetric). nil: identical particles (checkpoints
    /// written before the field existed decode to nil, the network they were trained with).
    public var nodeTypes: [Int]? = nil
    public var seed: UInt64 = 1
    /// Periodic boxes: the EGNN's interaction-graph cutoff (minimum-image distance of the
    /// input positions, < L/2); nil: every pair at its minimum image.
    public var graphCutoff: Double? = nil
    /// With a graph cutoff: weight each edge by the cosine envelope ½(cos(πr/r_c) + 1), so the
    /// drift is continuous when a pair crosses the cutoff (nil/false: hard cutoff).
    public var smoothCutoff: Bool? = nil
    /// tb/logvar: training reward only — u above this level enters the loss as
    /// u₀ + log(1 + u − u₀), so r⁻¹² overlaps (u ~ 10¹²) do not swamp the batch or overflow
    /// its squared residual. The importance weights always use the true u. nil: no
    /// regularisation (checkpoints written before the field existed decode to nil).
    public var energyClip: Double? = nil
    /// dsm: how the network's output becomes the score. nil or `.noise`: s_θ = −ε_θ/√h (or the
    /// score itself with `predictsNoise == false`); `.edm`: EDM's preconditioned denoiser
    /// (Karras et al. 2022), D = c_skip x + c_out F(c_in x; ¼ ln σ), s = (D − x)/σ², with σ_d the
    /// data's rms coordinate (`TrainerState.dataScale`). Free and centred spaces only.
    public var parameterization: ScoreParameterization? = nil
    /// dsm with `.edm`: the distribution of training noise levels σ (nil: log-uniform over
    /// [σ_min, σ_max]).
    public var noiseLevels: NoiseLevelDistribution? = nil
    /// Half-life, in training steps, of the exponential moving average of the network's
    /// parameters (`TrainerState.averageParameters`; sampling uses it). nil: no average.
    public var averageHalfLife: Double? = nil
    /// Learning rate: linear warm-up over this many steps (nil: none), ...
    public var warmupSteps: Int? = nil
    /// ... then constant until this step, then lr·√(decayStart/step) (EDM2's inverse square
    /// root; needs no total step count, so a resumed run continues the same schedule). nil: constant.
    public var decayStart: Int? = nil
    /// dsm: fraction of the data held out of training for the validation loss (nil: none).
    public var validationFraction: Double? = nil
    /// dsm: validation loss every this many steps (with `validationFraction`).
    public var validationEvery = 100
    /// dsm: σ_min, σ_max, the force blend's σ* and a log-normal noise-level mean (of ln σ) are
    /// given in units of the data's rms coordinate σ_d, and become absolute when the data are
    /// made (`resolvingScales`); the checkpoint holds the absolute values. nil/false: absolute.
    public var scalesFromData: Bool? = nil
    /// How the noise level or time enters the EGNN's node features (nil: the scalar itself).
    public var timeEmbedding: TimeEmbedding? = nil
    /// dsm: the network takes ln β as an input and learns from every replica of the tempering
    /// data, each frame tagged with its β (temperature-conditioned denoising); it draws at
    /// β = 1 or at any β (`DiffusionModel.logBeta`). nil/false: the β = 1 frames only.
    public var temperatureConditioned: Bool? = nil
    /// dsm (EDM) on a molecule: its bond graph, which shapes the noise (`HarmonicPrior`: noise
    /// correlated along the bonds, in training and drawing) and gives the EGNN one learned edge
    /// feature per pair class (bonded, 1–3, 1–4, other). nil: isotropic noise, no edge classes.
    public var bondGraph: BondGraph? = nil
    /// The settings a method keeps as its own value (`MethodSettings`, read with `settings()`),
    /// for methods whose settings are not fields above; nil: none, or that method's defaults.
    public var methodSettings: SettingsValue? = nil

    /// The bare configuration: every field at its declared value (the double engine, no tanh
    /// bound, no energy clip, no learning-rate schedule). It is what fields missing from an older
    /// checkpoint decode to and what the library's tests build on; a run starts from
    /// `defaults(for:)`.
    public init(method: DiffusionMethod) { self.method = method }

    /// The recommended configuration of `method`: what `ensemble train --method METHOD` trains
    /// with before any option (the command line's option defaults read it), and where a library
    /// caller should start. Beyond the bare `init(method:)`: the Float engine, the energy clip 10⁴
    /// of the path methods' training reward, the tanh bound 15 of the score models, and what the
    /// method's registration recommends (in its own file: e.g. dsm's EDM recipe, a method's own
    /// settings).
    public static func defaults(for method: DiffusionMethod) -> DiffusionConfiguration {
        var c = DiffusionConfiguration(method: method)
        c.precision = .float
        c.energyClip = 1e4
        if method.usesVEProcess { c.tanhRange = 15 }
        method.registration.recommend(&c)
        return c
    }

    /// ln(σ/σ_d) at the centre of dsm's default log-normal noise levels (measured on LJ-13:
    /// docs/samplers.md).
    public static let dsmNoiseMeanShift = -5.1

    /// The configuration with its data-relative scales made absolute for data of rms coordinate
    /// σ_d (unchanged unless `scalesFromData`).
    public func resolvingScales(dataScale sd: Double) -> DiffusionConfiguration {
        guard scalesFromData == true else { return self }
        var c = self
        c.sigmaMin *= sd
        c.sigmaMax *= sd
        c.forceBlendSigma = forceBlendSigma.map { $0 * sd }
        switch noiseLevels {
        case .logNormal(let mean, let std)?: c.noiseLevels = .logNormal(mean: mean + log(sd), std: std)
        case .mixture(let mean, let std, let uniform)?: c.noiseLevels = .mixture(mean: mean + log(sd), std: std, uniform: uniform)
        default: break
        }
        c.scalesFromData = nil
        return c
    }

    /// The EGNN of the drift for a space.
    func network(for space: DiffusionSpace) -> EGNNConfiguration {
        var c = EGNNConfiguration(particles: space.particles, dimension: space.dimension, hidden: hidden, layers: layers,
                                  aggregation: .sum, tanhRange: tanhRange, typeIds: nodeTypes, box: space.box,
                                  cutoff: space.isPeriodic ? graphCutoff : nil, timeEmbedding: timeEmbedding ?? .scalar,
                                  removeMean: space.kind == .centred,
                                  envelope: space.isPeriodic && graphCutoff != nil && smoothCutoff == true ? .cosine : nil)
        if temperatureConditioned == true { c.conditions = 1 }
        c.edgeClasses = bondGraph?.pairClasses()
        if let centres = bondGraph?.chiralCentres, !centres.isEmpty { c.chiralCentres = centres }
        return c
    }

    /// - Throws: `DiffusionError.invalidConfiguration` naming the field.
    public func validate() throws {
        func fail(_ s: String) throws -> Never { throw DiffusionError.invalidConfiguration(s) }
        if timeSteps < 2 { try fail("time steps must be ≥ 2 (got \(timeSteps))") }
        if batch < 2 { try fail("batch must be ≥ 2 (got \(batch))") }
        if !(noiseScale > 0) { try fail("noise scale must be > 0") }
        if !(learningRate > 0) { try fail("learning rate must be > 0") }
        if !(sigmaMin > 0 && sigmaMax > sigmaMin) { try fail("need 0 < sigma-min < sigma-max") }
        if bufferCapacity < batch { try fail("buffer capacity must be ≥ batch") }
        if let graphCutoff, !(graphCutoff > 0) { try fail("graph cutoff must be > 0 (got \(graphCutoff))") }
        if let h = averageHalfLife, !(h > 0) { try fail("the parameter average's half-life must be > 0 (got \(h))") }
        if let w = warmupSteps, w < 0 { try fail("warm-up steps must be ≥ 0 (got \(w))") }
        if let d = decayStart, d < 1 { try fail("the decay start must be ≥ 1 (got \(d))") }
        if let v = validationFraction, !(v > 0 && v < 0.5) { try fail("the validation fraction must be in (0, 0.5) (got \(v))") }
        if validationEvery < 1 { try fail("validation every must be ≥ 1") }
        try method.training.validate(self)
    }
}

/// Where dsm's data came from when they were read from a trajectory, and what making them cost
/// (energy and gradient evaluations, counted into the training budget).
public struct TrajectoryData: Codable, Equatable, Sendable {
    /// The trajectory file as given (provenance only: the configurations live in the buffer).
    public var path: String
    public var frames: Int
    public var energyEvaluations: Int
    public var gradientEvaluations: Int

    public init(path: String, frames: Int, energyEvaluations: Int, gradientEvaluations: Int) {
        self.path = path
        self.frames = frames
        self.energyEvaluations = energyEvaluations
        self.gradientEvaluations = gradientEvaluations
    }
}

/// Errors of the diffusion samplers; each message says what to change.
public enum DiffusionError: Error, CustomStringConvertible {
    case invalidConfiguration(String)
    case nonFinite(step: Int, what: String)
    case checkpoint(String)
    /// The process left the finite numbers (the drift diverged) at this time step.
    case divergedPositions(timeStep: Int)

    public var description: String {
        switch self {
        case .invalidConfiguration(let s): return "invalid diffusion configuration: \(s)"
        case .nonFinite(let step, let what):
            return "training stopped at step \(step): non-finite \(what); try a smaller --learning-rate"
        case .checkpoint(let s): return "checkpoint: \(s)"
        case .divergedPositions(let k):
            return "the drift sent positions to a non-finite value at time step \(k); a tanh-bounded network (--tanh-range 15) or a smaller --learning-rate avoids it"
        }
    }
}

extension DiffusionError: LocalizedError {
    public var errorDescription: String? { description }
}
