import Distributed
import Equivariant
import Foundation
import PluginHost

/// A sampler stopped: the step at which it happened and why.
public struct SamplingError: Error, CustomStringConvertible {
    public var step: Int
    public var reason: String
    public var description: String { "sampling stopped at step \(step): \(reason)" }
}

/// What a chain run is asked to do (`ChainRunner`); for dynamics every count is in MD steps.
public struct MCMCSettings: Codable, Equatable, Sendable {
    /// Independent chains (PT: independent ladders).
    public var chains = 4
    /// Steps per chain before recording, during which step sizes adapt (dynamics: discarded MD steps).
    public var burnIn = 2000
    /// Record every `thin`-th step.
    public var thin = 10
    /// Frames to record in total (over all chains).
    public var samples = 1000
    /// Temperature ladder: T_m / T_0 = maxTemperature^(m/(replicas−1)); replicas = 1: no exchanges.
    public var replicas = 1
    public var maxTemperature = 5.0
    /// Exchange attempt every this many steps (PT, REMD), counted from the start of the run.
    public var exchangeEvery = 10
    public var seed: UInt64 = 1
    public var initialStepSize = 1e-4

    public init() {}

    /// The geometric inverse-temperature ladder β_m = maxTemperature^(−m/(replicas−1)).
    public var betas: [Double] { Self.ladder(replicas: replicas, maxTemperature: maxTemperature) }

    /// Geometric ladder of inverse temperatures, β_0 = 1 … β_{R−1} = 1/maxTemperature.
    public static func ladder(replicas: Int, maxTemperature: Double) -> [Double] {
        replicas <= 1 ? [1] : (0..<replicas).map { pow(maxTemperature, -Double($0) / Double(replicas - 1)) }
    }

    /// Steps per chain after burn-in needed for `samples` frames.
    public var productionSteps: Int { ((samples + chains - 1) / chains) * thin }
}

/// How a molecular-dynamics run moves its walkers (`LangevinDynamicsKernel(system:topology:settings:)`).
public struct DynamicsSettings: Codable, Equatable, Sendable {
    /// Δt, ps.
    public var timeStep = 0.002
    /// γ, 1/ps.
    public var friction = 1.0
    /// Generalised HMC (exact) instead of plain BAOAB Langevin dynamics.
    public var metropolized = false
    /// GHMC: velocity Verlet steps per Metropolis test.
    public var trajectorySteps = 10
    public init() {}

    /// MD steps per kernel move (1 for Langevin, `trajectorySteps` for GHMC).
    public var stepsPerMove: Int { metropolized ? trajectorySteps : 1 }
}

/// The outcome of a chain run.
public struct MCMCSummary {
    public var frames: Int
    public var energyMean: Double
    public var energyError: Double
    /// Acceptance per temperature level during production (level 0 = target); empty for a kernel
    /// that is no Metropolis test (Langevin dynamics).
    public var acceptance: [Double]
    public var exchangeAcceptance: [Double]
    public var stepSizes: [Double]
    public var energyEvaluations: Int
    public var gradientEvaluations: Int
    public var seconds: Double
    /// The ladder's inverse temperatures during production (`MCMCSettings.betas`, or as
    /// `ChainRunner.adaptsLadder` moved them during burn-in).
    public var betas: [Double] = []
}

/// How an MCMC run is split over MPI ranks.
public enum MCMCDistribution: String, Codable, Sendable, CaseIterable {
    /// Each rank runs a contiguous block of the chains (whole ladders for PT); no communication
    /// but the gathering of frames. Needs chains ≥ ranks.
    case chains
    /// Every rank holds a contiguous block of the temperature levels of every ladder; replica
    /// exchanges between levels on neighbouring ranks go through the communicator (ladders only).
    /// Needs replicas ≥ ranks.
    case replicas
}

