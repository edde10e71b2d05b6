import Foundation
import PluginHost

/// Denoising score matching from tempered data (docs/samplers.md; the "PT + generative model"
/// route of PTSD / PITA): the project's own parallel tempering makes `data.samples`
/// configurations at the target on the first step (its evaluations count in the budget);
/// each step regresses s_θ(x_t, t) on the exact target −ε/√h(t) of x_t = x_0 + √h(t) ε with
/// λ(t) = h(t), i.e. the loss is the mean over coordinates of |√h s_θ + ε|². The network
/// predicts the noise (s_θ = −ε_θ/√h, `DiffusionModel.scoreScale`), so the loss is
/// |ε_θ(x_t, t) − ε|², the same objective with a well-scaled output. With `forceBlendSigma` the
/// target blends in the force at the data point (target score matching), which keeps the small-σ
/// score learnable: there the noise target's variance grows like 1/h.
public struct DenoisingScoreMatching: TrainingMethod {
    public var process: DiffusionProcess { .varianceExploding }
    /// The noise ε unless the configuration asks for the score itself (`predictsNoise == false`).
    public func predictsNoise(_ configuration: DiffusionConfiguration) -> Bool { configuration.predictsNoise != false }
    public init() {}

    /// dsm's data (parallel tempering or a file), buffer and bond graph.
    public func validate(_ c: DiffusionConfiguration) throws {
        func fail(_ s: String) throws -> Never { throw DiffusionError.invalidConfiguration(s) }
        guard let samples = c.data?.samples ?? c.dataFile?.frames else {
            try fail("dsm needs its parallel-tempering data settings or a data trajectory")
        }
        if c.data != nil && c.dataFile != nil { try fail("dsm takes its data from parallel tempering or from a file, not both") }
        if let g = c.bondGraph, c.parameterization != .edm || g.bonds.contains(where: { $0.count != 2 || $0.min()! < 0 || $0.max()! >= g.particles }) {
            try fail("a bond graph needs the EDM parameterization and bonds between its \(g.particles) particles")
        }
        if c.temperatureConditioned == true && (c.data?.replicas ?? 1) < 2 {
            try fail("temperature conditioning learns from the replicas of parallel-tempering data: it needs PT data with ≥ 2 replicas")
        }
        if samples < 2 { try fail("dsm needs at least 2 data samples (got \(samples))") }
        if samples > c.bufferCapacity {
            try fail("dsm keeps its \(samples) data samples in the buffer: buffer capacity \(c.bufferCapacity) is too small")
        }
    }

    /// dsm's recipe beyond the shared defaults: EDM preconditioning; σ ∈ [0.0015, 4]·σ_d, the
    /// force blended in below σ* = 0.15·σ_d and ln σ ~ N(ln σ_d − 5.1, 1.5²), relative to the data's
    /// rms coordinate σ_d (`scalesFromData`, docs/samplers.md); the parameter average (half-life
    /// 500 steps), 200 warm-up steps, decay from step 2000 and a 10 % validation split. Its data
    /// settings (`data` or `dataFile`) are the caller's.
    static func recommend(_ c: inout DiffusionConfiguration) {
        c.parameterization = .edm
        c.averageHalfLife = 500
        c.warmupSteps = 200
        c.decayStart = 2000
        c.validationFraction = 0.1
        c.scalesFromData = true
        c.sigmaMin = 1.5e-3
        c.sigmaMax = 4
        c.forceBlendSigma = 0.15
        c.noiseLevels = .logNormal(mean: DiffusionConfiguration.dsmNoiseMeanShift, std: 1.5)
    }

    public func batch(_ state: inout TrainerState, _ context: TrainingContext) throws -> RegressionBatch {
        if state.buffer.count == 0 { try makeTemperedData(&state, context) }
        let indices = state.dataLogBetas.map { Self.balancedIndices(context.localBatch, logBetas: $0, rng: &state.rng) }
            ?? state.buffer.sampleIndices(context.localBatch, priority: 0, rng: &state.rng)
        let x0 = state.buffer.gather(indices)
        let blend = context.configuration.forceBlendSigma
        let logBetas = state.dataLogBetas.map { all in indices.map { all[$0] } }
        return context.model.isPreconditioned
            ? try Self.preconditionedBatch(x0, model: context.model, system: context.system, blend: blend,
                                           logBetas: logBetas, rng: &state.rng)
            : try Self.noiseBatch(x0, model: context.model, system: context.system, blend: blend,
                                  logBetas: logBetas, rng: &state.rng)
    }

