import Equivariant
import Foundation
import PluginHost

/// Metropolis-adjusted Langevin moves of a batch of independent walkers, an `MCMCKernel`:
/// `initialize` evaluates the walkers, `step` moves them once. MALA chains and parallel
/// tempering (`ChainRunner`), local search of the off-policy samplers and the exact correction
/// of trained samplers all run this one kernel.
///
///     y = x − hβ ∇u(x) + √(2h) ε,   accept with min(1, exp(−β u(y) + β u(x) + log q(x|y) − log q(y|x))),
///     q(y|x) = N(y; x − hβ∇u(x), 2h)   (docs/samplers.md; β = 1 at the target)
///
/// Directions (noise, gradients) are projected onto the space, start positions are constrained
/// (centred and/or wrapped), proposals wrapped (x is on the space and every direction is
/// projected, so only the torus needs mapping back), and displacements in q are the space's
/// (minimum images on a torus). Parallel tempering steps its whole ladder with one call,
/// each walker at its own h and β (`step(_:stepSizes:betas:rng:)`).
public struct MALAKernel: MCMCKernel {
    public let space: Space
    public let system: EnergySystem
    /// Step sizes adapt toward the acceptance 0.574, optimal for MALA in high dimension
    /// (Roberts & Rosenthal 1998).
    public var stepSizeRule: StepSizeRule { .adapted(target: 0.574) }
    /// Whether a configuration the plugin refuses stops the run (MCMC chains, whose every
    /// state came from the plugin) instead of being marked u = +∞ and rejected (the correction
    /// and local search, whose walkers start at drawn configurations that may be broken).
    public var strict = false

    /// The walkers of MALA, HMC and the independence kernel: positions, energies and gradients.
    public struct State: WalkerState {
        /// [walkers, n·d]
        public var positions: [Double]
        public var energies: [Double]
        /// ∇u, projected.
        var gradients: [Double]
        public var walkers: Int { energies.count }

        public mutating func swapWalkers(_ a: Int, _ b: Int, betas: (a: Double, b: Double)) {
            let n = positions.count / walkers
            energies.swapAt(a, b)
            for k in 0..<n {
                positions.swapAt(a * n + k, b * n + k)
                gradients.swapAt(a * n + k, b * n + k)
            }
        }

        /// [positions (n·d), gradients (n·d), energy]
        public func packedWalker(_ w: Int) -> [Double] {
            let n = positions.count / walkers
            return Array(positions[(w * n)..<((w + 1) * n)]) + Array(gradients[(w * n)..<((w + 1) * n)]) + [energies[w]]
        }

        public mutating func setWalker(_ w: Int, _ packed: ArraySlice<Double>, from: Double, beta: Double) {
            let n = positions.count / walkers, base = packed.startIndex
            precondition(packed.count == 2 * n + 1)
            for k in 0..<n {
                positions[w * n + k] = packed[base + k]
                gradients[w * n + k] = packed[base + n + k]
            }
            energies[w] = packed[base + 2 * n]
        }

        /// Walker b moves to its proposal (y, u, ∇u of the whole batch).
        mutating func accept(_ b: Int, positions y: [Double], energies u: [Double], gradients g: [Double]) {
            let stride = positions.count / walkers
            energies[b] = u[b]
            for j in (b * stride)..<((b + 1) * stride) {
                positions[j] = y[j]
                gradients[j] = g[j]
            }
        }
    }

    public init(space: Space, system: EnergySystem) {
        self.space = space
        self.system = system
    }

    public func initialize(_ positions: [Double]) throws -> State {
        var x = positions
        space.constrain(&x)
        let batch = x.count / space.coordinateCount
        var (u, g) = try evaluate(x, batch: batch)
        space.project(&g)
        return State(positions: x, energies: u, gradients: g)
    }

    /// Energies and gradients of a batch: configurations the plugin refuses become u = +∞
    /// (`evaluateMarkingFailures`) unless `strict`, where the batch's error stops the caller.
    private func evaluate(_ x: [Double], batch: Int) throws -> (energies: [Double], gradients: [Double]) {
        strict ? try system.evaluate(x, batch: batch, withGradients: true)
            : try system.evaluateMarkingFailures(x, batch: batch)
    }