/// Runs any `MCMCKernel` over `chains` independent ladders of `replicas` temperature levels
/// (MALA chains and parallel tempering, Langevin dynamics / GHMC and their replica exchange):
/// burn-in with step-size adaptation toward the kernel's target acceptance (kernels whose step is
/// adapted), replica exchanges through the one rule (`ReplicaExchange`) every `exchangeEvery`
/// ticks of the clock (kernel steps; MD steps for dynamics), then a frame of every chain's β = 1
/// walker every `thin` ticks, `samples` frames in all.
///
/// With several ranks (`communicator`) each rank runs its share of the walkers with the seed
/// `SeededGenerator.rankSeed(seed, rank)`; rank 0 gathers every recorded step's frames in
/// global chain order and alone calls `record`. One rank reproduces the run without MPI
/// bit for bit.
public struct ChainRunner {
    public var settings: MCMCSettings
    /// Whether burn-in moves the interior temperatures of a ladder of ≥ 3 levels once a
    /// neighbouring pair is predicted to accept < 0.2 of exchanges (`LadderAdaptation`); the
    /// summary's `betas` are then the production ladder. Off: the geometric ladder as set.
    public var adaptsLadder = false
    public init(settings: MCMCSettings) { self.settings = settings }

    /// The contiguous block of `count` items that `part` of `parts` owns (sizes differ by at most one).
    public static func block(_ count: Int, parts: Int, part: Int) -> Range<Int> {
        let base = count / parts, extra = count % parts
        let lower = part * base + min(part, extra)
        return lower..<(lower + base + (part < extra ? 1 : 0))
    }

    /// Which walkers this rank runs: a block of the chains (whole ladders), or of the
    /// temperature levels of every ladder (`.replicas` with several ranks).
    struct Share {
        var chains: Range<Int>
        var levels: Range<Int>
        var splitLevels: Bool

        init(settings: MCMCSettings, ranks: Int, rank: Int, distribution: MCMCDistribution) {
            let levelCount = settings.betas.count
            splitLevels = ranks > 1 && distribution == .replicas && levelCount > 1
            chains = splitLevels ? 0..<settings.chains : ChainRunner.block(settings.chains, parts: ranks, part: rank)
            levels = splitLevels ? ChainRunner.block(levelCount, parts: ranks, part: rank) : 0..<levelCount
            precondition(!chains.isEmpty && !levels.isEmpty, "more ranks than chains (or PT levels)")
        }
    }

    /// MALA chains (replicas = 1) or parallel tempering: `MALAKernel` (a refused configuration
    /// stops the run), every walker starting at `start` plus 0.01·N(0, 1) noise.
    /// - Parameters:
    ///   - space: where the walkers move (`Space.forMCMC`: centre of mass fixed or not, torus or not).
    ///   - record: called (on rank 0 only) with each recorded step's frames ([chains·n·d], all
    ///     ranks' chains in order) and their energies; frames beyond `samples` are not passed.
    ///   - Other parameters: as `run(kernel:…)`.
    public func run(system: EnergySystem, space: Space, start: [Double],
                    communicator: Communicator = Communicator(), distribution: MCMCDistribution = .chains,
                    record: (_ positions: [Double], _ energies: [Double]) throws -> Void,
                    recordHot: ((_ level: Int, _ positions: [Double], _ energies: [Double]) throws -> Void)? = nil,
                    stop: () -> Bool = { false },
                    progress: (Int, Int) -> Void = { _, _ in }) throws -> MCMCSummary {
        precondition(space.coordinateCount == system.coordinateCount && space.box == system.box,
                     "the space must be the system's (Space.forMCMC)")
        return try run(kernel: MALAKernel.strict(space: space, system: system), start: start, jitter: 0.01, communicator: communicator, distribution: distribution,
                       record: { x, u, _ in try record(x, u) }, recordHot: recordHot, stop: stop, progress: progress)
    }