    /// The share of a temperature-conditioned batch drawn from the target's frames (the rest from
    /// the hotter replicas, uniformly): the target keeps half the signal however many replicas.
    static let targetShare = 0.5

    /// `m` buffer indices, each from the target's frames (ln β = 0, the buffer's first entries)
    /// with probability `targetShare`, else from the hotter replicas' frames.
    static func balancedIndices(_ m: Int, logBetas: [Double], rng: inout SeededGenerator) -> [Int] {
        let target = logBetas.prefix { $0 == 0 }.count, count = logBetas.count
        guard target > 0 && target < count else { return (0..<m).map { _ in Int(rng.next() % UInt64(count)) } }
        return (0..<m).map { _ in
            rng.uniform() < targetShare ? Int(rng.next() % UInt64(target)) : target + Int(rng.next() % UInt64(count - target))
        }
    }

    /// ∇(βu) at the data points (the negative score of e^{−βu}), projected (one gradient
    /// evaluation each), where a force blend is on; β = 1 without `logBetas`.
    static func blendForce(_ x0: [Double], model: DiffusionModel, system: EnergySystem?, blend: Double?,
                           logBetas: [Double]? = nil) throws -> [Double]? {
        guard let system, blend != nil else { return nil }
        let stride = model.space.coordinateCount
        var g = try system.evaluate(x0, batch: x0.count / stride, withGradients: true).gradients
        model.space.project(&g)
        if let logBetas {
            for b in logBetas.indices where logBetas[b] != 0 {
                let beta = exp(logBetas[b])
                for i in 0..<stride { g[b * stride + i] *= beta }
            }
        }
        return g
    }

    /// A regression batch of a noise- (or score-) predicting network on the VE time grid: score
    /// target a·(−ε/√h) + (1 − a)·(−∇u(x_0)), a = h/(h + σ*²) (a = 1 without a blend); the network
    /// predicts −√h × it (noise) or it (score, weight h).
    static func noiseBatch(_ x0: [Double], model: DiffusionModel, system: EnergySystem?, blend: Double?,
                           logBetas: [Double]? = nil, rng: inout SeededGenerator) throws -> RegressionBatch {
        let (xt, times, noise) = ScoreRegression.noisedBatch(x0, model: model, rng: &rng)
        let stride = model.space.coordinateCount
        let force = try blendForce(x0, model: model, system: system, blend: blend, logBetas: logBetas)
        var target = noise, weights = [Double](repeating: 1, count: times.count)
        let scoreNetwork = model.configuration.predictsNoise == false
        for b in times.indices {
            let h = max(model.noiseVariance(times[b]), 1e-300), s = h.squareRoot()
            let a = blend.map { h / (h + $0 * $0) } ?? 1
            if scoreNetwork { weights[b] = h }
            for i in 0..<stride {
                let j = b * stride + i
                let score = -a * noise[j] / s - (1 - a) * (force?[j] ?? 0)
                target[j] = scoreNetwork ? score : -s * score
            }
        }
        return RegressionBatch(noised: xt, times: times, target: target, weights: weights, logBetas: logBetas)
    }

    public func lossAndGradient(_ batch: RegressionBatch, _ context: TrainingContext) throws -> LossAndGradient {
        try ScoreRegression.lossAndGradient(batch, context)
    }

    /// An EDM regression batch: σ from the configuration's noise-level distribution,
    /// x = x_0 + σε, and the network's target (D* − c_skip x)/c_out at input c_in x and
    /// c_noise, unit weight. D* = x_0, or with a force blend below σ* (a = σ²/(σ² + σ*²)) the
    /// denoiser of the blended score target a(−ε/σ) + (1 − a)(−∇u(x_0)):
    /// D* = x + σ² s* = x_0 + (1 − a)(σε − σ²∇u(x_0)).
    static func preconditionedBatch(_ x0: [Double], model: DiffusionModel, system: EnergySystem?, blend: Double?,
                                    logBetas: [Double]? = nil, rng: inout SeededGenerator) throws -> RegressionBatch {
        let c = model.configuration, space = model.space, stride = space.coordinateCount, m = x0.count / stride
        let sigmas = (0..<m).map { _ in c.drawNoiseLevel(rng: &rng) }
        let noise = model.noise(batch: m, rng: &rng)
        var force = try blendForce(x0, model: model, system: system, blend: blend, logBetas: logBetas)
        // Under a harmonic prior the denoiser's step is C times the score: the force term is C ∇(βu).
        if let prior = model.harmonicPrior, let f = force { force = prior.applyCovariance(f, dimension: space.dimension) }
        var input = x0, target = x0
        var times = [Double](repeating: 0, count: m)
        for b in 0..<m {
            let sigma = sigmas[b], k = EDMCoefficients(sigma: sigma, sigmaData: model.sigmaData)
            let a = blend.map { sigma * sigma / (sigma * sigma + $0 * $0) } ?? 1
            times[b] = k.noise
            for i in 0..<stride {
                let j = b * stride + i
                let x = x0[j] + sigma * noise[j]
                let denoised = x0[j] + (1 - a) * (sigma * noise[j] - sigma * sigma * (force?[j] ?? 0))
                input[j] = k.input * x
                target[j] = (denoised - k.skip * x) / k.out
            }
        }
        return RegressionBatch(noised: input, times: times, target: target, weights: [Double](repeating: 1, count: m),
                               logBetas: logBetas)
    }