    /// One move of every walker b with its own step size h_b, targeting exp(−β_b u) (a
    /// tempering ladder in one plugin call); returns which walkers moved.
    public func step(_ state: inout State, stepSizes h: [Double], betas: [Double],
                     rng: inout SeededGenerator) throws -> [Bool] {
        let stride = space.coordinateCount, batch = state.walkers
        precondition(h.count == batch && betas.count == batch)
        let e = space.noise(batch: batch, rng: &rng)
        var y = state.positions
        for b in 0..<batch {
            Self.propose(&y, gradients: state.gradients, noise: e, range: (b * stride)..<((b + 1) * stride),
                         stepSize: h[b], beta: betas[b])
        }
        space.wrap(&y)
        var (uy, gy) = try evaluate(y, batch: batch)
        space.project(&gy)
        var moved = [Bool](repeating: false, count: batch)
        for b in 0..<batch {
            let logAlpha = Self.logAcceptance(
                x: state.positions, gx: state.gradients, ux: state.energies[b], y: y, gy: gy, uy: uy[b],
                range: (b * stride)..<((b + 1) * stride), stepSize: h[b], beta: betas[b], residual: space.residual)
            if log(rng.uniform()) < logAlpha && uy[b].isFinite {
                moved[b] = true
                state.accept(b, positions: y, energies: uy, gradients: gy)
            }
        }
        return moved
    }
}

extension MALAKernel {
    /// The MALA proposal of walkers in place, y = x − hβ∇u(x) + √(2h) ε over `range` (the one
    /// place it is written).
    @inline(__always)
    static func propose(_ y: inout [Double], gradients g: [Double], noise e: [Double], range: Range<Int>,
                        stepSize h: Double, beta: Double) {
        let hb = h * beta, scale = (2 * h).squareRoot()
        for j in range { y[j] += -hb * g[j] + scale * e[j] }
    }

    /// log of one walker's Metropolis–Hastings ratio for x → y over `range` (docs/samplers.md):
    /// −β(u(y) − u(x)) + log q(x|y) − log q(y|x), q(b|a) = N(b; a − hβ∇u(a), 2h); `residual`
    /// turns a coordinate difference (and its index within the walker) into a displacement.
    @inline(__always)
    static func logAcceptance(x: [Double], gx: [Double], ux: Double, y: [Double], gy: [Double], uy: Double,
                              range: Range<Int>, stepSize h: Double, beta: Double,
                              residual: (Double, Int) -> Double) -> Double {
        let hb = h * beta
        var forward = 0.0, backward = 0.0
        for j in range {
            let delta = residual(y[j] - x[j], j - range.lowerBound)
            let f = delta + hb * gx[j], r = -delta + hb * gy[j]
            forward += f * f
            backward += r * r
        }
        return -beta * (uy - ux) - (backward - forward) / (4 * h)
    }
}

extension EnergySystem {
    /// Energies and gradients of a batch, where a configuration the plugin refuses (a
    /// non-finite energy or gradient, e.g. two atoms of a drawn molecule almost on top of each
    /// other) gets u = +∞ and a zero gradient instead of failing the whole batch: MALA rejects
    /// every move to it, and a walker that starts there takes any finite proposal. After a
    /// refused batch each configuration is evaluated alone (counted, like every evaluation).
    /// A batch the plugin accepts is returned exactly as `evaluate` returns it.
    /// - Throws: the batch's error when the plugin refuses every configuration, or a shape mismatch.
    public func evaluateMarkingFailures(_ positions: [Double], batch: Int) throws -> (energies: [Double], gradients: [Double]) {
        do {
            return try evaluate(positions, batch: batch, withGradients: true)
        } catch let error as EnergyError {
            if case .shapeMismatch = error { throw error }
            let stride = coordinateCount
            var energies = [Double](repeating: .infinity, count: batch)
            var gradients = [Double](repeating: 0, count: batch * stride)
            for b in 0..<batch {
                do {
                    let (u, g) = try evaluate(Array(positions[(b * stride)..<((b + 1) * stride)]), batch: 1, withGradients: true)
                    energies[b] = u[0]
                    gradients.replaceSubrange((b * stride)..<((b + 1) * stride), with: g)
                } catch EnergyError.nonFinite, EnergyError.pluginFailed {
                    continue
                }
            }
            // A plugin that refuses every configuration is broken, not a few configurations.
            if !energies.contains(where: \.isFinite) { throw error }
            return (energies, gradients)
        }
    }
}

extension KernelRegistration {
    /// `--sampler mala`: MALA chains at the target temperature.
    public static let mala = KernelRegistration(
        name: "mala", summary: "MALA chains, step size adapted toward 0.574 acceptance during --burn-in",
        make: { space, system in MALAKernel.strict(space: space, system: system) })
    /// `--sampler pt`: MALA within each level of parallel-tempering ladders.
    public static let parallelTempering = KernelRegistration(
        name: "pt", summary: "MALA parallel tempering on ladders of --replicas temperatures", tempered: true,
        make: { space, system in MALAKernel.strict(space: space, system: system) })
}

extension MALAKernel {
    /// A kernel whose walkers all came from the plugin: a configuration it refuses stops the run.
    public static func strict(space: Space, system: EnergySystem) -> MALAKernel {
        var kernel = MALAKernel(space: space, system: system)
        kernel.strict = true
        return kernel
    }
}
