import Foundation
import PluginHost

/// How a trained sampler's draws are corrected (SMC with MCMC rejuvenation, docs/samplers.md).
public struct CorrectionSettings: Codable, Sendable {
    /// Kernel steps per sample at the target (M).
    public var steps: Int
    /// Resample by the importance weights when ESS/N reaches this; below it the weights are
    /// not usable and every finite-energy sample enters the MCMC as it is.
    public var resampleThreshold = 0.1
    /// Initial step size (MALA: h; HMC: ε, e.g. `HMCKernel.stepSize(equivalentToMALA:)`), adapted
    /// toward the kernel's target acceptance during the first M/4 steps (and the annealed
    /// start's), then frozen, so the last 3M/4 steps are an exact π-invariant kernel.
    public var initialStepSize = 1e-3
    /// Independence-Metropolis moves with the model's probability flow as the proposal
    /// (`IndependenceKernel`), spread evenly over the steps after adaptation; 0 = none.
    public var globalMoves = 0
    /// Kernel steps per stage of the annealed start (`annealedStart`); 0 = no annealing: the
    /// population starts at the target as resampled (or kept) above.
    public var annealSteps = 0
    /// One step size per sample, each adapted by its own acceptances during the first M/4
    /// steps, capped by the population's, and then frozen (so the kernel is again π-invariant
    /// per sample), instead of one for the population: a sample stuck where the population's
    /// step is far too long (an overlapping pair) shrinks its own until it moves.
    public var stepSizePerSample = false

    public init(steps: Int) { self.steps = steps }
}

/// Statistics of the corrected population after some MCMC steps.
public struct PopulationSummary: Codable, Sendable {
    public var steps: Int
    public var meanEnergy: Double
    /// Standard error of the mean energy, s/√N (walkers treated as independent).
    public var energyError: Double
    /// Share of samples with u > 0 (overlapping particles in a cluster).
    public var positiveEnergyFraction: Double
    public var acceptance: Double
}

/// What a correction did: the weights' state, both checkpoints of the population and the
/// evaluations it spent.
public struct CorrectionReport: Codable, Sendable {
    public var samples: Int
    public var essFraction: Double
    public var resampled: Bool
    /// Samples with a non-finite energy, replaced by uniformly drawn finite ones when not resampling.
    public var replacedNonFinite: Int
    /// The population's step size after adaptation (with per-sample steps: their upper bound).
    public var stepSize: Double
    /// The smallest and largest per-sample step sizes (nil when the population shares one).
    public var stepSizeRange: [Double]? = nil
    public var halfway: PopulationSummary
    public var final: PopulationSummary
    /// √W2 between the energy distributions after M/2 and after M steps: of the order of seed
    /// noise when M sufficed.
    public var energyW2BetweenHalves: Double
    public var energyEvaluations: Int
    public var gradientEvaluations: Int
    public var seconds: Double
    /// Global (independence-Metropolis) moves made per sample and the share accepted; nil without them.
    public var globalMoves: Int = 0
    public var globalAcceptance: Double? = nil
    /// The inverse temperatures of the annealed start, first to last (empty without annealing).
    public var annealingBetas: [Double] = []
    /// The moves, in words (e.g. "MALA steps"; set by the caller that chose the kernel).
    public var moves: String? = nil
}

/// Exact correction of any trained sampler: samples → resampling by importance weights where
/// they are usable → M steps of an MCMC kernel at the target (MALA, HMC …) from every sample,
/// optionally with global moves (`IndependenceKernel`) spread over the steps after adaptation.
/// Exact as N and M grow (the kernel leaves π invariant once its step size is frozen).
public struct SMCCorrection {
    public var settings: CorrectionSettings
    /// Moves the population (its step size adapts toward the kernel's target acceptance); it
    /// also moves the annealed start through π_β.
    public var kernel: any MCMCKernel
    /// The global move, needed when `settings.globalMoves > 0`; its state must be the kernel's.
    public var global: (any MCMCKernel)?

    public init(settings: CorrectionSettings, kernel: any MCMCKernel, global: (any MCMCKernel)? = nil) {
        self.settings = settings
        self.kernel = kernel
        self.global = global
    }

