import Foundation

/// Estimates with honest error bars for correlated MCMC output.
public enum Statistics {
    /// Mean and its standard error from a time series of per-step averages, by
    /// non-overlapping batch means (`blocks` blocks; the standard error of the
    /// block means). Falls back to the naive error when there are too few points.
    /// - Parameter series: one value per recorded step (e.g. the mean over chains).
    public static func meanAndError(_ series: [Double], blocks: Int = 20) -> (mean: Double, error: Double) {
        let count = series.count
        guard count > 0 else { return (.nan, .nan) }
        let mean = series.reduce(0, +) / Double(count)
        let b = min(blocks, count)
        guard b >= 2 else { return (mean, .nan) }
        let size = count / b
        var blockMeans: [Double] = []
        for k in 0..<b {
            let slice = series[(k * size)..<((k + 1) * size)]
            blockMeans.append(slice.reduce(0, +) / Double(size))
        }
        let m = blockMeans.reduce(0, +) / Double(b)
        let variance = blockMeans.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(b - 1)
        return (mean, (variance / Double(b)).squareRoot())
    }

    /// Sample mean and standard deviation.
    public static func meanAndDeviation(_ values: [Double]) -> (mean: Double, deviation: Double) {
        guard !values.isEmpty else { return (.nan, .nan) }
        let mean = values.reduce(0, +) / Double(values.count)
        guard values.count > 1 else { return (mean, 0) }
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
        return (mean, variance.squareRoot())
    }
}

extension Duration {
    /// The duration in seconds, as a Double (for wall-time reports).
    public var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) * 1e-18
    }
}
