import Foundation

/// Convergence diagnostics of MCMC output: several chains of one scalar (e.g. the reduced energy).
///
/// - Integrated autocorrelation time τ = 1 + 2 Σ_{t≥1} ρ(t), with ρ the normalised
///   autocorrelation function averaged over the chains (each chain about its own mean, as in
///   emcee), summed up to Sokal's automatic window: the smallest M with M ≥ c·τ(M), c = 5
///   (A. Sokal, "Monte Carlo methods in statistical mechanics: foundations and new algorithms",
///   1996, §3; D. Foreman-Mackey et al., emcee 3 `integrated_time`). The estimate is trusted
///   when each chain is at least 50 τ long (emcee's rule).
/// - Effective sample size ESS = (chains × draws per chain) / τ, capped at chains × draws per
///   chain: anticorrelated series (τ < 1, e.g. an energy that alternates between frames) would
///   otherwise report more effective draws than there are draws (167 from 20 frames), and the
///   errors derived from it (σ/√ESS) would be too small. (Stan caps it at N·log₁₀ N;
///   here the cap is N itself: never more effective draws than there are draws.)
/// - Split-R̂ of Vehtari, Gelman, Simpson, Carpenter and Bürkner, "Rank-normalization, folding,
///   and localization: an improved R̂ for assessing convergence of MCMC", Bayesian Analysis 16
///   (2021): every chain is cut in halves; R̂ = √(var⁺ / W) with W the mean within-half variance
///   and var⁺ = (n−1)/n·W + B/n; computed on rank-normalised draws (bulk) and on rank-normalised
///   |x − median| (tail, "folded"), reporting the larger. The paper recommends R̂ < 1.01.
public enum ConvergenceDiagnostics {
    /// What a run needs before its numbers are trusted (Vehtari et al. 2021: R̂ < 1.01 and a
    /// bulk ESS above 100 per chain for four chains, i.e. 400; emcee: chains ≥ 50 τ).
    public struct Thresholds: Codable, Equatable, Sendable {
        public var maximumRHat = 1.01
        public var minimumESS = 400.0
        public var minimumChainLengthInTau = 50.0
        public init() {}
    }

    /// The diagnostics of one scalar over several chains.
    public struct Report: Codable, Equatable, Sendable {
        public var chains: Int
        /// Draws per chain used (chains are cut to the shortest).
        public var drawsPerChain: Int
        /// Integrated autocorrelation time, in draws (frames).
        public var integratedAutocorrelationTime: Double
        /// Sokal's window M (draws).
        public var window: Int
        /// (chains × draws per chain) / τ, never more than chains × draws per chain.
        public var effectiveSampleSize: Double
        /// max(bulk, tail) rank-normalised split-R̂.
        public var splitRHat: Double
        public var bulkRHat: Double
        public var tailRHat: Double
        /// Plain split-R̂ on the raw draws (BDA3), for comparison with older tools.
        public var classicSplitRHat: Double
        public var thresholds: Thresholds
        /// Every failed criterion, in words; empty when the run passes all of them.
        public var problems: [String]
        public var converged: Bool { problems.isEmpty }
    }

    /// Diagnoses `chains` (each a series in recording order) against `thresholds`.
    public static func diagnose(_ chains: [[Double]], thresholds: Thresholds = Thresholds(), c: Double = 5) -> Report {
        let n = chains.map(\.count).min() ?? 0
        let cut = chains.map { Array($0.prefix(n)) }
        let (tau, window) = integratedAutocorrelationTime(cut, c: c)
        let ess = essFromTau(tau, draws: n * cut.count)
        let (bulk, tail) = rankNormalizedSplitRHat(cut)
        let rHat = max(bulk, tail)
        var problems: [String] = []
        if n < 4 {
            problems.append("too few draws per chain (\(n)) for any diagnostic")
        } else {
            if !(rHat <= thresholds.maximumRHat) {
                problems.append(String(format: "split-R̂ %.3f > %.2f: the chains (or their halves) disagree", rHat, thresholds.maximumRHat))
            }
            if !(ess >= thresholds.minimumESS) {
                problems.append(String(format: "ESS %.0f < %.0f", ess, thresholds.minimumESS))
            }
            if !(Double(n) >= thresholds.minimumChainLengthInTau * tau) {
                problems.append(String(format: "chains of %d draws are shorter than %.0f τ = %.0f: τ itself is uncertain",
                                       n, thresholds.minimumChainLengthInTau, thresholds.minimumChainLengthInTau * tau))
            }
        }
        return Report(chains: cut.count, drawsPerChain: n, integratedAutocorrelationTime: tau, window: window,
                      effectiveSampleSize: ess, splitRHat: rHat, bulkRHat: bulk, tailRHat: tail,
                      classicSplitRHat: splitRHat(cut), thresholds: thresholds, problems: problems)
    }

