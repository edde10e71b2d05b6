import Foundation
import PluginHost

/// A Markov kernel over a batch of walkers, as a value (jax-md's `init_fn, step_fn`; openmmtools'
/// `MCMCMove`): `initialize` evaluates walkers at given positions, `prepare` draws what the state
/// holds beyond positions (momenta), `step` moves every walker once. Walker w targets
/// π_β ∝ exp(−β_w u), β_w = `betas[w]`, with its own step size `stepSizes[w]` (ignored by kernels
/// whose step is fixed, see `stepSizeRule`). The one `ChainRunner` runs any kernel (burn-in,
/// step-size adaptation, replica exchange, recording, MPI); `SMCCorrection` rejuvenates with any.
///
/// A new kernel is one file conforming to this protocol, plus one line where it is chosen (the
/// command line), see docs/architecture.md.
public protocol MCMCKernel {
    associatedtype State: WalkerState
    /// The plugin every evaluation goes through (its counters are the run's budget).
    var system: EnergySystem { get }
    /// How its step size is set: adapted during burn-in toward the kernel's own target
    /// acceptance, or fixed (a physical time step), or absent.
    var stepSizeRule: StepSizeRule { get }
    /// Whether `step` is a Metropolis test whose acceptances mean something (false for unadjusted
    /// Langevin dynamics, where every move stands).
    var isMetropolized: Bool { get }
    /// Ticks of the chain's clock one `step` takes (MD steps of a GHMC trajectory); 1 for a
    /// Monte Carlo move. Burn-in, thinning and exchanges count in ticks.
    var ticksPerStep: Int { get }

    /// Walkers at `positions` [walkers, n·d] (constrained by the kernel's space), evaluated.
    func initialize(_ positions: [Double]) throws -> State
    /// Draws the rest of the walkers' state for their inverse temperatures (Maxwell velocities);
    /// nothing for a kernel whose state is positions alone.
    func prepare(_ state: inout State, betas: [Double], rng: inout SeededGenerator) throws
    /// One move of every walker; returns which walkers' proposals were accepted.
    func step(_ state: inout State, stepSizes: [Double], betas: [Double], rng: inout SeededGenerator) throws -> [Bool]
}

extension MCMCKernel {
    public var ticksPerStep: Int { 1 }
    public var isMetropolized: Bool { true }
    public func prepare(_ state: inout State, betas: [Double], rng: inout SeededGenerator) throws {}

    /// The acceptance rate its step size adapts toward (nil: not adapted).
    public var targetAcceptance: Double? {
        if case .adapted(let target) = stepSizeRule { return target }
        return nil
    }
}

/// How a kernel's step size is chosen.
public enum StepSizeRule: Equatable, Sendable {
    /// Adapted toward this acceptance rate (`StepSizeAdapter`), then frozen.
    case adapted(target: Double)
    /// A fixed step (dynamics: the time step Δt, in the kernel's units).
    case fixed(Double)
    /// The kernel has no step size (independence moves).
    case none
}

/// What the chain machinery needs of a kernel's state: the walkers' energies, and swapping two
/// walkers' configurations (replica exchange), locally or packed for another rank.
public protocol WalkerState {
    /// [walkers, n·d]
    var positions: [Double] { get }
    /// Reduced energies u (at β = 1).
    var energies: [Double] { get }
    var walkers: Int { get }
    /// Exchanges the configurations of walkers `a` and `b`, which sit at inverse temperatures
    /// `betas.a` and `betas.b` (a momentum is rescaled to its new temperature).
    mutating func swapWalkers(_ a: Int, _ b: Int, betas: (a: Double, b: Double))
    /// Walker `w`'s configuration as one array, to move it to another rank (`setWalker`).
    func packedWalker(_ w: Int) -> [Double]
    /// Replaces walker `w` (at inverse temperature `beta`) by one packed at `from`.
    mutating func setWalker(_ w: Int, _ packed: ArraySlice<Double>, from: Double, beta: Double)
}

/// Accepted / attempted counts per group (temperature level, or exchange pair): the one counter
/// of every kernel, exchange and correction.
public struct AcceptanceCounter: Sendable {
    public private(set) var accepted: [Int]
    public private(set) var attempted: [Int]

    public init(groups: Int) {
        accepted = [Int](repeating: 0, count: max(groups, 0))
        attempted = accepted
    }

