import Equivariant
import Foundation
import PluginHost

/// Random-walk Metropolis: a symmetric Gaussian proposal, no gradient.
///
///     y = x + √(2h) ε,   accept with min(1, exp(−β (u(y) − u(x))))
///
/// h has MALA's units (`--step-size` means the same), and is adapted toward 0.234 acceptance,
/// optimal for random-walk Metropolis in high dimension (Roberts, Gelman & Gilks 1997). The
/// noise is projected onto the space and proposals wrapped onto a torus, so the proposal stays
/// symmetric (minimum-image displacements). Energies only: one energy evaluation per walker and
/// step; the walkers are `MALAKernel.State`s whose gradients stay zero.
public struct RandomWalkKernel: MCMCKernel {
    public typealias State = MALAKernel.State
    public let space: Space
    public let system: EnergySystem
    public var stepSizeRule: StepSizeRule { .adapted(target: 0.234) }

    public init(space: Space, system: EnergySystem) {
        self.space = space
        self.system = system
    }

    public func initialize(_ positions: [Double]) throws -> State {
        var x = positions
        space.constrain(&x)
        let u = try system.evaluate(x, batch: x.count / space.coordinateCount, withGradients: false).energies
        return State(positions: x, energies: u, gradients: [Double](repeating: 0, count: x.count))
    }

    public func step(_ state: inout State, stepSizes h: [Double], betas: [Double],
                     rng: inout SeededGenerator) throws -> [Bool] {
        let stride = space.coordinateCount, batch = state.walkers
        precondition(h.count == batch && betas.count == batch)
        let e = space.noise(batch: batch, rng: &rng)
        var y = state.positions
        for b in 0..<batch {
            let scale = (2 * h[b]).squareRoot()
            for j in (b * stride)..<((b + 1) * stride) { y[j] += scale * e[j] }
        }
        space.wrap(&y)
        let uy = try system.evaluate(y, batch: batch, withGradients: false).energies
        var moved = [Bool](repeating: false, count: batch)
        for b in 0..<batch where log(rng.uniform()) < -betas[b] * (uy[b] - state.energies[b]) {
            moved[b] = true
            state.energies[b] = uy[b]
            for j in (b * stride)..<((b + 1) * stride) { state.positions[j] = y[j] }
        }
        return moved
    }
}

extension KernelRegistration {
    /// `--sampler rwm`.
    public static let randomWalk = KernelRegistration(
        name: "rwm", summary: "random-walk Metropolis, no gradients, step size adapted toward 0.234 acceptance",
        make: { space, system in RandomWalkKernel(space: space, system: system) })
}