    /// - Parameters: positions [N, n·d], their energies and log-weights.
    /// - Returns: corrected positions and energies, and the report.
    public func run(positions: [Double], energies: [Double], logWeights: [Double], rng: inout SeededGenerator,
                    progress: (Int, Int) -> Void = { _, _ in }) throws
        -> (positions: [Double], energies: [Double], report: CorrectionReport) {
        try run(kernel, positions: positions, energies: energies, logWeights: logWeights, rng: &rng, progress: progress)
    }

    /// `run` on a batch of draws; the corrected samples carry equal weights (no log-weights).
    public func run(_ draws: SampleBatch, rng: inout SeededGenerator,
                    progress: (Int, Int) -> Void = { _, _ in }) throws -> (samples: SampleBatch, report: CorrectionReport) {
        let result = try run(positions: draws.positions, energies: draws.energies, logWeights: draws.logWeights, rng: &rng,
                             progress: progress)
        return (SampleBatch(stride: draws.stride, positions: result.positions, energies: result.energies), result.report)
    }

    private func run<Kernel: MCMCKernel>(_ kernel: Kernel, positions: [Double], energies: [Double], logWeights: [Double],
                                         rng: inout SeededGenerator, progress: (Int, Int) -> Void) throws
        -> (positions: [Double], energies: [Double], report: CorrectionReport) {
        let clock = ContinuousClock.now
        let system = kernel.system
        let energyStart = system.energyEvaluations, gradientStart = system.gradientEvaluations
        let count = energies.count
        if settings.globalMoves > 0 && global == nil {
            throw SamplingError(step: 0, reason: "global moves need the model's independence kernel")
        }
        guard let target = kernel.targetAcceptance else {
            throw SamplingError(step: 0, reason: "the correction adapts its kernel's step size: give a kernel that has a target acceptance")
        }
        let start = settings.annealSteps > 0
            ? try annealedStart(kernel, target: target, positions: positions, energies: energies, logWeights: logWeights, rng: &rng)
            : try weightedStart(positions: positions, energies: energies, logWeights: logWeights, rng: &rng)
        var state = try kernel.initialize(start.positions)
        let ones = [Double](repeating: 1, count: count)
        // One step size for the population, and with `stepSizePerSample` one per sample too.
        var population = StepSizeAdapter(target: target, stepSizes: [start.stepSize ?? settings.initialStepSize])
        var perSample = StepSizeAdapter(target: target, stepSizes: [Double](repeating: population.stepSizes[0], count: count))
        let adaptation = max(1, settings.steps / 4), half = settings.steps / 2
        var halfway = Self.summary(state.energies, steps: 0, acceptance: .nan)
        var halfwayEnergies = state.energies
        var counter = AcceptanceCounter(groups: 1), globalCounter = AcceptanceCounter(groups: 1), globalMade = 0
        let globalEvery = max(1, (settings.steps - adaptation) / max(1, settings.globalMoves))
        for t in 0..<settings.steps {
            let h = settings.stepSizePerSample ? perSample.stepSizes : [Double](repeating: population.stepSizes[0], count: count)
            let moved = try kernel.step(&state, stepSizes: h, betas: ones, rng: &rng)
            if settings.stepSizePerSample && t < adaptation { perSample.adapt(acceptance: moved.map { $0 ? 1 : 0 }) }
            if let global, globalMade < settings.globalMoves, t >= adaptation, (t + 1 - adaptation) % globalEvery == 0 {
                for ok in try Self.step(global, &state, rng: &rng) { globalCounter.count(ok) }
                globalMade += 1
            }
            if t < adaptation {
                population.adapt(acceptance: [Double(moved.filter { $0 }.count) / Double(count)])
                // A sample's own step only ever shrinks below the population's: one sample's
                // acceptances are too few to tune a longer step safely.
                if settings.stepSizePerSample {
                    for b in 0..<count { perSample.stepSizes[b] = min(perSample.stepSizes[b], population.stepSizes[0]) }
                }
            } else {
                for ok in moved { counter.count(ok) }
            }
            if t + 1 == half {
                halfway = Self.summary(state.energies, steps: half, acceptance: counter.overall)
                halfwayEnergies = state.energies
            }
            progress(t + 1, settings.steps)
        }
        let h = population.stepSizes[0]
        let final = Self.summary(state.energies, steps: settings.steps, acceptance: counter.overall)
        let range = settings.stepSizePerSample ? [perSample.stepSizes.min() ?? h, perSample.stepSizes.max() ?? h] : nil
        let finiteHalf = halfwayEnergies.filter(\.isFinite), finiteFinal = state.energies.filter(\.isFinite)
        let between = finiteHalf.isEmpty || finiteFinal.isEmpty ? Double.nan
            : Metrics.wasserstein1D(finiteHalf, finiteFinal).w2
        let report = CorrectionReport(
            samples: count, essFraction: ImportanceWeights(logWeights: logWeights).effectiveSampleFraction,
            resampled: start.resampled, replacedNonFinite: start.replaced, stepSize: h, stepSizeRange: range,
            halfway: halfway,
            final: final, energyW2BetweenHalves: between,
            energyEvaluations: system.energyEvaluations - energyStart,
            gradientEvaluations: system.gradientEvaluations - gradientStart,
            seconds: (ContinuousClock.now - clock).inSeconds, globalMoves: globalMade,
            globalAcceptance: globalMade > 0 ? globalCounter.overall : nil,
            annealingBetas: start.betas)
        return (state.positions, state.energies, report)
    }

