import Foundation
import PluginHost

/// How a trained sampler's draws are corrected (SMC with MCMC rejuvenation, SAMPLERS.md).
public struct CorrectionSettings: Codable, Sendable {
    /// Metropolis-adjusted MALA steps per sample at the target (M).
    public var steps: Int
    /// Resample by the importance weights when ESS/N reaches this; below it the weights are
    /// not usable and every finite-energy sample enters the MCMC as it is.
    public var resampleThreshold = 0.1
    /// Initial step size (MALA: h; HMC: ε), adapted toward the kernel's target acceptance
    /// during the first M/4 steps, then frozen, so the last 3M/4 steps are an exact
    /// π-invariant kernel.
    public var initialStepSize = 1e-3
    /// Leapfrog steps L per proposal: 0 runs MALA; L ≥ 1 runs HMC (L gradient evaluations per step).
    public var leapfrogSteps = 0
    /// Independence-Metropolis moves with the model's probability flow as the proposal
    /// (`IndependenceKernel`), spread evenly over the steps after adaptation; 0 = none.
    public var globalMoves = 0
    /// MALA steps per stage of the annealed start (`annealedStart`); 0 = no annealing: the
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
}

/// Exact correction of any trained sampler: samples → resampling by importance weights where
/// they are usable → M Metropolis-adjusted MALA (or HMC) steps at the target from every sample.
/// Exact as N and M grow (the MCMC kernel leaves π invariant once its step size is frozen).
public struct SMCCorrection {
    public var settings: CorrectionSettings
    public var kernel: MALAKernel
    /// The global move, needed when `settings.globalMoves > 0`.
    public var independence: IndependenceKernel?

    public init(settings: CorrectionSettings, kernel: MALAKernel, independence: IndependenceKernel? = nil) {
        self.settings = settings
        self.kernel = kernel
        self.independence = independence
    }

    /// - Parameters: positions [N, n·d], their energies and log-weights.
    /// - Returns: corrected positions and energies, and the report.
    public func run(positions: [Double], energies: [Double], logWeights: [Double], rng: inout SeededGenerator,
                    progress: (Int, Int) -> Void = { _, _ in }) throws
        -> (positions: [Double], energies: [Double], report: CorrectionReport) {
        let clock = ContinuousClock.now
        let system = kernel.system
        let energyStart = system.energyEvaluations, gradientStart = system.gradientEvaluations
        let count = energies.count
        if settings.globalMoves > 0 && independence == nil {
            throw SamplingError(step: 0, reason: "global moves need the model's independence kernel")
        }
        let start = settings.annealSteps > 0
            ? try annealedStart(positions: positions, energies: energies, logWeights: logWeights, rng: &rng)
            : try weightedStart(positions: positions, energies: energies, logWeights: logWeights, rng: &rng)
        var state = try kernel.initialize(start.positions)
        var h = (settings.leapfrogSteps == 0 ? start.stepSize : nil) ?? (settings.leapfrogSteps > 0 ? (2 * settings.initialStepSize).squareRoot() : settings.initialStepSize)
        let hmc = settings.leapfrogSteps > 0
            ? HMCKernel(space: kernel.space, system: system, leapfrogSteps: settings.leapfrogSteps) : nil
        let target = hmc == nil ? 0.574 : 0.7
        let adaptation = max(1, settings.steps / 4), half = settings.steps / 2
        var halfway = Self.summary(state.energies, steps: 0, acceptance: .nan)
        var halfwayEnergies = state.energies
        var accepted = 0, counted = 0, globalAccepted = 0, globalMade = 0
        let globalEvery = max(1, (settings.steps - adaptation) / max(1, settings.globalMoves))
        var perSample = [Double](repeating: h, count: count)
        for t in 0..<settings.steps {
            let a: Int
            if settings.stepSizePerSample {
                let moved = try hmc?.step(&state, stepSizes: perSample, rng: &rng)
                    ?? kernel.step(&state, stepSizes: perSample, betas: [Double](repeating: kernel.beta, count: count), rng: &rng)
                a = moved.filter { $0 }.count
                if t < adaptation { for b in 0..<count { perSample[b] *= exp((moved[b] ? 1 : 0) - target) } }
            } else {
                a = try hmc?.step(&state, stepSize: h, rng: &rng) ?? kernel.step(&state, stepSize: h, rng: &rng)
            }
            if let independence, globalMade < settings.globalMoves, t >= adaptation, (t + 1 - adaptation) % globalEvery == 0 {
                globalAccepted += try independence.step(&state, rng: &rng)
                globalMade += 1
            }
            if t < adaptation {
                h *= exp(Double(a) / Double(count) - target)
                // A sample's own step only ever shrinks below the population's: one sample's
                // acceptances are too few to tune a longer step safely.
                if settings.stepSizePerSample { for b in 0..<count { perSample[b] = min(perSample[b], h) } }
            } else {
                accepted += a
                counted += count
            }
            if t + 1 == half {
                halfway = Self.summary(state.energies, steps: half, acceptance: Double(accepted) / Double(max(1, counted)))
                halfwayEnergies = state.energies
            }
            progress(t + 1, settings.steps)
        }
        let final = Self.summary(state.energies, steps: settings.steps, acceptance: Double(accepted) / Double(max(1, counted)))
        let range = settings.stepSizePerSample ? [perSample.min() ?? h, perSample.max() ?? h] : nil
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
            globalAcceptance: globalMade > 0 ? Double(globalAccepted) / Double(globalMade * count) : nil,
            annealingBetas: start.betas)
        return (state.positions, state.energies, report)
    }

    /// The population the MCMC starts from, and how it was made.
    struct Start {
        var positions: [Double]
        var resampled: Bool
        var replaced = 0
        var betas: [Double] = []
        /// The MALA step size the annealing ended with (nil: `initialStepSize`).
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
    /// keep ESS/N ≥ ½. After each choice: resample, then `annealSteps` MALA steps at π_β.
    /// Samples too hot for the target (a sampler that has not learned the deepest wells) cool
    /// gradually instead of being resampled onto a handful of ancestors. Ends at β = 1, where
    /// the ordinary M steps follow.
    func annealedStart(positions: [Double], energies: [Double], logWeights: [Double],
                       rng: inout SeededGenerator) throws -> Start {
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
        var x = positions, betas = [beta], h = settings.initialStepSize
        var stage = kernel
        while true {
            x = gather(x, ImportanceWeights(logWeights: logW).resample(count: count, rng: &rng))
            stage.beta = beta
            var state = try stage.initialize(x)
            for _ in 0..<settings.annealSteps {
                let a = try stage.step(&state, stepSize: h, rng: &rng)
                h *= exp(Double(a) / Double(count) - 0.574)
            }
            x = state.positions
            if beta >= 1 { return Start(positions: x, resampled: true, betas: betas, stepSize: h) }
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
        SampleBatch.rows(positions, stride: kernel.space.coordinateCount, order)
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
