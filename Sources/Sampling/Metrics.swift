import Equivariant
import Dispatch
import Foundation

/// Sample-quality metrics, as the literature computes them (definitions: docs/metrics.md).
/// Every metric carries its convention in its name. Samples are flat arrays
/// [count, particles, dimension] row-major in the plugin's length unit.
public enum Metrics {
    // MARK: - Energy W2

    /// 1-D Wasserstein-2 distance between two empirical distributions, exactly, by
    /// quantile matching: W2² = ∫₀¹ (F⁻¹(s) − G⁻¹(s))² ds over the merged breakpoints
    /// i/n and j/m (works for unequal counts; equal counts reduce to sorted pairing).
    ///
    /// Sources: ASBS tables report √ ("E-W2", `energy_w2` here); the DEM code reports
    /// the square under the same name (`pot.emd2_1d`, `energy_w2_squared` here).
    /// - Returns: (w2, w2²).
    public static func wasserstein1D(_ a: [Double], _ b: [Double]) -> (w2: Double, squared: Double) {
        precondition(!a.isEmpty && !b.isEmpty, "wasserstein1D needs two non-empty samples")
        let x = a.sorted(), y = b.sorted()
        let n = Double(x.count), m = Double(y.count)
        var i = 0, j = 0, s = 0.0, total = 0.0
        while i < x.count && j < y.count {
            let nextI = Double(i + 1) / n, nextJ = Double(j + 1) / m
            let next = min(nextI, nextJ)
            let diff = x[i] - y[j]
            total += (next - s) * diff * diff
            s = next
            if nextI <= next + 1e-15 { i += 1 }
            if nextJ <= next + 1e-15 { j += 1 }
        }
        let squared = max(0, total)
        return (squared.squareRoot(), squared)
    }

    // MARK: - Assignment (Hungarian / Jonker–Volgenant shortest augmenting paths)

    /// Minimum-cost assignment of every row to a distinct column, n ≤ m, O(n²m):
    /// the shortest-augmenting-path form of the Hungarian algorithm with potentials
    /// (Jonker & Volgenant 1987; as in scipy's `linear_sum_assignment`).
    /// - Parameters:
    ///   - cost: [rows, columns] row-major.
    /// - Returns: column of each row.
    public static func assignment(cost: [Double], rows n: Int, columns m: Int) -> [Int] {
        precondition(n <= m && cost.count == n * m, "assignment needs rows ≤ columns and a full matrix")
        if n == 0 { return [] }
        // 1-based potentials u (rows), v (columns); p[j] = row matched to column j.
        var u = [Double](repeating: 0, count: n + 1)
        var v = [Double](repeating: 0, count: m + 1)
        var p = [Int](repeating: 0, count: m + 1)
        var way = [Int](repeating: 0, count: m + 1)
        var minv = [Double](repeating: 0, count: m + 1)
        var used = [Bool](repeating: false, count: m + 1)
        cost.withUnsafeBufferPointer { c in
            for i in 1...n {
                p[0] = i
                var j0 = 0
                for j in 0...m { minv[j] = .infinity; used[j] = false }
                repeat {
                    used[j0] = true
                    let i0 = p[j0]
                    var delta = Double.infinity, j1 = 0
                    let row = (i0 - 1) * m
                    for j in 1...m where !used[j] {
                        let current = c[row + j - 1] - u[i0] - v[j]
                        if current < minv[j] { minv[j] = current; way[j] = j0 }
                        if minv[j] < delta { delta = minv[j]; j1 = j }
                    }
                    for j in 0...m {
                        if used[j] { u[p[j]] += delta; v[j] -= delta } else { minv[j] -= delta }
                    }
                    j0 = j1
                } while p[j0] != 0
                repeat {
                    let j1 = way[j0]
                    p[j0] = p[j1]
                    j0 = j1
                } while j0 != 0
            }
        }
        var result = [Int](repeating: -1, count: n)
        for j in 1...m where p[j] != 0 { result[p[j] - 1] = j - 1 }
        return result
    }

    // MARK: - Kabsch (orthogonal Procrustes, reflections allowed)

    /// min over orthogonal R (rotations and reflections) of ‖x − R y‖² for two
    /// centred point sets [n, d]: ‖x‖² + ‖y‖² − 2‖H‖_*, H = Σ_i x_i y_iᵀ, ‖·‖_* the
    /// nuclear norm (sum of singular values) — the Kabsch/Umeyama result without the
    /// det-sign correction, as the ASBS evaluation allows reflections.
    public static func kabschSquaredDistance(_ x: UnsafePointer<Double>, _ y: UnsafePointer<Double>,
                                             particles n: Int, dimension d: Int) -> Double {
        var h = [Double](repeating: 0, count: d * d)
        var xx = 0.0, yy = 0.0
        for i in 0..<n {
            for a in 0..<d {
                let xa = x[i * d + a]
                xx += xa * xa
                yy += y[i * d + a] * y[i * d + a]
                for b in 0..<d { h[a * d + b] += xa * y[i * d + b] }
            }
        }
        // HᵀH, symmetric d×d; its eigenvalues are the squared singular values.
        var s = [Double](repeating: 0, count: d * d)
        for a in 0..<d { for b in 0..<d {
            var t = 0.0
            for k in 0..<d { t += h[k * d + a] * h[k * d + b] }
            s[a * d + b] = t
        } }
        let nuclear = symmetricEigenvalues(s, size: d).reduce(0) { $0 + max($1, 0).squareRoot() }
        return max(0, xx + yy - 2 * nuclear)
    }

