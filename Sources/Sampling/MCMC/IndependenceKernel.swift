import Foundation
import PluginHost

/// Independence Metropolis with a trained sampler as the proposal: a global move that sits
/// beside MALA in the same chains (an `MCMCKernel` whose state is MALA's; compose with
/// `SequenceKernel` / `MixtureKernel`, or schedule it as `SMCCorrection` does). Every walker x is offered a fresh draw y ~ q of the model's probability-flow ODE
/// and moves there with probability
///
///     min(1, w(y) / w(x)),   w = exp(−u − log q),
///
/// which leaves π ∝ exp(−u) invariant for any q whose density is exact. log q(y) comes with
/// the draw; log q(x) at the walker's current place (reached by MALA, not by the flow) comes
/// from running the flow backwards (`probabilityFlowLogDensity`). A move is refused where
/// either inversion fails, so the kernel stays exact where the flow is not invertible.
public struct IndependenceKernel: MCMCKernel {
    public let model: DiffusionModel
    public let kernel: MALAKernel
    public var system: EnergySystem { kernel.system }
    public var stepSizeRule: StepSizeRule { .none }

    public init(model: DiffusionModel, kernel: MALAKernel) {
        self.model = model
        self.kernel = kernel
    }

    public func initialize(_ positions: [Double]) throws -> MALAKernel.State { try kernel.initialize(positions) }

    /// One global move of every walker at the target (step sizes unused; β must be 1: the
    /// model's weights are for π); returns which walkers moved. Costs N proposal energies and,
    /// when any moved, N energies and gradients for the new state.
    public func step(_ state: inout MALAKernel.State, stepSizes: [Double], betas: [Double],
                     rng: inout SeededGenerator) throws -> [Bool] {
        precondition(betas.allSatisfy { $0 == 1 }, "independence moves target β = 1")
        let count = state.walkers, stride = kernel.space.coordinateCount
        let proposal = try model.generate(count: count, system: kernel.system, rng: &rng, probabilityFlow: true)
        let current = model.probabilityFlowLogDensity(state.positions)
        // Candidates that pass the Metropolis test; their inversion is then checked too.
        var candidates: [Int] = []
        for b in 0..<count {
            let logWx = -state.energies[b] - current.logDensity[b]
            let logWy = proposal.logWeights[b]
            guard current.inverted[b], logWy.isFinite, logWx.isFinite else { continue }
            if log(rng.uniform()) < logWy - logWx { candidates.append(b) }
        }
        var moved = [Bool](repeating: false, count: count)
        guard !candidates.isEmpty else { return moved }
        let y = SampleBatch.rows(proposal.samples, stride: stride, candidates)
        let invertible = model.probabilityFlowLogDensity(y).inverted
        var positions = state.positions
        for (i, b) in candidates.enumerated() where invertible[i] {
            for j in 0..<stride { positions[b * stride + j] = y[i * stride + j] }
            moved[b] = true
        }
        if moved.contains(true) { state = try kernel.initialize(positions) }
        return moved
    }
}
