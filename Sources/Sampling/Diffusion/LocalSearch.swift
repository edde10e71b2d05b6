import Equivariant
import Foundation
import PluginHost

/// MALA local search on replay-buffer samples ("improved off-policy training",
/// Sendera et al. 2024): each walker starts at its own configuration, targets π, and the
/// step size h adapts toward the kernel's target acceptance from step to step (gain ½, kept
/// across calls): `MALAKernel` and `StepSizeAdapter`.
public enum LocalSearch {
    /// - Parameters:
    ///   - x: [batch, n·d] start configurations, updated in place.
    ///   - stepSize: h, adapted in place.
    /// - Returns: final energies and the mean acceptance.
    public static func mala(_ x: inout [Double], batch: Int, steps: Int, stepSize: inout Double,
                            space: Space, system: EnergySystem,
                            rng: inout SeededGenerator) throws -> (energies: [Double], acceptance: Double) {
        let kernel = MALAKernel(space: space, system: system)
        var state = try kernel.initialize(x)
        var adapter = StepSizeAdapter(target: kernel.targetAcceptance!, stepSizes: [stepSize])
        var counter = AcceptanceCounter(groups: 1)
        for _ in 0..<steps {
            let moved = try kernel.step(&state, stepSizes: [Double](repeating: adapter.stepSizes[0], count: batch),
                                        betas: [Double](repeating: 1, count: batch), rng: &rng)
            let acceptedNow = counter.count(moved)[0]
            adapter.adapt(acceptance: [Double(acceptedNow) / Double(batch)], gain: 0.5)
        }
        stepSize = adapter.stepSizes[0]
        x = state.positions
        return (state.energies, counter.overall)
    }
}
