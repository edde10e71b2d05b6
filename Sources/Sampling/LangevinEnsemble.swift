import Foundation
import Distributed
import PluginHost

/// A sampler stopped: the step at which it happened and why.
public struct SamplingError: Error, CustomStringConvertible {
    public var step: Int
    public var reason: String
    public var description: String { "sampling stopped at step \(step): \(reason)" }
}

/// A batch of Metropolis-adjusted Langevin (MALA) walkers, each targeting
/// π_w(x) ∝ exp(−β_w u(x)), evaluated with one plugin call per step.
///
/// This is the engine of both MCMC baselines: plain MALA (all β_w = 1) and
/// parallel tempering (a ladder of β per replica set, plus exchanges).
///
/// Proposal (SAMPLERS.md): y = x − h β ∇u(x) + √(2h) ξ, accepted with
/// min(1, exp(−β u(y) + β u(x) + log q(x|y) − log q(y|x))),
/// q(y|x) = N(y; x − hβ∇u(x), 2h). For translation-invariant clusters every
/// move (noise and drift) is projected onto the zero-centre-of-mass subspace;
/// for periodic boxes positions are wrapped and displacements in q are minimum images.
public final class LangevinEnsemble {
    public let system: EnergySystem
    /// Walkers = ladders × levels; walker w sits at temperature level `w % levels`.
    public let ladders: Int
    public let levels: Int
    /// Inverse temperature (relative to the plugin's kT) of each level; level 0 has β = 1.
    public let betas: [Double]
    public let projectCentreOfMass: Bool
    /// Step size h of each level (adapted during burn-in, then frozen).
    public private(set) var stepSizes: [Double]
    public var targetAcceptance = 0.574
    /// Step sizes at the start: adaptation that grows one by more than `runawayFactor` stops the run.
    private let initialStepSizes: [Double]
    /// How far adaptation may move h from its initial value before the run stops as a runaway
    /// (a proper, confined distribution settles long before: 1e8 covers an initial --step-size
    /// four orders of magnitude off in √h, the proposal's length).
    public var runawayFactor = 1e8

    public private(set) var positions: [Double]
    public private(set) var energies: [Double]
    private var gradients: [Double]
    private var rng: SeededGenerator
    public private(set) var step = 0

    private var accepted: [Int]
    private var proposed: [Int]
    private var exchangeAccepted: [Int]
    private var exchangeAttempted: [Int]
    private var exchangeParity = 0

    var walkers: Int { ladders * levels }
    var stride: Int { system.coordinateCount }

    /// - Parameters:
    ///   - start: one configuration [n·d]; every walker starts there plus `jitter`·N(0,1) noise.
    ///   - betas: the inverse-temperature ladder, betas[0] = 1 (one element for plain MALA); a
    ///     block of higher levels when the ladder is split over MPI ranks (`RankLadderExchange`).
    ///   - ladders: independent copies of the ladder (chains).
    public init(system: EnergySystem, start: [Double], betas: [Double], ladders: Int, seed: UInt64,
                initialStepSize: Double = 1e-4, jitter: Double = 0.01, projectCentreOfMass: Bool) throws {
        precondition(!betas.isEmpty && ladders > 0)
        self.system = system
        self.betas = betas
        self.levels = betas.count
        self.ladders = ladders
        self.projectCentreOfMass = projectCentreOfMass
        stepSizes = betas.map { initialStepSize / $0 }
        initialStepSizes = stepSizes
        rng = SeededGenerator(seed: seed)
        let count = ladders * betas.count
        var x = [Double](repeating: 0, count: count * start.count)
        for w in 0..<count {
            for k in 0..<start.count { x[w * start.count + k] = start[k] + jitter * rng.normal() }
        }
        if projectCentreOfMass { Geometry.removeCentreOfMass(&x, particles: system.particleCount, dimension: system.dimension) }
        if let box = system.box { Geometry.wrap(&x, box: box) }
        positions = x
        do {
            (energies, gradients) = try system.evaluate(x, batch: count)
        } catch {
            throw SamplingError(step: 0, reason: "\(error)")
        }
        if projectCentreOfMass { Geometry.removeCentreOfMass(&gradients, particles: system.particleCount, dimension: system.dimension) }
        accepted = Array(repeating: 0, count: betas.count)
        proposed = Array(repeating: 0, count: betas.count)
        exchangeAccepted = Array(repeating: 0, count: max(betas.count - 1, 0))
        exchangeAttempted = exchangeAccepted
    }

