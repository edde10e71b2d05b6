import Foundation

/// Log-variance / VarGrad (Richter et al. 2020): the batch variance of the path log-ratios;
/// no log Z.
extension PathObjective {
    /// L = mean_b (r_b − r̄)²; log Z is not used.
    public static func logVariance(residuals r: [Double], logZ: Double) -> ObjectiveValue {
        let n = Double(r.count)
        let mean = r.reduce(0, +) / n
        var loss = 0.0
        var dr = [Double](repeating: 0, count: r.count)
        for b in r.indices {
            let e = r[b] - mean
            loss += e * e / n
            dr[b] = 2 * e / n  // the mean's own derivative sums to zero
        }
        return ObjectiveValue(loss: loss, residualGradient: dr, logZGradient: 0)
    }
}

extension PathTraining {
    /// The logvar method.
    public static let logVariance = PathTraining(objective: PathObjective.logVariance, learnsLogZ: false)
}

extension DiffusionMethod {
    /// `--method logvar`.
    public static let logvar = DiffusionMethod(declaring: "logvar")
}

extension TrainingMethodRegistration {
    public static let logVariance = TrainingMethodRegistration(
        method: .logvar,
        summary: "the batch variance of the same path log-ratio (VarGrad), no log Z",
        training: PathTraining.logVariance, options: PathObjective.commandLineOptions)
}
