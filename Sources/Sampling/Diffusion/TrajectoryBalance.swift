import Foundation

/// Trajectory balance (Malkin et al. 2022; off-policy diffusion samplers, Sendera et al. 2024)
/// with a learned scalar log Z_θ.
extension PathObjective {
    /// L = mean_b (log Z_θ + r_b)².
    public static func trajectoryBalance(residuals r: [Double], logZ: Double) -> ObjectiveValue {
        let n = Double(r.count)
        var loss = 0.0, dz = 0.0
        var dr = [Double](repeating: 0, count: r.count)
        for b in r.indices {
            let e = logZ + r[b]
            loss += e * e / n
            dr[b] = 2 * e / n
            dz += 2 * e / n
        }
        return ObjectiveValue(loss: loss, residualGradient: dr, logZGradient: dz)
    }
}

extension PathTraining {
    /// The tb method.
    public static let trajectoryBalance = PathTraining(objective: PathObjective.trajectoryBalance, learnsLogZ: true)
}

extension DiffusionMethod {
    /// `--method tb`.
    public static let tb = DiffusionMethod(declaring: "tb")
}

extension TrainingMethodRegistration {
    public static let trajectoryBalance = TrainingMethodRegistration(
        method: .tb,
        summary: "off-policy trajectory balance with a learned log Z and a pinned-Brownian reference",
        training: PathTraining.trajectoryBalance, options: PathObjective.commandLineOptions)
}