    /// - Parameters:
    ///   - kernel: moves the walkers; its `stepSizeRule` says whether burn-in adapts step sizes
    ///     (from `settings.initialStepSize`/β).
    ///   - start: one configuration [n·d]; every walker starts there plus `jitter`·N(0, 1) noise.
    ///   - communicator: the ranks sharing the run (default: one rank).
    ///   - distribution: how walkers are split over ranks (ignored with one rank; `.replicas`
    ///     only for ladders).
    ///   - record: called (on rank 0 only) with each recorded step's frames ([chains·n·d], all
    ///     ranks' chains in order), their energies and the clock's tick (from the start of
    ///     burn-in); frames beyond `samples` are not passed.
    ///   - recordHot: called at each recorded step with the frames of every hotter level
    ///     (level ≥ 1, inverse temperature `settings.betas[level]`) of this rank's own walkers,
    ///     [chains·n·d] and their energies u at β = 1 (not gathered; for data on each rank).
    ///   - stop: asked on rank 0 after each recorded step; true ends the run with
    ///     `CancellationError` (an interrupt), the frames recorded so far kept.
    ///   - progress: called with (ticks done, ticks total) now and then.
    /// - Returns: the summary over all ranks (energy statistics on rank 0 only).
    public func run<Kernel: MCMCKernel>(
        kernel: Kernel, start: [Double], jitter: Double = 0,
        communicator: Communicator = Communicator(), distribution: MCMCDistribution = .chains,
        record: (_ positions: [Double], _ energies: [Double], _ tick: Int) throws -> Void,
        recordHot: ((_ level: Int, _ positions: [Double], _ energies: [Double]) throws -> Void)? = nil,
        stop: () -> Bool = { false },
        progress: (Int, Int) -> Void = { _, _ in }) throws -> MCMCSummary {
        let clock = ContinuousClock.now
        let system = kernel.system
        let energyStart = system.energyEvaluations, gradientStart = system.gradientEvaluations
        let allBetas = settings.betas
        let share = Share(settings: settings, ranks: communicator.size, rank: communicator.rank, distribution: distribution)
        var chain = try Chain(kernel: kernel, betas: Array(allBetas[share.levels]), ladders: share.chains.count,
                              seed: SeededGenerator.rankSeed(settings.seed, rank: communicator.rank), start: start,
                              jitter: jitter, initialStepSize: settings.initialStepSize)
        let ladder = share.splitLevels
            ? RankLadderExchange(communicator: communicator, betas: allBetas, ladders: settings.chains, seed: settings.seed)
            : nil
        if allBetas.count > 1 { chain.exchanges = (every: settings.exchangeEvery, across: ladder) }
        var adaptation = adaptsLadder
            ? LadderAdaptation(betas: allBetas, burnInSteps: (settings.burnIn + kernel.ticksPerStep - 1) / kernel.ticksPerStep)
            : nil
        try burnIn(&chain, adaptation: &adaptation, share: share, communicator: communicator, across: ladder, progress: progress)
        chain.counter.reset()
        chain.exchange.counter.reset()
        ladder?.resetCounters()
        let (written, series) = try produce(&chain, share: share, communicator: communicator,
                                            record: record, recordHot: recordHot, stop: stop, progress: progress)
        let (mean, error) = communicator.isRoot ? Statistics.meanAndError(series) : (.nan, .nan)
        var summary = MCMCSummary(
            frames: written, energyMean: mean, energyError: error,
            acceptance: kernel.isMetropolized ? chain.counter.rates : [],
            exchangeAcceptance: ladder?.acceptance ?? chain.exchange.counter.rates,
            stepSizes: chain.reportedStepSizes,
            energyEvaluations: system.energyEvaluations - energyStart,
            gradientEvaluations: system.gradientEvaluations - gradientStart,
            seconds: 0, betas: adaptation?.betas ?? allBetas)
        if communicator.size > 1 { try combine(&summary, share: share, communicator: communicator) }
        summary.seconds = (ContinuousClock.now - clock).inSeconds
        return summary
    }

