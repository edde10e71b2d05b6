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
        let stride = space.coordinateCount
        var (u, g) = try system.evaluate(x, batch: batch, withGradients: true)
        space.project(&g)
        var accepted = 0
        for _ in 0..<steps {
            let h = stepSize
            let e = space.noise(batch: batch, rng: &rng)
            var y = x
            for j in y.indices { y[j] = x[j] - h * g[j] + (2 * h).squareRoot() * e[j] }
            space.constrain(&y)
            var (uy, gy) = try system.evaluate(y, batch: batch, withGradients: true)
            space.project(&gy)
            var acceptedNow = 0
            for b in 0..<batch {
                var forward = 0.0, backward = 0.0
                for i in 0..<stride {
                    let j = b * stride + i
                    let delta = space.residual(y[j] - x[j], index: i)
                    let f = delta + h * g[j], r = -delta + h * gy[j]
                    forward += f * f
                    backward += r * r
                }
                let logAlpha = -(uy[b] - u[b]) - (backward - forward) / (4 * h)
                if log(rng.uniform()) < logAlpha {
                    acceptedNow += 1
                    u[b] = uy[b]
                    for i in 0..<stride { let j = b * stride + i; x[j] = y[j]; g[j] = gy[j] }
                }
            }
            accepted += acceptedNow
            stepSize *= exp(0.5 * (Double(acceptedNow) / Double(batch) - 0.574))
        }
        return (u, Double(accepted) / Double(max(1, steps * batch)))
    }
}
