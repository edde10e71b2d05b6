import Equivariant
import Foundation
import PluginHost

/// Hamiltonian Monte Carlo moves of a batch of independent walkers (unit mass, L leapfrog steps
/// of size ε per proposal, accepted with min(1, exp(H₀ − H₁)), H = βu + |p|²/2); momenta live in
/// the space's tangent space (projected), positions are constrained after every drift. Same
/// state as `MALAKernel`; each proposal costs L gradient evaluations.
public struct HMCKernel: MCMCKernel {
    public let space: Space
    public let system: EnergySystem
    public let leapfrogSteps: Int
    /// ε adapts toward the acceptance 0.7 (near-optimal for HMC; Beskos et al. 2013: 0.651).
    public var stepSizeRule: StepSizeRule { .adapted(target: 0.7) }

    public init(space: Space, system: EnergySystem, leapfrogSteps: Int) {
        precondition(leapfrogSteps >= 1)
        self.space = space
        self.system = system
        self.leapfrogSteps = leapfrogSteps
    }

    /// The step size ε whose single leapfrog step moves as far as MALA's h: ε = √(2h).
    public static func stepSize(equivalentToMALA h: Double) -> Double { (2 * h).squareRoot() }

    public func initialize(_ positions: [Double]) throws -> MALAKernel.State {
        try MALAKernel(space: space, system: system).initialize(positions)
    }

    /// One proposal per walker b with its own step size ε_b at β_b; returns which walkers moved. A
    /// configuration the plugin refuses on the way (`evaluateMarkingFailures`: u = +∞, zero
    /// gradient) rejects that walker's proposal: the rule depends only on the points the
    /// trajectory visits, which its reversal visits too, so detailed balance holds.
    public func step(_ state: inout MALAKernel.State, stepSizes: [Double], betas: [Double],
                     rng: inout SeededGenerator) throws -> [Bool] {
        let stride = space.coordinateCount, batch = state.walkers
        precondition(stepSizes.count == batch && betas.count == batch)
        let eps = (0..<(batch * stride)).map { stepSizes[$0 / stride] }
        let beta = (0..<(batch * stride)).map { betas[$0 / stride] }
        var p = space.noise(batch: batch, rng: &rng)
        var kinetic0 = [Double](repeating: 0, count: batch)
        for b in 0..<batch { for i in 0..<stride { kinetic0[b] += 0.5 * p[b * stride + i] * p[b * stride + i] } }
        var x = state.positions, g = state.gradients, u = state.energies
        var refused = [Bool](repeating: false, count: batch)
        for j in p.indices { p[j] -= 0.5 * eps[j] * g[j] * beta[j] }
        for l in 0..<leapfrogSteps {
            for j in x.indices { x[j] += eps[j] * p[j] }
            space.constrain(&x)
            (u, g) = try system.evaluateMarkingFailures(x, batch: batch)
            for b in 0..<batch where !u[b].isFinite { refused[b] = true }
            space.project(&g)
            let scale = l == leapfrogSteps - 1 ? 0.5 : 1
            for j in p.indices { p[j] -= scale * eps[j] * g[j] * beta[j] }
        }
        var moved = [Bool](repeating: false, count: batch)
        for b in 0..<batch {
            var kinetic = 0.0
            for i in 0..<stride { kinetic += 0.5 * p[b * stride + i] * p[b * stride + i] }
            let logAlpha = betas[b] * state.energies[b] + kinetic0[b] - betas[b] * u[b] - kinetic
            if !refused[b] && log(rng.uniform()) < logAlpha {
                moved[b] = true
                state.accept(b, positions: x, energies: u, gradients: g)
            }
        }
        return moved
    }
}
