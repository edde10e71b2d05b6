import Equivariant
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
/// q(y|x) = N(y; x − hβ∇u(x), 2h): the ladder composes one `MALAKernel`, stepping every
/// walker in one call at its level's h and β. The `space` decides the geometry: with the centre
/// of mass fixed every move (noise and drift) is projected onto the zero-centre-of-mass
/// subspace; on a torus positions are wrapped and displacements in q are minimum images.
public final class LangevinEnsemble {
    public let system: EnergySystem
    public let space: Space
    public let kernel: MALAKernel
    /// Walkers = ladders × levels; walker w sits at temperature level `w % levels`.
    public let ladders: Int
    public let levels: Int
    /// Inverse temperature (relative to the plugin's kT) of each level; level 0 has β = 1.
    public let betas: [Double]
    /// Step size h of each level (adapted during burn-in, then frozen).
    public private(set) var stepSizes: [Double]
    public var targetAcceptance = 0.574
    /// Step sizes at the start: adaptation that grows one by more than `runawayFactor` stops the run.
    private let initialStepSizes: [Double]
    /// How far adaptation may move h from its initial value before the run stops as a runaway
    /// (a proper, confined distribution settles long before: 1e8 covers an initial --step-size
    /// four orders of magnitude off in √h, the proposal's length).
    public var runawayFactor = 1e8

    /// The walkers (positions, energies, projected gradients).
    private var state: MALAKernel.State
    public var positions: [Double] { state.positions }
    public var energies: [Double] { state.energies }
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
                initialStepSize: Double = 1e-4, jitter: Double = 0.01, space: Space) throws {
        precondition(!betas.isEmpty && ladders > 0)
        precondition(space.coordinateCount == system.coordinateCount && space.box == system.box,
                     "the space must be the system's (Space.forMCMC)")
        self.system = system
        self.space = space
        var kernel = MALAKernel(space: space, system: system)
        kernel.strict = true
        self.kernel = kernel
        self.betas = betas
        self.levels = betas.count
        self.ladders = ladders
        stepSizes = betas.map { initialStepSize / $0 }
        initialStepSizes = stepSizes
        rng = SeededGenerator(seed: seed)
        let count = ladders * betas.count
        var x = [Double](repeating: 0, count: count * start.count)
        for w in 0..<count {
            for k in 0..<start.count { x[w * start.count + k] = start[k] + jitter * rng.normal() }
        }
        do {
            state = try kernel.initialize(x)
        } catch {
            throw SamplingError(step: 0, reason: "\(error)")
        }
        accepted = Array(repeating: 0, count: betas.count)
        proposed = Array(repeating: 0, count: betas.count)
        exchangeAccepted = Array(repeating: 0, count: max(betas.count - 1, 0))
        exchangeAttempted = exchangeAccepted
    }

    /// One MALA step of every walker. Returns the acceptance rate of each level in this step.
    @discardableResult
    public func advance() throws -> [Double] {
        step += 1
        let moved: [Bool]
        do {
            moved = try kernel.step(&state, stepSizes: (0..<walkers).map { stepSizes[$0 % levels] },
                                    betas: (0..<walkers).map { betas[$0 % levels] }, rng: &rng)
        } catch {
            throw SamplingError(step: step, reason: "\(error)")
        }
        var acceptedNow = [Int](repeating: 0, count: levels)
        for w in 0..<walkers {
            proposed[w % levels] += 1
            if moved[w] { acceptedNow[w % levels] += 1 }
        }
        for level in 0..<levels { accepted[level] += acceptedNow[level] }
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
        state.energies.swapAt(a, b)
        for k in 0..<n {
            state.positions.swapAt(a * n + k, b * n + k)
            state.gradients.swapAt(a * n + k, b * n + k)
        }
    }

    /// Walker `w`'s configuration packed as [positions (n·d), gradients (n·d), energy], to move
    /// it to another rank (`setWalker`).
    public func walker(_ w: Int) -> [Double] {
        let n = stride
        return Array(state.positions[(w * n)..<((w + 1) * n)]) + Array(state.gradients[(w * n)..<((w + 1) * n)])
            + [state.energies[w]]
    }

    /// Replaces walker `w`'s configuration by one packed by `walker(_:)`.
    public func setWalker(_ w: Int, _ packed: ArraySlice<Double>) {
        let n = stride, base = packed.startIndex
        precondition(packed.count == 2 * n + 1)
        for k in 0..<n {
            state.positions[w * n + k] = packed[base + k]
            state.gradients[w * n + k] = packed[base + n + k]
        }
        state.energies[w] = packed[base + 2 * n]
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
    public func targetWalkers() -> (positions: [Double], energies: [Double]) { walkers(atLevel: 0) }

    /// Positions [ladders, n·d] and energies (at β = 1) of every ladder's walker at `level`.
    public func walkers(atLevel level: Int) -> (positions: [Double], energies: [Double]) {
        var x: [Double] = [], u: [Double] = []
        x.reserveCapacity(ladders * stride)
        for ladder in 0..<ladders {
            let w = ladder * levels + level
            x.append(contentsOf: positions[(w * stride)..<((w + 1) * stride)])
            u.append(energies[w])
        }
        return (x, u)
    }
}