    /// One move of `kernel` (the global move) on the rejuvenation kernel's state, at β = 1.
    private static func step<Global: MCMCKernel, State: WalkerState>(_ kernel: Global, _ state: inout State,
                                                                  rng: inout SeededGenerator) throws -> [Bool] {
        guard var moved = state as? Global.State else {
            throw SamplingError(step: 0, reason: "the global move's state (\(Global.State.self)) is not the kernel's (\(State.self))")
        }
        let ones = [Double](repeating: 1, count: moved.walkers)
        let accepted = try kernel.step(&moved, stepSizes: ones, betas: ones, rng: &rng)
        state = moved as! State
        return accepted
    }

    /// The population the MCMC starts from, and how it was made.
    struct Start {
        var positions: [Double]
        var resampled: Bool
        var replaced = 0
        var betas: [Double] = []
        /// The step size the annealing ended with (nil: `initialStepSize`).
        var stepSize: Double? = nil
    }

    /// Resampled by the importance weights when ESS/N reaches the threshold; otherwise every
    /// finite-energy sample as drawn (non-finite ones replaced by uniformly drawn finite ones).
    func weightedStart(positions: [Double], energies: [Double], logWeights: [Double],
                       rng: inout SeededGenerator) throws -> Start {
        let count = energies.count
        let weights = ImportanceWeights(logWeights: logWeights)
        let ess = weights.effectiveSampleFraction
        if ess.isFinite && ess >= settings.resampleThreshold {
            return Start(positions: gather(positions, weights.resample(count: count, rng: &rng)), resampled: true)
        }
        let finite = energies.indices.filter { energies[$0].isFinite }
        guard !finite.isEmpty else { throw SamplingError(step: 0, reason: "no sample has a finite energy to correct") }
        let order = energies.indices.map { energies[$0].isFinite ? $0 : finite[Int(rng.next() % UInt64(finite.count))] }
        return Start(positions: gather(positions, order), resampled: false, replaced: count - finite.count)
    }

