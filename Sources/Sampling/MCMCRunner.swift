import Distributed
import Equivariant
import Foundation
import PluginHost

/// What an MCMC run is asked to do.
public struct MCMCSettings: Codable, Equatable, Sendable {
    /// Independent chains (PT: independent ladders).
    public var chains = 4
    /// Steps per chain before recording, during which step sizes adapt.
    public var burnIn = 2000
    /// Record every `thin`-th step.
    public var thin = 10
    /// Frames to record in total (over all chains).
    public var samples = 1000
    /// Temperature ladder: T_m / T_0 = maxTemperature^(m/(replicas−1)); replicas = 1 is MALA.
    public var replicas = 1
    public var maxTemperature = 5.0
    /// Exchange attempt every this many steps (PT).
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

/// The outcome of an MCMC run.
public struct MCMCSummary {
    public var frames: Int
    public var energyMean: Double
    public var energyError: Double
    /// Acceptance per temperature level during production (level 0 = target).
    public var acceptance: [Double]
    public var exchangeAcceptance: [Double]
    public var stepSizes: [Double]
    public var energyEvaluations: Int
    public var gradientEvaluations: Int
    public var seconds: Double
}

/// How an MCMC run is split over MPI ranks.
public enum MCMCDistribution: String, Codable, Sendable, CaseIterable {
    /// Each rank runs a contiguous block of the chains (whole ladders for PT); no communication
    /// but the gathering of frames. Needs chains ≥ ranks.
    case chains
    /// Every rank holds a contiguous block of the temperature levels of every ladder; replica
    /// exchanges between levels on neighbouring ranks go through the communicator (PT only).
    /// Needs replicas ≥ ranks.
    case replicas
}

/// Runs burn-in with step-size adaptation, then records frames of the β = 1 walkers.
///
/// With several ranks (`communicator`) each rank runs its share of the walkers with the seed
/// `SeededGenerator.rankSeed(seed, rank)`; rank 0 gathers every recorded step's frames in
/// global chain order and alone calls `record`. One rank reproduces the run without MPI
/// bit for bit.
public struct MCMCRunner {
    public var settings: MCMCSettings
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
            chains = splitLevels ? 0..<settings.chains : MCMCRunner.block(settings.chains, parts: ranks, part: rank)
            levels = splitLevels ? MCMCRunner.block(levelCount, parts: ranks, part: rank) : 0..<levelCount
            precondition(!chains.isEmpty && !levels.isEmpty, "more ranks than chains (or PT levels)")
        }
    }

    /// - Parameters:
    ///   - space: where the walkers move (`Space.forMCMC`: centre of mass fixed or not, torus or not).
    ///   - communicator: the ranks sharing the run (default: one rank).
    ///   - distribution: how walkers are split over ranks (ignored with one rank; `.replicas`
    ///     only for PT).
    ///   - record: called (on rank 0 only) with each recorded step's frames ([chains·n·d], all
    ///     ranks' chains in order) and their energies; frames beyond `samples` are not passed.
    ///   - recordHot: PT: called at each recorded step with the frames of every hotter level
    ///     (level ≥ 1, inverse temperature `settings.betas[level]`) of this rank's own walkers,
    ///     [chains·n·d] and their energies u at β = 1 (not gathered; for data on each rank).
    ///   - progress: called with (steps done, steps total) now and then.
    /// - Returns: the summary over all ranks (energy statistics on rank 0 only).
    public func run(system: EnergySystem, space: Space, start: [Double],
                    communicator: Communicator = Communicator(), distribution: MCMCDistribution = .chains,
                    record: (_ positions: [Double], _ energies: [Double]) throws -> Void,
                    recordHot: ((_ level: Int, _ positions: [Double], _ energies: [Double]) throws -> Void)? = nil,
                    progress: (Int, Int) -> Void = { _, _ in }) throws -> MCMCSummary {
        let clock = ContinuousClock.now
        let energyStart = system.energyEvaluations, gradientStart = system.gradientEvaluations
        let allBetas = settings.betas
        let share = Share(settings: settings, ranks: communicator.size, rank: communicator.rank, distribution: distribution)
        let ensemble = try LangevinEnsemble(
            system: system, start: start, betas: Array(allBetas[share.levels]), ladders: share.chains.count,
            seed: SeededGenerator.rankSeed(settings.seed, rank: communicator.rank),
            initialStepSize: settings.initialStepSize, space: space)
        let ladder = share.splitLevels
            ? RankLadderExchange(communicator: communicator, betas: allBetas, ladders: settings.chains, seed: settings.seed)
            : nil
        let exchange: () throws -> Void = { if let ladder { try ladder.exchange(ensemble) } else { ensemble.exchange() } }
        try burnIn(ensemble, exchange: exchange, progress: progress)
        ensemble.resetCounters()
        ladder?.resetCounters()
        let (written, series) = try produce(ensemble, share: share, communicator: communicator, exchange: exchange,
                                            record: record, recordHot: recordHot, progress: progress)
        let (mean, error) = communicator.isRoot ? Statistics.meanAndError(series) : (.nan, .nan)
        var summary = MCMCSummary(
            frames: written, energyMean: mean, energyError: error,
            acceptance: ensemble.acceptance, exchangeAcceptance: ladder?.acceptance ?? ensemble.exchangeAcceptance,
            stepSizes: ensemble.stepSizes,
            energyEvaluations: system.energyEvaluations - energyStart,
            gradientEvaluations: system.gradientEvaluations - gradientStart,
            seconds: 0)
        if communicator.size > 1 { try combine(&summary, share: share, communicator: communicator) }
        summary.seconds = (ContinuousClock.now - clock).inSeconds
        return summary
    }

    private var totalSteps: Int { settings.burnIn + settings.productionSteps }
    private var reportEvery: Int { max(1, totalSteps / 200) }
    private var exchanges: Bool { settings.betas.count > 1 }

    /// Burn-in with Robbins–Monro step-size adaptation; stops a run whose adaptation runs away
    /// or has not settled over the last quarter.
    private func burnIn(_ ensemble: LangevinEnsemble, exchange: () throws -> Void,
                        progress: (Int, Int) -> Void) throws {
        let settleFrom = settings.burnIn - settings.burnIn / 4
        var lateAcceptance = [Double](repeating: 0, count: ensemble.levels)
        var lateStart = [Double]()
        for t in 0..<settings.burnIn {
            let rates = try ensemble.advance()
            ensemble.adapt(acceptance: rates, gain: max(0.02, 1 / (1 + Double(t) / 20).squareRoot()))
            try ensemble.checkStepSizes()
            if t >= settleFrom { for level in rates.indices { lateAcceptance[level] += rates[level] } }
            if t + 1 == settleFrom { lateStart = ensemble.stepSizes }
            if exchanges && (t + 1) % settings.exchangeEvery == 0 { try exchange() }
            if t % reportEvery == 0 { progress(t, totalSteps) }
        }
        if settings.burnIn >= 200 {
            try ensemble.checkSettled(acceptance: lateAcceptance.map { $0 / Double(settings.burnIn - settleFrom) },
                                      stepSizesBefore: lateStart, steps: settings.burnIn - settleFrom)
        }
    }

    /// Production: every `thin`-th step the β = 1 walkers' frames travel to rank 0 (in bundles
    /// of one gather, ~8 MB at most; one rank passes each step on at once), which records
    /// them. Returns the frames written and the per-step mean energies (rank 0).
    private func produce(_ ensemble: LangevinEnsemble, share: Share, communicator: Communicator,
                         exchange: () throws -> Void,
                         record: (_ positions: [Double], _ energies: [Double]) throws -> Void,
                         recordHot: ((_ level: Int, _ positions: [Double], _ energies: [Double]) throws -> Void)?,
                         progress: (Int, Int) -> Void) throws -> (written: Int, series: [Double]) {
        let production = settings.productionSteps, recordings = production / settings.thin
        let chains = settings.chains, stride = ensemble.system.coordinateCount
        let bundle = communicator.size == 1 ? 1 : max(1, min(1000, 1_000_000 / (chains * (stride + 1))))
        var written = 0, recorded = 0, series: [Double] = []
        var pending: [Double] = [], pendingSteps = 0
        func deliver() throws {
            let parts = try communicator.gather(pending)
            defer { pending = []; pendingSteps = 0 }
            guard communicator.isRoot else { return }
            for step in 0..<pendingSteps {
                let take = min(chains, settings.samples - written)
                let (positions, energies) = Self.unbundle(parts, step: step, steps: pendingSteps, stride: stride, take: take)
                try record(positions, energies)
                series.append(energies.reduce(0, +) / Double(energies.count))
                written += take
            }
        }
        for t in 0..<production {
            try ensemble.advance()
            if exchanges && (t + 1) % settings.exchangeEvery == 0 { try exchange() }
            if (t + 1) % settings.thin == 0 && recorded < recordings {
                recorded += 1
                // Ranks holding the β = 1 level send [energies, positions] of their chains.
                if share.levels.lowerBound == 0 {
                    let (x, u) = ensemble.targetWalkers()
                    pending += u
                    pending += x
                }
                if let recordHot {
                    for local in 0..<ensemble.levels where share.levels.lowerBound + local > 0 {
                        let (x, u) = ensemble.walkers(atLevel: local)
                        try recordHot(share.levels.lowerBound + local, x, u)
                    }
                }
                pendingSteps += 1
                if pendingSteps == bundle || recorded == recordings { try deliver() }
            }
            if (settings.burnIn + t) % reportEvery == 0 { progress(settings.burnIn + t, totalSteps) }
        }
        progress(totalSteps, totalSteps)
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