    /// The plain denoising loss (no force blend) of the held-out frames under the model's current
    /// network, at noise draws fixed by `seed` (the same every call, so that the curve is smooth).
    public static func validationLoss(_ frames: [Double], model: DiffusionModel, seed: UInt64) -> Double {
        var rng = SeededGenerator(seed: seed, stream: 0x5641_4C)  // "VAL"
        let batch = model.isPreconditioned
            ? try! preconditionedBatch(frames, model: model, system: nil, blend: nil, rng: &rng)
            : try! noiseBatch(frames, model: model, system: nil, blend: nil, rng: &rng)
        return ScoreRegression.loss(batch, model: model).loss
    }

    /// This rank's share of the parallel-tempering data, into the buffer (which then stays fixed).
    func makeTemperedData(_ state: inout TrainerState, _ context: TrainingContext) throws {
        guard var settings = context.configuration.data else {
            throw DiffusionError.invalidConfiguration("dsm on a data trajectory: start the run with DiffusionTrainer.denoising(model:system:data:energies:)")
        }
        settings.samples = context.share(of: settings.samples)
        settings.chains = max(1, min(settings.chains, settings.samples))
        settings.seed = SeededGenerator.rankSeed(settings.seed, rank: context.reducer.rank)
        let system = context.system, space = context.model.space, stride = space.coordinateCount
        let start = system.initialPositions() ?? [Double](repeating: 0, count: system.coordinateCount)
        var buffer = state.buffer
        // Held out: whole chains (the last ones) where there are several, else the last records.
        let fraction = context.configuration.validationFraction ?? 0
        let chains = settings.chains, records = max(1, settings.samples / chains)
        let heldChains = fraction > 0 && chains >= 2 ? max(1, Int((fraction * Double(chains)).rounded())) : 0
        let heldFrom = fraction > 0 && chains < 2 ? Int(((1 - fraction) * Double(records)).rounded()) : Int.max
        var validation: [Double] = [], record = 0
        // Temperature-conditioned: every replica's frames too, tagged with ln β (the held-out
        // ladders' hot frames are dropped: validation is at the target).
        let conditioned = context.model.isTemperatureConditioned, betas = settings.betas
        var hot: [(x: [Double], u: [Double], logBeta: Double)] = []
        _ = try ChainRunner(settings: settings).run(
            system: system, space: space, start: start,
            record: { x, u in
                var y = x
                space.constrain(&y)
                let m = u.count
                for c in 0..<m {
                    let frame = Array(y[(c * stride)..<((c + 1) * stride)])
                    if c >= m - heldChains || record >= heldFrom { validation += frame } else { buffer.add(frame, logRewards: [-u[c]]) }
                }
                record += 1
            },
            recordHot: !conditioned ? nil : { level, x, u in
                var y = x
                space.constrain(&y)
                let kept = record < heldFrom ? u.count - heldChains : 0  // called before `record` of the same step
                guard kept > 0 else { return }
                hot.append((Array(y[..<(kept * stride)]), Array(u[..<kept]), log(betas[level])))
            })
        // σ_d of the target frames only, so that a conditioned model has the same scales.
        let total = try context.reducer.sum(Self.centredSquares(buffer.positions, space: space))
        if conditioned {
            let extra = hot.reduce(0) { $0 + $1.u.count }
            var all = ReplayBuffer(capacity: max(buffer.capacity, buffer.count + extra), stride: stride)
            all.add(buffer.positions, logRewards: buffer.logRewards)
            var logBetas = [Double](repeating: 0, count: buffer.count)
            for part in hot {
                all.add(part.x, logRewards: part.u.map { -$0 })
                logBetas += [Double](repeating: part.logBeta, count: part.u.count)
            }
            buffer = all
            state.dataLogBetas = logBetas
        }
        state.buffer = buffer
        state.validationData = validation.isEmpty ? nil : validation
        // σ_d over every rank's share, so that all ranks resolve the same configuration.
        state.dataScale = Self.rms(total)
        context.model.resolveScales(dataScale: state.dataScale!)
    }