    /// Counts one attempt in `group`.
    public mutating func count(_ ok: Bool, group: Int = 0) {
        attempted[group] += 1
        if ok { accepted[group] += 1 }
    }

    /// Counts one step of `moved.count` walkers, walker w in group `w % groups`; returns this
    /// step's accepted count of each group.
    @discardableResult
    public mutating func count(_ moved: [Bool]) -> [Int] {
        var now = [Int](repeating: 0, count: accepted.count)
        for (w, ok) in moved.enumerated() {
            attempted[w % now.count] += 1
            if ok { now[w % now.count] += 1 }
        }
        for g in now.indices { accepted[g] += now[g] }
        return now
    }

    public mutating func reset() { self = AcceptanceCounter(groups: accepted.count) }

    /// Acceptance rate of each group since the last reset (NaN where nothing was attempted).
    public var rates: [Double] { zip(accepted, attempted).map { $1 > 0 ? Double($0) / Double($1) : .nan } }
    /// Accepted over attempted of all groups together.
    public var overall: Double { Double(accepted.reduce(0, +)) / Double(max(1, attempted.reduce(0, +))) }
}

// MARK: - Composition

/// A kernel made of two on the same walkers: the state, the plugin, the step-size rule and
/// the Metropolis flag are the first's.
public protocol ComposedKernel: MCMCKernel where State == First.State {
    associatedtype First: MCMCKernel
    var first: First { get }
}

extension ComposedKernel {
    public var system: EnergySystem { first.system }
    public var stepSizeRule: StepSizeRule { first.stepSizeRule }
    public var isMetropolized: Bool { first.isMetropolized }
    public func initialize(_ positions: [Double]) throws -> State { try first.initialize(positions) }
    public func prepare(_ state: inout State, betas: [Double], rng: inout SeededGenerator) throws {
        try first.prepare(&state, betas: betas, rng: &rng)
    }
}

/// `first` then `second` on the same walkers each step (openmmtools' `SequenceMove`), e.g. MALA
/// then an independence move. Both get the same step sizes; the step-size rule and the
/// acceptances returned are the first's (its step size adapts), the clock ticks for both.
public struct SequenceKernel<First: MCMCKernel, Second: MCMCKernel>: ComposedKernel where First.State == Second.State {
    public var first: First
    public var second: Second
    public init(_ first: First, _ second: Second) {
        self.first = first
        self.second = second
    }
    public var ticksPerStep: Int { first.ticksPerStep + second.ticksPerStep }
    public func step(_ state: inout First.State, stepSizes: [Double], betas: [Double],
                     rng: inout SeededGenerator) throws -> [Bool] {
        let accepted = try first.step(&state, stepSizes: stepSizes, betas: betas, rng: &rng)
        _ = try second.step(&state, stepSizes: stepSizes, betas: betas, rng: &rng)
        return accepted
    }
}

/// Each step one of two kernels, `first` with probability `probability` (one uniform draw for the
/// batch; openmmtools' `WeightedMove`). A mixture of π-invariant kernels is π-invariant.
public struct MixtureKernel<First: MCMCKernel, Second: MCMCKernel>: ComposedKernel where First.State == Second.State {
    public var first: First
    public var second: Second
    public var probability: Double
    public init(_ first: First, _ second: Second, probability: Double) {
        precondition((0...1).contains(probability))
        self.first = first
        self.second = second
        self.probability = probability
    }
    public var ticksPerStep: Int { first.ticksPerStep }
    public func step(_ state: inout First.State, stepSizes: [Double], betas: [Double],
                     rng: inout SeededGenerator) throws -> [Bool] {
        rng.uniform() < probability
            ? try first.step(&state, stepSizes: stepSizes, betas: betas, rng: &rng)
            : try second.step(&state, stepSizes: stepSizes, betas: betas, rng: &rng)
    }
}

extension MCMCKernel {
    /// One move of every walker with one step size h at β; returns how many were accepted.
    @discardableResult
    public func step(_ state: inout State, stepSize h: Double, beta: Double = 1, rng: inout SeededGenerator) throws -> Int {
        let batch = state.walkers
        return try step(&state, stepSizes: [Double](repeating: h, count: batch),
                        betas: [Double](repeating: beta, count: batch), rng: &rng).filter { $0 }.count
    }
}