    /// One MALA step of every walker. Returns the acceptance rate of each level in this step.
    @discardableResult
    public func advance() throws -> [Double] {
        step += 1
        let n = stride, count = walkers
        var noise = [Double](repeating: 0, count: count * n)
        rng.fillNormal(&noise)
        if projectCentreOfMass { Geometry.removeCentreOfMass(&noise, particles: system.particleCount, dimension: system.dimension) }
        var proposal = positions
        for w in 0..<count {
            let level = w % levels
            MALAKernel.propose(&proposal, gradients: gradients, noise: noise, range: (w * n)..<((w + 1) * n),
                               stepSize: stepSizes[level], beta: betas[level])
        }
        if let box = system.box { Geometry.wrap(&proposal, box: box) }
        var newEnergies: [Double], newGradients: [Double]
        do {
            (newEnergies, newGradients) = try system.evaluate(proposal, batch: count)
        } catch {
            throw SamplingError(step: step, reason: "\(error)")
        }
        if projectCentreOfMass {
            Geometry.removeCentreOfMass(&newGradients, particles: system.particleCount, dimension: system.dimension)
        }
        var acceptedNow = [Int](repeating: 0, count: levels)
        let box = system.box
        let residual: (Double, Int) -> Double = box.map { box in { d, k in Geometry.minimumImage(d, edge: box[k % box.count]) } }
            ?? { d, _ in d }
        for w in 0..<count {
            let level = w % levels
            let logAlpha = MALAKernel.logAcceptance(
                x: positions, gx: gradients, ux: energies[w], y: proposal, gy: newGradients, uy: newEnergies[w],
                range: (w * n)..<((w + 1) * n), stepSize: stepSizes[level], beta: betas[level], residual: residual)
            proposed[level] += 1
            if log(rng.uniform()) < logAlpha {
                accepted[level] += 1
                acceptedNow[level] += 1
                energies[w] = newEnergies[w]
                for k in 0..<n {
                    positions[w * n + k] = proposal[w * n + k]
                    gradients[w * n + k] = newGradients[w * n + k]
                }
            }
        }
        return acceptedNow.map { Double($0) / Double(ladders) }
    }

    /// Adapt each level's step size toward `targetAcceptance` from this step's acceptance
    /// (Robbins–Monro on log h with gain `gain`). Use only during burn-in.
    public func adapt(acceptance: [Double], gain: Double) {
        for level in 0..<levels {
            stepSizes[level] *= exp(gain * (acceptance[level] - targetAcceptance))
        }
    }

    /// Stops a run whose step-size adaptation runs away: h grew past `runawayFactor` × its
    /// initial value (or overflowed), which means proposals of any length are accepted, as for a
    /// distribution that is not normalisable (a free cluster without confinement evaporates).
    /// - Throws: `SamplingError` naming the level, the step size and what to check.
    public func checkStepSizes() throws {
        for level in 0..<levels {
            let h = stepSizes[level], h0 = initialStepSizes[level]
            guard !(h.isFinite && h <= h0 * runawayFactor) else { continue }
            let levelText = levels > 1 ? " of temperature level \(level)" : ""
            throw SamplingError(step: step, reason: String(
                format: "step-size adaptation ran away: h%@ grew from %.3g to %.3g (mean acceptance so far %.3f, target %.3f). "
                    + "The distribution is probably not confined: particles drift apart without bound (e.g. a free cluster "
                    + "with no confining term: give the plugin one, such as lennard-jones oscillator=1 or a preset, or a periodic box). "
                    + "If the system is confined and only --step-size is far too small, give a larger --step-size.",
                levelText, h0, h, acceptance[level], targetAcceptance))
        }
    }

