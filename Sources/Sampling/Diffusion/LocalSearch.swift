import Foundation
import PluginHost

/// MALA local search on replay-buffer samples ("improved off-policy training",
/// Sendera et al. 2024): each walker starts at its own configuration, targets π, and the
/// step size h adapts toward acceptance ≈ 0.574 from step to step (kept across calls).
///     y = x − h ∇u(x) + √(2h) ε,  accept with min(1, exp(−u(y) + u(x) + log q(x|y) − log q(y|x))).
/// (`LangevinEnsemble` starts every walker from one configuration; this needs many starts.)
public enum LocalSearch {
    /// - Parameters:
    ///   - x: [batch, n·d] start configurations, updated in place.
    ///   - stepSize: h, adapted in place.
    /// - Returns: final energies and the mean acceptance.
    public static func mala(_ x: inout [Double], batch: Int, steps: Int, stepSize: inout Double,
                            space: DiffusionSpace, system: EnergySystem,
                            rng: inout SeededGenerator) throws -> (energies: [Double], acceptance: Double) {
        let kernel = MALAKernel(space: space, system: system)
        var state = try kernel.initialize(x)
        var accepted = 0
        for _ in 0..<steps {
            let acceptedNow = try kernel.step(&state, stepSize: stepSize, rng: &rng)
            accepted += acceptedNow
            stepSize *= exp(0.5 * (Double(acceptedNow) / Double(batch) - 0.574))
        }
        x = state.positions
        let u = state.energies
        return (u, Double(accepted) / Double(max(1, steps * batch)))
    }
}