    private var totalTicks: Int { settings.burnIn + settings.productionSteps }

    private func reportEvery(_ ticksPerStep: Int) -> Int { max(1, totalTicks / ticksPerStep / 200) }

    /// Burn-in with Robbins–Monro step-size adaptation (`StepSizeAdapter`, gain
    /// `StepSizeAdapter.gain(step:)`); stops a run whose adaptation runs away or has not settled
    /// over the last quarter.
    ///
    /// With `adaptation`, the ladder moves at the end of its rounds (every rank alike).
    private func burnIn<Kernel>(_ chain: inout Chain<Kernel>, adaptation: inout LadderAdaptation?, share: Share,
                                communicator: Communicator, across: RankLadderExchange?,
                                progress: (Int, Int) -> Void) throws {
        let perStep = chain.kernel.ticksPerStep
        let steps = (settings.burnIn + perStep - 1) / perStep, settleFrom = steps - steps / 4
        var lateAcceptance = [Double](repeating: 0, count: chain.levels)
        var lateStart = [Double]()
        for t in 0..<steps {
            let accepted = try chain.move()
            if var adapter = chain.adapter {
                let rates = accepted.map { Double($0) / Double(chain.ladders) }
                adapter.adapt(acceptance: rates, gain: StepSizeAdapter.gain(step: t))
                chain.adapter = adapter
                try adapter.checkRunaway(step: chain.steps, acceptance: chain.counter.rates)
                if t >= settleFrom { for level in rates.indices { lateAcceptance[level] += rates[level] } }
                if t + 1 == settleFrom { lateStart = adapter.stepSizes }
            }
            adaptation?.measure(step: t, energies: chain.state.energies, levels: share.levels)
            if let sums = adaptation?.roundSums(after: t) {
                let total = communicator.size > 1 ? try communicator.sum(sums) : sums
                if let betas = adaptation?.endRound(total: total) {
                    try chain.retemper(Array(betas[share.levels]))
                    across?.betas = betas
                }
            }
            if t % reportEvery(perStep) == 0 { progress(chain.tick, totalTicks) }
        }
        if let adapter = chain.adapter, settings.burnIn >= 200 {
            try adapter.checkSettled(step: chain.steps, acceptance: lateAcceptance.map { $0 / Double(steps - settleFrom) },
                                     stepSizesBefore: lateStart, steps: steps - settleFrom)
        }
    }

    /// Production: every `thin`-th tick the β = 1 walkers' frames travel to rank 0 (in bundles
    /// of one gather, ~8 MB at most; one rank passes each step on at once), which records
    /// them. Returns the frames written and the per-step mean energies (rank 0).
    private func produce<Kernel>(_ chain: inout Chain<Kernel>, share: Share, communicator: Communicator,
                                 record: (_ positions: [Double], _ energies: [Double], _ tick: Int) throws -> Void,
                                 recordHot: ((_ level: Int, _ positions: [Double], _ energies: [Double]) throws -> Void)?,
                                 stop: () -> Bool,
                                 progress: (Int, Int) -> Void) throws -> (written: Int, series: [Double]) {
        let recordings = settings.productionSteps / settings.thin
        let chains = settings.chains, stride = chain.kernel.system.coordinateCount
        let bundle = communicator.size == 1 ? 1 : max(1, min(1000, 1_000_000 / (chains * (stride + 1))))
        let report = reportEvery(chain.kernel.ticksPerStep)
        var written = 0, recorded = 0, series: [Double] = []
        var pending: [Double] = [], pendingTicks: [Int] = []
        func deliver() throws {
            let parts = try communicator.gather(pending)
            defer { pending = []; pendingTicks = [] }
            guard communicator.isRoot else { return }
            for (step, tick) in pendingTicks.enumerated() {
                let take = min(chains, settings.samples - written)
                let (positions, energies) = Self.unbundle(parts, step: step, steps: pendingTicks.count, stride: stride, take: take)
                try record(positions, energies, tick)
                series.append(energies.reduce(0, +) / Double(energies.count))
                written += take
                if stop() { throw CancellationError() }
            }
        }
        while chain.tick < totalTicks && recorded < recordings {
            let before = chain.tick - settings.burnIn
            _ = try chain.move()
            if (chain.tick - settings.burnIn) / settings.thin != before / settings.thin {
                recorded += 1
                // Ranks holding the β = 1 level send [energies, positions] of their chains.
                if share.levels.lowerBound == 0 {
                    let (x, u) = chain.walkers(atLevel: 0)
                    pending += u
                    pending += x
                }
                if let recordHot {
                    for local in 0..<chain.levels where share.levels.lowerBound + local > 0 {
                        let (x, u) = chain.walkers(atLevel: local)
                        try recordHot(share.levels.lowerBound + local, x, u)
                    }
                }
                pendingTicks.append(chain.tick)
                if pendingTicks.count == bundle || recorded == recordings { try deliver() }
            }
            if chain.steps % report == 0 { progress(chain.tick, totalTicks) }
        }
        if !pendingTicks.isEmpty { try deliver() }
        progress(totalTicks, totalTicks)
        return (written, series)
    }