    /// Stops a run whose adaptation did not settle over the last `steps` burn-in steps: a level's
    /// mean acceptance stayed above target + 0.25, or its h still grew more than tenfold (a
    /// settled level fluctuates by a few 0.01 around the target, and its h by far less than 10×
    /// at the late gain 0.02): the runaway of `checkStepSizes`, caught before h reaches its bound.
    /// - Parameter stepSizesBefore: each level's h when those steps began.
    public func checkSettled(acceptance: [Double], stepSizesBefore: [Double], steps: Int) throws {
        for level in 0..<levels
        where acceptance[level] > targetAcceptance + 0.25 || stepSizes[level] > 10 * stepSizesBefore[level] {
            let levelText = levels > 1 ? " of temperature level \(level)" : ""
            throw SamplingError(step: step, reason: String(
                format: "step-size adaptation did not settle: over the last %d burn-in steps the acceptance%@ was %.3f "
                    + "(target %.3f) and h grew from %.3g to %.3g (%.3g at the start). The distribution is probably not "
                    + "confined: particles drift apart without bound (e.g. a free cluster with no confining term: give the "
                    + "plugin one, such as lennard-jones oscillator=1 or a preset, or a periodic box). If the system is "
                    + "confined, give a larger --step-size or a longer --burn-in.",
                steps, levelText, acceptance[level], targetAcceptance, stepSizesBefore[level], stepSizes[level],
                initialStepSizes[level]))
        }
    }

    /// Attempt replica exchanges between neighbouring levels of every ladder; alternates
    /// even and odd pairs. Swap m↔m+1 with probability min(1, exp((β_m − β_{m+1})(u_m − u_{m+1}))).
    public func exchange() {
        guard levels > 1 else { return }
        var attempted = exchangeAttempted, acceptedSwaps = exchangeAccepted, generator = rng
        replicaExchangeSweep(betas: betas, ladders: ladders, parity: exchangeParity, energies: energies,
                             attempted: &attempted, accepted: &acceptedSwaps, rng: &generator) { swapWalkers($0, $1) }
        (exchangeAttempted, exchangeAccepted, rng) = (attempted, acceptedSwaps, generator)
        exchangeParity ^= 1
    }

    /// Swaps the configurations (positions, energies, gradients) of walkers `a` and `b`.
    public func swapWalkers(_ a: Int, _ b: Int) {
        let n = stride
        energies.swapAt(a, b)
        for k in 0..<n {
            positions.swapAt(a * n + k, b * n + k)
            gradients.swapAt(a * n + k, b * n + k)
        }
    }

    /// Walker `w`'s configuration packed as [positions (n·d), gradients (n·d), energy], to move
    /// it to another rank (`setWalker`).
    public func walker(_ w: Int) -> [Double] {
        let n = stride
        return Array(positions[(w * n)..<((w + 1) * n)]) + Array(gradients[(w * n)..<((w + 1) * n)]) + [energies[w]]
    }

    /// Replaces walker `w`'s configuration by one packed by `walker(_:)`.
    public func setWalker(_ w: Int, _ packed: ArraySlice<Double>) {
        let n = stride, base = packed.startIndex
        precondition(packed.count == 2 * n + 1)
        for k in 0..<n {
            positions[w * n + k] = packed[base + k]
            gradients[w * n + k] = packed[base + n + k]
        }
        energies[w] = packed[base + 2 * n]
    }

    /// Forget acceptance counts (call at the end of burn-in).
    public func resetCounters() {
        accepted = accepted.map { _ in 0 }
        proposed = proposed.map { _ in 0 }
        exchangeAccepted = exchangeAccepted.map { _ in 0 }
        exchangeAttempted = exchangeAttempted.map { _ in 0 }
    }