    /// Normalised autocorrelation ρ(t), t = 0..<n, averaged over equally long chains (each about
    /// its own mean), by FFT. A constant chain contributes nothing; all constant gives ρ = [1, 0, …].
    public static func autocorrelation(_ chains: [[Double]]) -> [Double] {
        let n = chains.first?.count ?? 0
        guard n > 0 else { return [] }
        var sum = [Double](repeating: 0, count: n), used = 0
        var size = 1
        while size < 2 * n { size <<= 1 }
        for chain in chains where chain.count == n {
            let mean = chain.reduce(0, +) / Double(n)
            var re = [Double](repeating: 0, count: size), im = [Double](repeating: 0, count: size)
            for i in 0..<n { re[i] = chain[i] - mean }
            fft(&re, &im, inverse: false)
            for k in 0..<size { re[k] = re[k] * re[k] + im[k] * im[k]; im[k] = 0 }
            fft(&re, &im, inverse: true)
            let c0 = re[0]
            guard c0 > 0 else { continue }
            for t in 0..<n { sum[t] += re[t] / c0 }
            used += 1
        }
        guard used > 0 else { return [1] + [Double](repeating: 0, count: n - 1) }
        return sum.map { $0 / Double(used) }
    }

    /// τ with Sokal's window: τ(M) = 1 + 2 Σ_{t=1}^{M} ρ(t) at the smallest M ≥ c·τ(M); when no
    /// M < n qualifies, the last τ(M) (an underestimate: the chains are too short).
    /// - Returns: τ in draws (≥ 1 is not enforced: anticorrelated chains give τ < 1) and M.
    public static func integratedAutocorrelationTime(_ chains: [[Double]], c: Double = 5) -> (tau: Double, window: Int) {
        let rho = autocorrelation(chains)
        guard rho.count > 1 else { return (.nan, 0) }
        var tau = 1.0
        for m in 1..<rho.count {
            tau += 2 * rho[m]
            if Double(m) >= c * tau { return (tau, m) }
        }
        return (tau, rho.count - 1)
    }

    /// Effective sample size (chains × draws) / τ, capped at chains × draws (the draws there are;
    /// τ < 1 for anticorrelated chains would give more); nan when τ is not finite and positive.
    public static func effectiveSampleSize(_ chains: [[Double]], c: Double = 5) -> Double {
        let n = chains.map(\.count).min() ?? 0
        let tau = integratedAutocorrelationTime(chains.map { Array($0.prefix(n)) }, c: c).tau
        return essFromTau(tau, draws: n * chains.count)
    }

    /// min(draws / τ, draws), or nan when τ is not finite and positive.
    static func essFromTau(_ tau: Double, draws: Int) -> Double {
        guard tau.isFinite && tau > 0 else { return .nan }
        return min(Double(draws) / tau, Double(draws))
    }

    /// Each chain cut into its first and second half (the middle draw of an odd chain dropped).
    static func halves(_ chains: [[Double]]) -> [[Double]] {
        chains.flatMap { chain -> [[Double]] in
            let half = chain.count / 2
            return [Array(chain.prefix(half)), Array(chain.suffix(half))]
        }
    }

    /// Split-R̂ on the raw draws: √(((n−1)/n·W + B/n) / W) over the half-chains (nan with fewer
    /// than 2 draws per half; 1 when every draw is equal).
    public static func splitRHat(_ chains: [[Double]]) -> Double { rHat(halves(chains)) }

