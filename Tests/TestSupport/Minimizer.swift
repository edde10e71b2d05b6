import Foundation

/// Limited-memory BFGS with a backtracking (Armijo) line search.
///
/// The tests use it to find local minima (e.g. the LJ-13 / LJ-55 global minima from a
/// near-minimum start). Stops when the gradient's max-norm falls below
/// `gradientTolerance` or after `maxIterations`.
public struct LBFGSMinimizer {
    public var memory = 10
    public var maxIterations = 10_000
    public var gradientTolerance = 1e-8

    public init(memory: Int = 10, maxIterations: Int = 10_000, gradientTolerance: Double = 1e-8) {
        self.memory = memory
        self.maxIterations = maxIterations
        self.gradientTolerance = gradientTolerance
    }

    public struct Result {
        public var position: [Double]
        public var value: Double
        public var gradientMaxNorm: Double
        public var iterations: Int
    }

    /// Minimise f starting at `x`; `f` returns value and gradient.
    public func minimize(_ x0: [Double], _ f: ([Double]) throws -> (Double, [Double])) rethrows -> Result {
        var x = x0
        var (value, gradient) = try f(x)
        var s: [[Double]] = [], y: [[Double]] = [], rho: [Double] = []
        var iteration = 0
        func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        while iteration < maxIterations {
            if gradient.map(abs).max() ?? 0 < gradientTolerance { break }
            iteration += 1
            // Two-loop recursion: direction = −H·g.
            var q = gradient
            var alphas = [Double](repeating: 0, count: s.count)
            for k in stride(from: s.count - 1, through: 0, by: -1) {
                alphas[k] = rho[k] * dot(s[k], q)
                for i in q.indices { q[i] -= alphas[k] * y[k][i] }
            }
            if let lastS = s.last, let lastY = y.last {
                let gamma = dot(lastS, lastY) / dot(lastY, lastY)
                for i in q.indices { q[i] *= gamma }
            } else {
                let norm = dot(q, q).squareRoot()
                for i in q.indices { q[i] *= 1e-3 / max(norm, 1e-12) }
            }
            for k in 0..<s.count {
                let beta = rho[k] * dot(y[k], q)
                for i in q.indices { q[i] += s[k][i] * (alphas[k] - beta) }
            }
            var direction = q.map { -$0 }
            var slope = dot(direction, gradient)
            if slope >= 0 { // not a descent direction: reset to steepest descent
                s.removeAll(); y.removeAll(); rho.removeAll()
                direction = gradient.map { -$0 }
                slope = dot(direction, gradient)
            }
            var step = 1.0
            var candidate = x, newValue = value, newGradient = gradient
            var accepted = false
            for _ in 0..<60 {
                for i in x.indices { candidate[i] = x[i] + step * direction[i] }
                (newValue, newGradient) = try f(candidate)
                if newValue.isFinite && newValue <= value + 1e-4 * step * slope { accepted = true; break }
                step *= 0.5
            }
            if !accepted { break }
            let sk = zip(candidate, x).map { $0 - $1 }
            let yk = zip(newGradient, gradient).map { $0 - $1 }
            let sy = dot(sk, yk)
            if sy > 1e-16 {
                s.append(sk); y.append(yk); rho.append(1 / sy)
                if s.count > memory { s.removeFirst(); y.removeFirst(); rho.removeFirst() }
            }
            x = candidate; value = newValue; gradient = newGradient
        }
        return Result(position: x, value: value, gradientMaxNorm: gradient.map(abs).max() ?? 0, iterations: iteration)
    }
}
