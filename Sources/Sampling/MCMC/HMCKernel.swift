import Equivariant
import Foundation
import PluginHost

/// Hamiltonian Monte Carlo moves of a batch of independent walkers (L leapfrog steps of size ε per
/// proposal, accepted with min(1, exp(H₀ − H₁)), H = βu + pᵀM⁻¹p/2); positions are constrained
/// after every drift. Same state as `MALAKernel`; each proposal costs L gradient evaluations.
///
/// Masses: unit by default, with momenta in the space's tangent space (projected). With
/// `masses` (one per particle, e.g. a molecule's hydrogen-repartitioned masses, `molecular`) the
/// momenta are N(0, M) in the full space and a light atom takes proportionally longer steps, as in
/// molecular dynamics. In a centred space the positions are re-centred after every drift; the
/// target is translation invariant there, so this moves no relative coordinate and the chain of
/// relative coordinates keeps π.
public struct HMCKernel: MCMCKernel {
    public let space: Space
    public let system: EnergySystem
    public let leapfrogSteps: Int
    /// Mass of each particle, or nil for unit masses (see the type's note).
    public var masses: [Double]? = nil
    /// Each proposal's ε is drawn uniformly from ε_b·[1 − j, 1 + j] (independent of the state, so
    /// π stays invariant): a fixed εL can be a half period of some harmonic mode (a stiff bond),
    /// which then flips back and forth without ever mixing (Neal 2011, §5.4.2.2). 0: no jitter.
    public var stepJitter = 0.0
    /// ε adapts toward the acceptance 0.7 (near-optimal for HMC; Beskos et al. 2013: 0.651).
    public var stepSizeRule: StepSizeRule { .adapted(target: 0.7) }

    public init(space: Space, system: EnergySystem, leapfrogSteps: Int) {
        precondition(leapfrogSteps >= 1)
        self.space = space
        self.system = system
        self.leapfrogSteps = leapfrogSteps
    }

    /// HMC for a molecule: hydrogen-repartitioned masses (every X–H hydrogen at `hydrogenMass`
    /// amu, taken from its heavy partner; `MolecularTopology.repartition`), scaled to a mean of 1
    /// so that ε keeps the scale of the unit-mass kernel's.
    public static func molecular(space: Space, system: EnergySystem, leapfrogSteps: Int, atomMasses: [Double],
                                 hydrogenBonds: [BondConstraint], hydrogenMass: Double = 3) -> HMCKernel {
        let m = MolecularTopology.repartition(atomMasses, bonds: hydrogenBonds, hydrogenMass: hydrogenMass)
        let mean = m.reduce(0, +) / Double(m.count)
        var kernel = HMCKernel(space: space, system: system, leapfrogSteps: leapfrogSteps)
        kernel.masses = m.map { $0 / mean }
        kernel.stepJitter = 0.2
        return kernel
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
        var sizes = stepSizes
        if stepJitter > 0 { for b in 0..<batch { sizes[b] *= 1 + stepJitter * (2 * rng.uniform() - 1) } }
        let eps = (0..<(batch * stride)).map { sizes[$0 / stride] }
        let beta = (0..<(batch * stride)).map { betas[$0 / stride] }
        // Inverse mass of every coordinate (1 without masses).
        let d = stride / space.particles
        let inverseMass = masses.map { m in (0..<(batch * stride)).map { 1 / m[($0 % stride) / d] } }
            ?? [Double](repeating: 1, count: batch * stride)
        var p: [Double]
        if masses == nil {
            p = space.noise(batch: batch, rng: &rng)
        } else {
            p = inverseMass.map { rng.normal() / $0.squareRoot() }
        }
        func kinetic(_ b: Int) -> Double {
            var k = 0.0
            for i in 0..<stride { k += 0.5 * p[b * stride + i] * p[b * stride + i] * inverseMass[b * stride + i] }
            return k
        }
        let kinetic0 = (0..<batch).map(kinetic)
        var x = state.positions, g = state.gradients, u = state.energies
        var refused = [Bool](repeating: false, count: batch)
        for j in p.indices { p[j] -= 0.5 * eps[j] * g[j] * beta[j] }
        for l in 0..<leapfrogSteps {
            for j in x.indices { x[j] += eps[j] * p[j] * inverseMass[j] }
            space.constrain(&x)
            (u, g) = try system.evaluateMarkingFailures(x, batch: batch)
            for b in 0..<batch where !u[b].isFinite { refused[b] = true }
            space.project(&g)
            let scale = l == leapfrogSteps - 1 ? 0.5 : 1
            for j in p.indices { p[j] -= scale * eps[j] * g[j] * beta[j] }
        }
        var moved = [Bool](repeating: false, count: batch)
        for b in 0..<batch {
            let logAlpha = betas[b] * state.energies[b] + kinetic0[b] - betas[b] * u[b] - kinetic(b)
            if !refused[b] && log(rng.uniform()) < logAlpha {
                moved[b] = true
                state.accept(b, positions: x, energies: u, gradients: g)
            }
        }
        return moved
    }
}