    /// [Σ y², count] of configurations [m, n·d] after removing each one's centre (summable over ranks).
    static func centredSquares(_ frames: [Double], space: DiffusionSpace) -> [Double] {
        var y = frames
        space.project(&y)
        return [y.reduce(0) { $0 + $1 * $1 }, Double(y.count)]
    }

    /// σ_d = √(Σ y²/count) of `centredSquares`.
    static func rms(_ squares: [Double]) -> Double { max((squares[0] / max(1, squares[1])).squareRoot(), 1e-12) }

    /// σ_d: the rms coordinate of configurations [m, n·d] after removing each one's centre.
    static func dataScale(_ frames: [Double], space: DiffusionSpace) -> Double { rms(centredSquares(frames, space: space)) }
}

extension DiffusionTrainer {
    /// A fresh dsm run on data made elsewhere (`configuration.dataFile`, e.g. a molecule's Langevin
    /// replica exchange written by `ensemble sample`): the configurations fill the buffer, which
    /// then stays fixed, and what making them cost starts the run's budget.
    /// - Parameters:
    ///   - data: configurations [m, n·d] in the plugin's length unit; m = `dataFile.frames`.
    ///   - energies: their reduced energies u [m] (the buffer's log-rewards −u).
    /// - Throws: `DiffusionError.invalidConfiguration` when the model is not dsm on a data file or
    ///   the shapes disagree.
    public static func denoising(model: DiffusionModel, system: EnergySystem, data: [Double], energies: [Double],
                                 explorationHorizon: Int = 1000) throws -> DiffusionTrainer {
        let c = model.configuration, stride = model.space.coordinateCount
        guard c.method == .dsm, let file = c.dataFile else {
            throw DiffusionError.invalidConfiguration("training from a data trajectory needs --method dsm and its dataFile")
        }
        guard data.count == energies.count * stride, energies.count == file.frames else {
            throw DiffusionError.invalidConfiguration("data: \(data.count) coordinates and \(energies.count) energies for \(file.frames) frames of \(stride) coordinates")
        }
        var state = DiffusionTrainer(model: model, system: system, explorationHorizon: explorationHorizon).state
        for f in 0..<file.frames {
            var y = Array(data[(f * stride)..<((f + 1) * stride)])
            model.space.constrain(&y)
            state.buffer.add(y, logRewards: [-energies[f]])
        }
        if let fraction = c.validationFraction {  // held out: the last frames of the file
            let kept = state.buffer.count - Int((fraction * Double(state.buffer.count)).rounded())
            state.validationData = Array(state.buffer.positions[(kept * stride)...])
            var buffer = ReplayBuffer(capacity: state.buffer.capacity, stride: stride)
            buffer.add(Array(state.buffer.positions[..<(kept * stride)]), logRewards: Array(state.buffer.logRewards[..<kept]))
            state.buffer = buffer
        }
        state.dataScale = DenoisingScoreMatching.dataScale(state.buffer.positions, space: model.space)
        model.resolveScales(dataScale: state.dataScale!)
        state.energyEvaluations = file.energyEvaluations
        state.gradientEvaluations = file.gradientEvaluations
        return DiffusionTrainer(model: model, system: system, state: state)
    }
}

extension DiffusionMethod {
    /// `--method dsm`.
    public static let dsm = DiffusionMethod(declaring: "dsm")
}

extension TrainingMethodRegistration {
    public static let denoisingScoreMatching = TrainingMethodRegistration(
        method: .dsm,
        summary: "denoising score matching on configurations from the project's own parallel tempering (or --data)",
        training: DenoisingScoreMatching(),
        options: ["--sigma-min", "--sigma-max", "--force-blend", "--predict-score", "--data-samples", "--parameterization",
                  "--noise-levels", "--validation-fraction", "--validation-every", "--temperature-conditioning",
                  "--data-replicas", "--data-max-temperature", "--data-chains", "--data-burn-in", "--data-thin",
                  "--data", "--data-json"],
        recommend: DenoisingScoreMatching.recommend)
}
