import Equivariant
import Foundation

/// A mean with its standard error, from plain MCMC frames or importance-weighted samples.
public enum WeightedEstimate {
    /// - Parameters:
    ///   - values: one value per frame, in the order the frames were written.
    ///   - weights: self-normalised importance weights (Σ = 1), or nil for MCMC frames.
    /// - Returns: the (weighted) mean and its standard error: batch means (20 blocks,
    ///   `Statistics.meanAndError`) without weights; with weights the delta-method error of
    ///   the self-normalised estimator, √(Σ_i w̄_i² (v_i − μ̂)²) (Owen, *Monte Carlo theory,
    ///   methods and examples*, §9.2), for i.i.d. samples.
    public static func meanAndError(_ values: [Double], weights: [Double]?) -> (mean: Double, error: Double) {
        guard let weights else { return Statistics.meanAndError(values) }
        precondition(weights.count == values.count)
        let mean = zip(weights, values).reduce(0) { $0 + $1.0 * $1.1 }
        let variance = zip(weights, values).reduce(0) { $0 + $1.0 * $1.0 * ($1.1 - mean) * ($1.1 - mean) }
        return (mean, variance.squareRoot())
    }
}

/// The radial distribution function of configurations in a periodic box (minimum image),
/// g(r) = ⟨h(r)⟩ / (½n(n−1) · V_shell(r) / V), h(r) the number of pairs i < j whose
/// minimum-image distance falls in the shell [r − Δr/2, r + Δr/2), V the box volume and
/// V_shell the shell's volume (4/3 π (r₂³ − r₁³) in 3-D, π (r₂² − r₁²) in 2-D, 2Δr in 1-D):
/// the ideal-gas (uniform) pair count, so g → 1 for uniform points. The largest radius is at
/// most half the shortest edge, where every shell lies inside the minimum-image cell.
public struct RadialDistribution: Codable, Sendable {
    /// Bin centres.
    public var radii: [Double]
    public var g: [Double]
    /// Standard error of each g value (`WeightedEstimate`).
    public var error: [Double]
    public var binWidth: Double
    public var frames: Int
    public var weighted: Bool

    /// - Parameters:
    ///   - positions: [frames, n, d] row-major, any image (displacements are minimum images).
    ///   - box: edge lengths, one per axis (d = box.count).
    ///   - maxRadius: the histogram's range (default and upper bound: half the shortest edge).
    ///   - weights: self-normalised importance weights per frame, or nil (MCMC: batch-means errors).
    public static func compute(positions: [Double], particles n: Int, box: [Double], bins: Int = 80,
                               maxRadius: Double? = nil, weights: [Double]? = nil) -> RadialDistribution {
        let d = box.count, stride = n * d
        let frames = positions.count / stride
        let rMax = min(maxRadius ?? .infinity, box.min()! / 2)
        let width = rMax / Double(bins)
        let volume = box.reduce(1, *)
        let pairs = Double(n * (n - 1)) / 2
        func ball(_ r: Double) -> Double {
            switch d {
            case 1: return 2 * r
            case 2: return Double.pi * r * r
            default: return 4.0 / 3.0 * Double.pi * r * r * r
            }
        }
        let ideal = (0..<bins).map { pairs * (ball(Double($0 + 1) * width) - ball(Double($0) * width)) / volume }
        // Per frame and bin: h_fb / ideal_b.
        var perFrame = [Double](repeating: 0, count: frames * bins)
        positions.withUnsafeBufferPointer { x in
            for f in 0..<frames {
                let base = f * stride
                for i in 0..<n { for j in (i + 1)..<n {
                    var sq = 0.0
                    for k in 0..<d {
                        let delta = Space.minimumImage(x[base + i * d + k] - x[base + j * d + k], edge: box[k])
                        sq += delta * delta
                    }
                    let r = sq.squareRoot()
                    if r < rMax { perFrame[f * bins + min(bins - 1, Int(r / width))] += 1 }
                } }
            }
        }
        var g = [Double](repeating: 0, count: bins), error = g
        for b in 0..<bins {
            let values = (0..<frames).map { perFrame[$0 * bins + b] / ideal[b] }
            (g[b], error[b]) = WeightedEstimate.meanAndError(values, weights: weights)
        }
        return RadialDistribution(radii: (0..<bins).map { (Double($0) + 0.5) * width }, g: g, error: error,
                                  binWidth: width, frames: frames, weighted: weights != nil)
    }

    /// Agreement with another g(r) on the same bins: the largest |Δg| / σ (σ² = σ₁² + σ₂²) and
    /// χ²/bins over bins where either g is nonzero (bins where both errors vanish are skipped).
    public func comparison(with other: RadialDistribution) -> (maxDeviation: Double, maxSigma: Double, chiSquaredPerBin: Double) {
        precondition(other.g.count == g.count)
        var maxDeviation = 0.0, maxSigma = 0.0, chi = 0.0, used = 0
        for b in g.indices {
            let delta = abs(g[b] - other.g[b])
            maxDeviation = max(maxDeviation, delta)
            let s = (error[b] * error[b] + other.error[b] * other.error[b]).squareRoot()
            guard s > 0 else { continue }
            maxSigma = max(maxSigma, delta / s)
            chi += delta * delta / (s * s)
            used += 1
        }
        return (maxDeviation, maxSigma, used > 0 ? chi / Double(used) : .nan)
    }
}