    /// Rank-normalised split-R̂ (bulk) and folded rank-normalised split-R̂ (tail).
    public static func rankNormalizedSplitRHat(_ chains: [[Double]]) -> (bulk: Double, tail: Double) {
        let parts = halves(chains)
        guard let n = parts.first?.count, n >= 2 else { return (.nan, .nan) }
        let pooled = parts.flatMap { $0 }
        let sorted = pooled.sorted()
        let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2]
            : 0.5 * (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2])
        let bulk = rHat(split(rankNormalize(pooled), into: parts.count))
        let tail = rHat(split(rankNormalize(pooled.map { abs($0 - median) }), into: parts.count))
        return (bulk, tail)
    }

    static func split(_ values: [Double], into parts: Int) -> [[Double]] {
        let n = values.count / parts
        return (0..<parts).map { Array(values[($0 * n)..<(($0 + 1) * n)]) }
    }

    /// z = Φ⁻¹((r − 3/8) / (S + 1/4)) with r the average rank of each value among all S (Blom).
    public static func rankNormalize(_ values: [Double]) -> [Double] {
        let count = values.count
        let order = values.indices.sorted { values[$0] < values[$1] }
        var ranks = [Double](repeating: 0, count: count)
        var i = 0
        while i < count {
            var j = i
            while j + 1 < count && values[order[j + 1]] == values[order[i]] { j += 1 }
            let average = Double(i + j) / 2 + 1
            for k in i...j { ranks[order[k]] = average }
            i = j + 1
        }
        return ranks.map { inverseNormal(($0 - 0.375) / (Double(count) + 0.25)) }
    }

    /// R̂ = √(var⁺/W) of equally long chains.
    static func rHat(_ chains: [[Double]]) -> Double {
        guard let n = chains.first?.count, n >= 2, chains.count >= 2 else { return .nan }
        let m = Double(chains.count), size = Double(n)
        let means = chains.map { $0.reduce(0, +) / size }
        let variances = zip(chains, means).map { chain, mean in
            chain.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (size - 1)
        }
        let w = variances.reduce(0, +) / m
        let grand = means.reduce(0, +) / m
        let b = size / (m - 1) * means.reduce(0) { $0 + ($1 - grand) * ($1 - grand) }
        guard w > 0 else { return b > 0 ? .infinity : 1 }
        return (((size - 1) / size * w + b / size) / w).squareRoot()
    }

    /// Φ⁻¹(p), Acklam's rational approximation with one Newton step (relative error ~1e-15).
    public static func inverseNormal(_ p: Double) -> Double {
        guard p > 0 && p < 1 else { return p <= 0 ? -.infinity : .infinity }
        let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
                 -3.066479806614716e+01, 2.506628277459239e+00]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
                 -1.328068155288572e+01]
        let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
                 4.374664141464968e+00, 2.938163982698783e+00]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        let low = 0.02425
        var x: Double
        if p < low {
            let q = (-2 * log(p)).squareRoot()
            x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        } else if p <= 1 - low {
            let q = p - 0.5, r = q * q
            x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
                / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        } else {
            let q = (-2 * log(1 - p)).squareRoot()
            x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        // One Newton step on Φ(x) − p.
        let e = 0.5 * erfc(-x / 2.0.squareRoot()) - p
        let u = e * (2 * Double.pi).squareRoot() * exp(x * x / 2)
        x -= u / (1 + x * u / 2)
        return x
    }

    /// In-place radix-2 FFT (length a power of two); the inverse includes the 1/N.
    static func fft(_ re: inout [Double], _ im: inout [Double], inverse: Bool) {
        let n = re.count
        var j = 0
        for i in 1..<n {
            var bit = n >> 1
            while j & bit != 0 { j ^= bit; bit >>= 1 }
            j |= bit
            if i < j { re.swapAt(i, j); im.swapAt(i, j) }
        }
        var length = 2
        while length <= n {
            let angle = 2 * Double.pi / Double(length) * (inverse ? 1 : -1)
            let wr = cos(angle), wi = sin(angle)
            var start = 0
            while start < n {
                var cr = 1.0, ci = 0.0
                for k in 0..<(length / 2) {
                    let a = start + k, b = a + length / 2
                    let tr = re[b] * cr - im[b] * ci, ti = re[b] * ci + im[b] * cr
                    re[b] = re[a] - tr; im[b] = im[a] - ti
                    re[a] += tr; im[a] += ti
                    let next = cr * wr - ci * wi
                    ci = cr * wi + ci * wr
                    cr = next
                }
                start += length
            }
            length <<= 1
        }
        if inverse { for i in 0..<n { re[i] /= Double(n); im[i] /= Double(n) } }
    }
}