    /// One recorded step's frames from the ranks' gathered bundles (each rank's part holds
    /// `steps` blocks of [energies, positions]), in global chain order, cut to `take` frames.
    static func unbundle(_ parts: [[Double]], step: Int, steps: Int, stride: Int,
                         take: Int) -> (positions: [Double], energies: [Double]) {
        var positions: [Double] = [], energies: [Double] = []
        for part in parts where !part.isEmpty {
            let size = part.count / steps, count = size / (stride + 1), base = step * size
            energies += part[base..<(base + count)]
            positions += part[(base + count)..<(base + size)]
        }
        if take < energies.count {
            positions = Array(positions.prefix(take * stride))
            energies = Array(energies.prefix(take))
        }
        return (positions, energies)
    }

    /// Sums the evaluation counts over ranks and combines acceptance and step sizes: levels
    /// spread over ranks are concatenated; the same levels on every rank are averaged,
    /// weighted by chains (step sizes: rank 0's).
    private func combine(_ summary: inout MCMCSummary, share: Share, communicator: Communicator) throws {
        let counts = try communicator.sum([summary.energyEvaluations, summary.gradientEvaluations])
        summary.energyEvaluations = counts[0]
        summary.gradientEvaluations = counts[1]
        if share.splitLevels {
            summary.acceptance = Array(try communicator.allGather(summary.acceptance).joined())
            summary.stepSizes = Array(try communicator.allGather(summary.stepSizes).joined())
        } else {
            let weight = Double(share.chains.count) / Double(settings.chains)
            summary.acceptance = try communicator.sum(summary.acceptance.map { $0 * weight })
            summary.exchangeAcceptance = try communicator.sum(summary.exchangeAcceptance.map { $0 * weight })
        }
    }
}

/// One rank's walkers: `ladders` copies of the (local) temperature levels `betas`, walker w at
/// level `w % levels`, moved by `kernel` with one generator (moves and local exchanges), each
/// level's step size adapted or fixed, acceptances counted per level.
struct Chain<Kernel: MCMCKernel> {
    let kernel: Kernel
    let ladders: Int
    let levels: Int
    /// β of every walker.
    private(set) var walkerBetas: [Double]
    var state: Kernel.State
    var rng: SeededGenerator
    /// Adapts the levels' step sizes (kernels with `.adapted`); nil: `fixedStepSize`.
    var adapter: StepSizeAdapter?
    let fixedStepSize: Double?
    var counter: AcceptanceCounter
    var exchange: ReplicaExchange
    /// Exchange every this many ticks, across ranks when the ladder is split (nil: no exchanges).
    var exchanges: (every: Int, across: RankLadderExchange?)?
    /// Kernel steps taken, and ticks of the clock.
    private(set) var steps = 0
    private(set) var tick = 0