    /// Adaptive tempering from the sampler's own temperature down to the target, an SMC
    /// sampler (Del Moral, Doucet & Jasra 2006) over π_β ∝ exp(−β u). The first β is where the
    /// weights of the drawn samples for π_β,
    ///
    ///     log w_β = log w + (1 − β) u      (log w = −u − log q, the sampler's weights),
    ///
    /// are best (`initialBeta`); every next β the largest whose incremental weights exp(−(β' − β) u)
    /// keep ESS/N ≥ ½. After each choice: resample, then `annealSteps` kernel steps at π_β.
    /// Samples too hot for the target (a sampler that has not learned the deepest wells) cool
    /// gradually instead of being resampled onto a handful of ancestors. Ends at β = 1, where
    /// the ordinary M steps follow.
    func annealedStart<Kernel: MCMCKernel>(_ kernel: Kernel, target: Double, positions: [Double], energies: [Double],
                                           logWeights: [Double], rng: inout SeededGenerator) throws -> Start {
        let count = energies.count
        guard energies.contains(where: \.isFinite) else {
            throw SamplingError(step: 0, reason: "no sample has a finite energy to correct")
        }
        func tempered(_ u: [Double], _ base: [Double], _ dBeta: Double) -> [Double] {
            (0..<count).map { u[$0].isFinite && base[$0].isFinite ? base[$0] - dBeta * u[$0] : -.infinity }
        }
        // w_β = w·exp((1 − β)u) is the incremental form with Δβ = β − 1 on the base log w.
        var beta = Self.initialBeta { tempered(energies, logWeights, $0 - 1) }
        var logW = tempered(energies, logWeights, beta - 1)
        var x = positions, betas = [beta]
        var adapter = StepSizeAdapter(target: target, stepSizes: [settings.initialStepSize])
        while true {
            x = gather(x, ImportanceWeights(logWeights: logW).resample(count: count, rng: &rng))
            var state = try kernel.initialize(x)
            for _ in 0..<settings.annealSteps {
                let a = try kernel.step(&state, stepSize: adapter.stepSizes[0], beta: beta, rng: &rng)
                adapter.adapt(acceptance: [Double(a) / Double(count)])
            }
            x = state.positions
            if beta >= 1 { return Start(positions: x, resampled: true, betas: betas, stepSize: adapter.stepSizes[0]) }
            let u = state.energies, zero = [Double](repeating: 0, count: count), from = beta
            beta = betas.count >= 200 ? 1 : Self.largestBeta(from: from) { tempered(u, zero, $0 - from) }
            logW = tempered(u, zero, beta - from)
            betas.append(beta)
        }
    }

    /// The first temperature: the weights of the drawn samples for π_β peak near the sampler's
    /// own temperature (they degrade both ways), so β is searched on a grid of 50 in (0, 1]; the
    /// largest β above the best one that keeps ESS/N ≥ ½, or the best one when none does.
    static func initialBeta(weights: (Double) -> [Double]) -> Double {
        func ess(_ b: Double) -> Double {
            let e = ImportanceWeights(logWeights: weights(b)).effectiveSampleFraction
            return e.isFinite ? e : 0
        }
        let grid = (1...50).map { Double($0) / 50 }
        let best = grid.max { ess($0) < ess($1) }!
        guard ess(best) >= 0.5 else { return best }
        return largestBeta(from: best, weights: weights)
    }

    /// The largest β in (lower, 1] whose weights keep ESS/N ≥ ½ (bisection, ESS taken as
    /// monotone in β); `lower` itself when none does.
    static func largestBeta(from lower: Double, weights: (Double) -> [Double]) -> Double {
        func enough(_ b: Double) -> Bool {
            let ess = ImportanceWeights(logWeights: weights(b)).effectiveSampleFraction
            return ess.isFinite && ess >= 0.5
        }
        if enough(1) { return 1 }
        var lo = lower, hi = 1.0
        for _ in 0..<50 {
            let mid = 0.5 * (lo + hi)
            if enough(mid) { lo = mid } else { hi = mid }
        }
        return max(lo, lower + 1e-6 * (1 - lower))
    }

    func gather(_ positions: [Double], _ order: [Int]) -> [Double] {
        SampleBatch.rows(positions, stride: kernel.system.coordinateCount, order)
    }

    static func summary(_ u: [Double], steps: Int, acceptance: Double) -> PopulationSummary {
        let finite = u.filter(\.isFinite)
        let (mean, deviation) = Statistics.meanAndDeviation(finite)
        return PopulationSummary(steps: steps, meanEnergy: mean,
                                 energyError: deviation / Double(max(1, finite.count)).squareRoot(),
                                 positiveEnergyFraction: Double(u.filter { !($0 <= 0) }.count) / Double(max(1, u.count)),
                                 acceptance: acceptance)
    }
}