    /// Eigenvalues of a small symmetric matrix by cyclic Jacobi rotations.
    public static func symmetricEigenvalues(_ matrix: [Double], size d: Int) -> [Double] {
        var a = matrix
        for _ in 0..<60 {
            var off = 0.0
            for p in 0..<d { for q in (p + 1)..<max(d, p + 1) where q < d { off += a[p * d + q] * a[p * d + q] } }
            if off < 1e-30 { break }
            for p in 0..<d {
                for q in (p + 1)..<max(d, p + 1) where q < d {
                    let apq = a[p * d + q]
                    if abs(apq) < 1e-300 { continue }
                    let theta = (a[q * d + q] - a[p * d + p]) / (2 * apq)
                    let t = (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), sn = t * c
                    for k in 0..<d {
                        let akp = a[k * d + p], akq = a[k * d + q]
                        a[k * d + p] = c * akp - sn * akq
                        a[k * d + q] = sn * akp + c * akq
                    }
                    for k in 0..<d {
                        let apk = a[p * d + k], aqk = a[q * d + k]
                        a[p * d + k] = c * apk - sn * aqk
                        a[q * d + k] = sn * apk + c * aqk
                    }
                }
            }
        }
        return (0..<d).map { a[$0 * d + $0] }
    }

    /// The ASBS pair distance: centre both configurations, permute y's particles by the
    /// optimal assignment on the particle–particle Euclidean distance matrix (Hungarian),
    /// then rotate onto x by Kabsch (reflections allowed). Returns the squared distance
    /// ‖x − R P y‖² over all coordinates.
    public static func alignedSquaredDistance(_ x: [Double], _ y: [Double], particles n: Int, dimension d: Int) -> Double {
        var a = x, b = y
        Space.removeCentreOfMass(&a, particles: n, dimension: d)
        Space.removeCentreOfMass(&b, particles: n, dimension: d)
        var cost = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n {
            var s = 0.0
            for k in 0..<d { let t = a[i * d + k] - b[j * d + k]; s += t * t }
            cost[i * n + j] = s.squareRoot()
        } }
        let permutation = assignment(cost: cost, rows: n, columns: n)
        var permuted = [Double](repeating: 0, count: n * d)
        for i in 0..<n { for k in 0..<d { permuted[i * d + k] = b[permutation[i] * d + k] } }
        return a.withUnsafeBufferPointer { pa in
            permuted.withUnsafeBufferPointer { pb in
                kabschSquaredDistance(pa.baseAddress!, pb.baseAddress!, particles: n, dimension: d)
            }
        }
    }

    /// Coordinate W2 between two equal-size sample sets with uniform marginals, exactly:
    /// W2 = √(min_π (1/N) Σ_i M²_{i,π(i)}), an assignment problem.
    /// - Parameters:
    ///   - aligned: true → `x_w2_aligned` (ASBS: Hungarian permutation + Kabsch per pair);
    ///     false → `x_w2` (DEM: plain Euclidean distance of centred coordinates).
    ///   - centre: remove each configuration's centre of mass first (clusters).
    public static func coordinateW2(_ generated: [Double], _ reference: [Double], particles n: Int, dimension d: Int,
                                    aligned: Bool, centre: Bool = true, threads: Int = 2) -> Double {
        let size = n * d
        let count = generated.count / size
        precondition(reference.count / size == count && count > 0, "coordinateW2 needs equal, non-zero counts")
        var a = generated, b = reference
        if centre {
            Space.removeCentreOfMass(&a, particles: n, dimension: d)
            Space.removeCentreOfMass(&b, particles: n, dimension: d)
        }
        var cost = [Double](repeating: 0, count: count * count)
        let workers = max(1, min(threads, count))
        cost.withUnsafeMutableBufferPointer { c in
            let out = c
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                for i in stride(from: w, to: count, by: workers) {
                    let xi = Array(a[(i * n * d)..<((i + 1) * n * d)])
                    for j in 0..<count {
                        if aligned {
                            let yj = Array(b[(j * n * d)..<((j + 1) * n * d)])
                            out[i * count + j] = alignedSquaredDistance(xi, yj, particles: n, dimension: d)
                        } else {
                            var s = 0.0
                            for k in 0..<(n * d) { let t = xi[k] - b[j * n * d + k]; s += t * t }
                            out[i * count + j] = s
                        }
                    }
                }
            }
        }
        let match = assignment(cost: cost, rows: count, columns: count)
        var total = 0.0
        for i in 0..<count { total += cost[i * count + match[i]] }
        return (total / Double(count)).squareRoot()
    }

    // MARK: - Interatomic distances

    /// All i<j pair distances of every configuration.
    public static func pairDistances(_ x: [Double], particles n: Int, dimension d: Int) -> [Double] {
        let stride = n * d, count = x.count / stride
        var out: [Double] = []
        out.reserveCapacity(count * n * (n - 1) / 2)
        for c in 0..<count {
            let base = c * stride
            for i in 0..<n { for j in (i + 1)..<max(n, i + 1) where j < n {
                var s = 0.0
                for k in 0..<d { let t = x[base + i * d + k] - x[base + j * d + k]; s += t * t }
                out.append(s.squareRoot())
            } }
        }
        return out
    }

    /// Total variation between the histograms of two samples, `bins` shared bins over
    /// the joint range: TV = ½ Σ_k |p_k − q_k| (iDEM/ASBS `distance_tv` with 200 bins).
    public static func histogramTV(_ a: [Double], _ b: [Double], bins: Int = 200) -> Double {
        precondition(!a.isEmpty && !b.isEmpty && bins > 0)
        let lo = min(a.min()!, b.min()!), hi = max(a.max()!, b.max()!)
        let width = hi > lo ? (hi - lo) / Double(bins) : 1
        func histogram(_ v: [Double]) -> [Double] {
            var h = [Double](repeating: 0, count: bins)
            for x in v { h[min(bins - 1, max(0, Int((x - lo) / width)))] += 1 }
            return h.map { $0 / Double(v.count) }
        }
        let p = histogram(a), q = histogram(b)
        return 0.5 * zip(p, q).reduce(0) { $0 + abs($1.0 - $1.1) }
    }

    /// `distance_tv`: TV of the interatomic-distance histograms (200 shared bins).
    public static func distanceTV(_ generated: [Double], _ reference: [Double], particles n: Int, dimension d: Int,
                                  bins: Int = 200) -> Double {
        histogramTV(pairDistances(generated, particles: n, dimension: d),
                    pairDistances(reference, particles: n, dimension: d), bins: bins)
    }
}