    init(kernel: Kernel, betas: [Double], ladders: Int, seed: UInt64, start: [Double], jitter: Double,
         initialStepSize: Double) throws {
        precondition(!betas.isEmpty && ladders > 0)
        self.kernel = kernel
        self.ladders = ladders
        levels = betas.count
        let count = ladders * betas.count, n = start.count
        walkerBetas = (0..<count).map { betas[$0 % betas.count] }
        rng = SeededGenerator(seed: seed)
        var x = [Double](repeating: 0, count: count * n)
        for w in 0..<count {
            for k in 0..<n { x[w * n + k] = jitter == 0 ? start[k] : start[k] + jitter * rng.normal() }
        }
        do {
            state = try kernel.initialize(x)
            try kernel.prepare(&state, betas: walkerBetas, rng: &rng)
        } catch let error as SamplingError {
            throw error
        } catch {
            throw SamplingError(step: 0, reason: "\(error)")
        }
        switch kernel.stepSizeRule {
        case .adapted(let target):
            adapter = StepSizeAdapter(target: target, stepSizes: betas.map { initialStepSize / $0 })
            fixedStepSize = nil
        case .fixed(let h):
            fixedStepSize = h
        case .none:
            fixedStepSize = nil
        }
        counter = AcceptanceCounter(groups: levels)
        exchange = ReplicaExchange(betas: betas, ladders: ladders)
    }

    /// Moves the levels to new inverse temperatures `betas` (local levels): the exchange rule's,
    /// and the walkers' state drawn anew for them (`MCMCKernel.prepare`: Maxwell velocities).
    mutating func retemper(_ betas: [Double]) throws {
        precondition(betas.count == levels)
        walkerBetas = (0..<walkerBetas.count).map { betas[$0 % levels] }
        exchange.betas = betas
        do {
            try kernel.prepare(&state, betas: walkerBetas, rng: &rng)
        } catch let error as SamplingError {
            throw error
        } catch {
            throw SamplingError(step: steps, reason: "\(error)")
        }
    }

    /// Step sizes of the levels, as the summary reports them (a fixed step once).
    var reportedStepSizes: [Double] { adapter?.stepSizes ?? fixedStepSize.map { [$0] } ?? [] }

    /// One kernel step of every walker; returns each level's accepted count.
    mutating func advance() throws -> [Int] {
        steps += 1
        let h = adapter?.stepSizes ?? [Double](repeating: fixedStepSize ?? 0, count: levels)
        let moved: [Bool]
        do {
            moved = try kernel.step(&state, stepSizes: (0..<walkerBetas.count).map { h[$0 % levels] },
                                    betas: walkerBetas, rng: &rng)
        } catch let error as SamplingError {
            throw error
        } catch {
            throw SamplingError(step: steps, reason: "\(error)")
        }
        tick += kernel.ticksPerStep
        return counter.count(moved)
    }

    /// One step of every walker, then the exchange round that fell due during it (the clock's
    /// tick passed a multiple of `exchanges.every`); returns each level's accepted count.
    mutating func move() throws -> [Int] {
        let before = tick
        let accepted = try advance()
        if let (every, across) = exchanges, tick / every != before / every {
            if let across { try across.exchange(&state) } else { exchange.sweep(&state, rng: &rng) }
        }
        return accepted
    }

    /// Positions [ladders, n·d] and energies (at β = 1) of every ladder's walker at `level`.
    func walkers(atLevel level: Int) -> (positions: [Double], energies: [Double]) {
        let stride = kernel.system.coordinateCount
        var x: [Double] = [], u: [Double] = []
        x.reserveCapacity(ladders * stride)
        for ladder in 0..<ladders {
            let w = ladder * levels + level
            x.append(contentsOf: state.positions[(w * stride)..<((w + 1) * stride)])
            u.append(state.energies[w])
        }
        return (x, u)
    }
}