    /// Acceptance rate of each level since the last reset.
    public var acceptance: [Double] { zip(accepted, proposed).map { $1 > 0 ? Double($0) / Double($1) : .nan } }
    /// Exchange acceptance of each neighbouring pair (m, m+1) since the last reset.
    public var exchangeAcceptance: [Double] {
        zip(exchangeAccepted, exchangeAttempted).map { $1 > 0 ? Double($0) / Double($1) : .nan }
    }

    /// Positions [ladders, n·d] and energies of the β = 1 walker of every ladder.
    public func targetWalkers() -> (positions: [Double], energies: [Double]) {
        var x: [Double] = [], u: [Double] = []
        x.reserveCapacity(ladders * stride)
        for ladder in 0..<ladders {
            let w = ladder * levels
            x.append(contentsOf: positions[(w * stride)..<((w + 1) * stride)])
            u.append(energies[w])
        }
        return (x, u)
    }
}

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

    /// - Parameters:
    ///   - communicator: the ranks sharing the run (default: one rank).
    ///   - distribution: how walkers are split over ranks (ignored with one rank; `.replicas`
    ///     only for PT).
    ///   - record: called (on rank 0 only) with each recorded step's frames ([chains·n·d], all
    ///     ranks' chains in order) and their energies; frames beyond `samples` are not passed.
    ///   - progress: called with (steps done, steps total) now and then.
    /// - Returns: the summary over all ranks (energy statistics on rank 0 only).
    public func run(system: EnergySystem, start: [Double], projectCentreOfMass: Bool,
                    communicator: Communicator = Communicator(), distribution: MCMCDistribution = .chains,
                    record: (_ positions: [Double], _ energies: [Double]) throws -> Void,
                    progress: (Int, Int) -> Void = { _, _ in }) throws -> MCMCSummary {
        let clock = ContinuousClock.now
        let energyStart = system.energyEvaluations, gradientStart = system.gradientEvaluations
        let ranks = communicator.size, rank = communicator.rank
        let allBetas = settings.betas, chains = settings.chains
        let splitLevels = ranks > 1 && distribution == .replicas && allBetas.count > 1
        let chainBlock = splitLevels ? 0..<chains : Self.block(chains, parts: ranks, part: rank)
        let levelBlock = splitLevels ? Self.block(allBetas.count, parts: ranks, part: rank) : 0..<allBetas.count
        precondition(!chainBlock.isEmpty && !levelBlock.isEmpty, "more ranks than chains (or PT levels)")
        let ensemble = try LangevinEnsemble(
            system: system, start: start, betas: Array(allBetas[levelBlock]), ladders: chainBlock.count,
            seed: SeededGenerator.rankSeed(settings.seed, rank: rank),
            initialStepSize: settings.initialStepSize, projectCentreOfMass: projectCentreOfMass)
        let ladder = splitLevels
            ? RankLadderExchange(communicator: communicator, betas: allBetas, ladders: chains, seed: settings.seed)
            : nil
        func exchange() throws {
            if let ladder { try ladder.exchange(ensemble) } else { ensemble.exchange() }
        }
        let production = settings.productionSteps
        let recordings = production / settings.thin
        let total = settings.burnIn + production
        let report = max(1, total / 200)
        // Acceptance over the last quarter of the burn-in: adaptation must have settled by then.
        let settleFrom = settings.burnIn - settings.burnIn / 4
        var lateAcceptance = [Double](repeating: 0, count: levelBlock.count)
        var lateStart = [Double]()
        for t in 0..<settings.burnIn {
            let rates = try ensemble.advance()
            ensemble.adapt(acceptance: rates, gain: max(0.02, 1 / (1 + Double(t) / 20).squareRoot()))
            try ensemble.checkStepSizes()
            if t >= settleFrom { for level in rates.indices { lateAcceptance[level] += rates[level] } }
            if t + 1 == settleFrom { lateStart = ensemble.stepSizes }
            if allBetas.count > 1 && (t + 1) % settings.exchangeEvery == 0 { try exchange() }
            if t % report == 0 { progress(t, total) }
        }
        if settings.burnIn >= 200 {
            try ensemble.checkSettled(acceptance: lateAcceptance.map { $0 / Double(settings.burnIn - settleFrom) },
                                      stepSizesBefore: lateStart, steps: settings.burnIn - settleFrom)
        }
        ensemble.resetCounters()
        ladder?.resetCounters()
        var written = 0, recorded = 0
        var series: [Double] = []
        let stride = system.coordinateCount
        // Recorded steps travel to rank 0 in bundles (one gather per bundle, ~8 MB at most);
        // one rank passes each step on at once, as before.
        let bundle = ranks == 1 ? 1 : max(1, min(1000, 1_000_000 / (chains * (stride + 1))))
        var pending: [Double] = [], pendingSteps = 0
        func deliver() throws {
            let parts = try communicator.gather(pending)
            defer { pending = []; pendingSteps = 0 }
            guard communicator.isRoot else { return }
            for step in 0..<pendingSteps {
                var positions: [Double] = [], energies: [Double] = []
                for part in parts where !part.isEmpty {
                    let size = part.count / pendingSteps, count = size / (stride + 1), base = step * size
                    energies += part[base..<(base + count)]
                    positions += part[(base + count)..<(base + size)]
                }
                let take = min(chains, settings.samples - written)
                if take < chains {
                    positions = Array(positions.prefix(take * stride))
                    energies = Array(energies.prefix(take))
                }
                try record(positions, energies)
                series.append(energies.reduce(0, +) / Double(energies.count))
                written += take
            }
        }
        for t in 0..<production {
            try ensemble.advance()
            if allBetas.count > 1 && (t + 1) % settings.exchangeEvery == 0 { try exchange() }
            if (t + 1) % settings.thin == 0 && recorded < recordings {
                recorded += 1
                // Ranks holding the β = 1 level send [energies, positions] of their chains.
                if levelBlock.lowerBound == 0 {
                    let (x, u) = ensemble.targetWalkers()
                    pending += u
                    pending += x
                }
                pendingSteps += 1
                if pendingSteps == bundle || recorded == recordings { try deliver() }
            }
            if (settings.burnIn + t) % report == 0 { progress(settings.burnIn + t, total) }
        }
        progress(total, total)
        let (mean, error) = communicator.isRoot ? Statistics.meanAndError(series) : (.nan, .nan)
        var summary = MCMCSummary(
            frames: written, energyMean: mean, energyError: error,
            acceptance: ensemble.acceptance, exchangeAcceptance: ladder?.acceptance ?? ensemble.exchangeAcceptance,
            stepSizes: ensemble.stepSizes,
            energyEvaluations: system.energyEvaluations - energyStart,
            gradientEvaluations: system.gradientEvaluations - gradientStart,
            seconds: 0)
        if ranks > 1 {
            let counts = try communicator.sum([summary.energyEvaluations, summary.gradientEvaluations])
            summary.energyEvaluations = counts[0]
            summary.gradientEvaluations = counts[1]
            if splitLevels {
                // Levels are spread over ranks in order: concatenate.
                summary.acceptance = Array(try communicator.allGather(summary.acceptance).joined())
                summary.stepSizes = Array(try communicator.allGather(summary.stepSizes).joined())
            } else {
                // The same levels on every rank: chain-weighted means (step sizes: rank 0's).
                let weight = Double(chainBlock.count) / Double(chains)
                summary.acceptance = try communicator.sum(summary.acceptance.map { $0 * weight })
                summary.exchangeAcceptance = try communicator.sum(summary.exchangeAcceptance.map { $0 * weight })
            }
        }
        summary.seconds = (ContinuousClock.now - clock).inSeconds
        return summary
    }
}
