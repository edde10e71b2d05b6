import Equivariant
import TestSupport
import XCTest

/// Random positions [batch, n, d]: Gaussian (free) or uniform in the box.
func randomPositions(_ c: EGNNConfiguration, batch: Int, rng: inout TestRandom, scale: Double = 1) -> [Double] {
    (0..<(batch * c.particles * c.dimension)).map { q in
        if let box = c.box { return rng.uniform() * box[q % c.dimension] }
        return scale * rng.normal()
    }
}

/// Minimum-image pair distances of one configuration.
func pairDistances(_ x: [Double], config c: EGNNConfiguration, configuration b: Int) -> [Double] {
    let space = c.space, n = c.particles, d = c.dimension
    var out: [Double] = []
    for i in 0..<n {
        for j in (i + 1)..<n {
            let a = Array(x[((b * n + i) * d)..<((b * n + i + 1) * d)])
            let bb = Array(x[((b * n + j) * d)..<((b * n + j + 1) * d)])
            let v = space.displacement(a, bb)
            out.append(v.map { $0 * $0 }.reduce(0, +).squareRoot())
        }
    }
    return out
}

/// Random orthogonal d×d matrix (Gram–Schmidt of a Gaussian), with a
/// reflection when `reflect`.
func randomOrthogonal(_ d: Int, reflect: Bool, rng: inout TestRandom) -> [[Double]] {
    var q: [[Double]] = []
    while q.count < d {
        var v = (0..<d).map { _ in rng.normal() }
        for u in q {
            let p = zip(u, v).map(*).reduce(0, +)
            v = zip(v, u).map { $0 - p * $1 }
        }
        let norm = v.map { $0 * $0 }.reduce(0, +).squareRoot()
        if norm > 1e-3 { q.append(v.map { $0 / norm }) }
    }
    // Force the determinant's sign: det of Gram–Schmidt output is ±1.
    let det: Double = d == 2 ? q[0][0] * q[1][1] - q[0][1] * q[1][0]
        : q[0][0] * (q[1][1] * q[2][2] - q[1][2] * q[2][1]) - q[0][1] * (q[1][0] * q[2][2] - q[1][2] * q[2][0])
            + q[0][2] * (q[1][0] * q[2][1] - q[1][1] * q[2][0])
    if (det < 0) != reflect { q[0] = q[0].map { -$0 } }
    return q
}

/// y_i = Q x_i for every d-vector of a flat array.
func rotate(_ x: [Double], _ q: [[Double]]) -> [Double] {
    let d = q.count
    var y = x
    for p in stride(from: 0, to: x.count, by: d) {
        for r in 0..<d {
            var s = 0.0
            for c in 0..<d { s += q[r][c] * x[p + c] }
            y[p + r] = s
        }
    }
    return y
}

/// Permute particles within every configuration: out[π(i)] = x[i]... here out[i] = x[perm[i]].
func permute(_ x: [Double], _ perm: [Int], n: Int, d: Int) -> [Double] {
    var y = x
    let batch = x.count / (n * d)
    for b in 0..<batch {
        for i in 0..<n {
            for k in 0..<d { y[(b * n + i) * d + k] = x[(b * n + perm[i]) * d + k] }
        }
    }
    return y
}

func maxAbsDiff(_ a: [Double], _ b: [Double]) -> Double {
    zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

func randomPermutation(_ n: Int, rng: inout TestRandom) -> [Int] {
    var p = Array(0..<n)
    for i in stride(from: n - 1, to: 0, by: -1) {
        let j = Int(rng.next() % UInt64(i + 1))
        p.swapAt(i, j)
    }
    return p
}