/// Importance weights log w_i of generated samples: ESS, log Ẑ, reweighting, resampling.
public struct ImportanceWeights: Sendable {
    public var logWeights: [Double]

    public init(logWeights: [Double]) { self.logWeights = logWeights }

    /// log Σ exp(v).
    public static func logSumExp(_ v: [Double]) -> Double {
        guard let m = v.max(), m.isFinite else { return v.max() ?? -.infinity }
        return m + log(v.reduce(0) { $0 + exp($1 - m) })
    }

    public var count: Int { logWeights.count }
    /// log Ẑ = logsumexp(log w) − log N (an unbiased Ẑ; E log Ẑ ≤ log Z by Jensen).
    public var logZ: Double { Self.logSumExp(logWeights) - log(Double(count)) }
    /// ESS = (Σw)²/Σw².
    public var effectiveSampleSize: Double {
        exp(2 * Self.logSumExp(logWeights) - Self.logSumExp(logWeights.map { 2 * $0 }))
    }
    /// ESS/N in (0, 1].
    public var effectiveSampleFraction: Double { effectiveSampleSize / Double(count) }
    /// Mean of log w: an ELBO, ≤ log Z.
    public var meanLogWeight: Double { logWeights.reduce(0, +) / Double(count) }

    /// Self-normalised weights w_i/Σw.
    public var normalizedWeights: [Double] {
        let l = Self.logSumExp(logWeights)
        return logWeights.map { exp($0 - l) }
    }

    /// Bootstrap standard error of log Ẑ (`resamples` resamplings with replacement).
    public func logZError(resamples: Int = 200, seed: UInt64 = 7) -> Double {
        guard count > 1 else { return .nan }
        var rng = SeededGenerator(seed: seed)
        var estimates: [Double] = []
        for _ in 0..<resamples {
            let draw = (0..<count).map { _ in logWeights[Int(rng.next() % UInt64(count))] }
            estimates.append(Self.logSumExp(draw) - log(Double(count)))
        }
        return Statistics.meanAndDeviation(estimates).deviation
    }

    /// Self-normalised reweighted mean Σ w_i f_i / Σ w_i.
    public func reweightedMean(_ values: [Double]) -> Double {
        zip(normalizedWeights, values).reduce(0) { $0 + $1.0 * $1.1 }
    }

    /// Multinomial resampling: `count` indices drawn with probability w_i/Σw.
    public func resample(count draws: Int, rng: inout SeededGenerator) -> [Int] {
        var cumulative: [Double] = []
        var s = 0.0
        for w in normalizedWeights { s += w; cumulative.append(s) }
        return (0..<draws).map { _ in
            let u = rng.uniform() * s
            var lo = 0, hi = cumulative.count - 1
            while lo < hi { let mid = (lo + hi) / 2; if cumulative[mid] > u { hi = mid } else { lo = mid + 1 } }
            return lo
        }
    }
}
