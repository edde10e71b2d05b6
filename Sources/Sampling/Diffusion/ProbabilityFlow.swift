import Foundation
import PluginHost

/// Samples with an exact density: the probability-flow ODE of the VE process,
/// dx/dt = −½ g(t)² s_θ(x, t) (docs/samplers.md), discretised by Euler steps from t_K = 1 down to 0,
///
///     x_{k−1} = x_k + ½ Δσ²_k s_θ(x_k, t_k),   Δσ²_k = σ(t_k)² − σ(t_{k−1})²,
///
/// is itself an invertible map (a normalising flow) whose log-Jacobian is computed exactly:
/// the full Jacobian J = ∂s_θ/∂x (through the network's Jacobian and `scoreScale`) of every sample from D vector–Jacobian products (one
/// backward pass per coordinate, D ≤ 100 here), then log|det(I + ½Δσ² J)| by LU. So
///
///     log q(x_0) = log p_prior(x_K) − Σ_k log|det(I + ½Δσ²_k J_k)|,   log w = −u(x_0) − log q(x_0)
///
/// are the exact weights of the discrete sampler — no trace estimator and no O(Δt²) error of
/// the continuous-time divergence formula. Centred clusters: the field is translation
/// invariant and mean-free, so J has the translations as null space and the full
/// determinant equals the one on the zero-centre-of-mass subspace (D' in the prior).
extension DiffusionModel {
    /// The network field at (x, t) and its Jacobians J[b] = ∂s/∂x ([batch, D, D], row-major,
    /// J[b][i][j] = ∂s_i/∂x_j), from one forward and D backward passes.
    public func fieldJacobian(positions x: [Double], times: [Double]) -> (field: [Double], jacobian: [Double]) {
        let stride = space.coordinateCount, batch = times.count
        let field = network.forward(positions: x, times: times, conditions: conditions(times.count))
        var jacobian = [Double](repeating: 0, count: batch * stride * stride)
        var seed = [Double](repeating: 0, count: batch * stride)
        for i in 0..<stride {
            for b in 0..<batch { seed[b * stride + i] = 1 }
            let row = network.backward(outputGradient: seed)
            for b in 0..<batch {
                for j in 0..<stride { jacobian[(b * stride + i) * stride + j] = row[b * stride + j] }
                seed[b * stride + i] = 0
            }
        }
        network.zeroGradients()
        return (field, jacobian)
    }

    /// `batch` samples by the discretised probability-flow ODE with their exact log-weights.
    public func sampleProbabilityFlow(batch: Int, system: EnergySystem, rng: inout SeededGenerator) throws -> DiffusionPaths {
        let K = steps
        var (x, logQ) = drawPrior(batch: batch, rng: &rng)
        for k in stride(from: K, through: 1, by: -1) {
            let t = time(k)
            let c = 0.5 * varianceIncrement(k)
            let (s, jacobian) = scoreJacobian(positions: x, times: [Double](repeating: t, count: batch))
            let logDet = stepLogDeterminants(jacobian, scale: c, batch: batch)
            for b in 0..<batch { logQ[b] -= logDet[b] }
            for j in x.indices { x[j] += c * s[j] }
            space.constrain(&x)
            guard x.allSatisfy(\.isFinite) else { throw DiffusionError.divergedPositions(timeStep: k) }
        }
        let energies = try system.evaluate(x, batch: batch, withGradients: false).energies
        let logWeights = (0..<batch).map { -energies[$0] - logQ[$0] }
        return DiffusionPaths(batch: batch, states: [x], sampleEnergies: energies, energyGradients: [],
                              logWeights: logWeights)
    }

    /// log|det(I + c J_b)| of every configuration's step map, J from `fieldJacobian`.
    func stepLogDeterminants(_ jacobian: [Double], scale c: Double, batch: Int) -> [Double] {
        let stride = space.coordinateCount
        var matrix = [Double](repeating: 0, count: stride * stride)
        return (0..<batch).map { b in
            for q in 0..<(stride * stride) { matrix[q] = c * jacobian[b * stride * stride + q] }
            for i in 0..<stride { matrix[i * stride + i] += 1 }
            return Self.logAbsDeterminant(&matrix, size: stride)
        }
    }

    /// log q(x_0) of the discrete probability flow at given configurations [batch, D]: the flow
    /// run backwards, each Euler step x_{k−1} = x_k + c_k s_θ(x_k, t_k) inverted by the
    /// fixed-point iteration x_k ← x_{k−1} − c_k s_θ(x_k, t_k) (a contraction where
    /// c_k‖J_k‖ < 1, which is where the step map is invertible) until no coordinate moves by
    /// more than `tolerance` (default: 1e-10 for a Double network, 1e-5 for a Float one, whose
    /// iteration stalls at its rounding), then
    ///
    ///     log q(x_0) = log p_prior(x_K) − Σ_k log|det(I + c_k J(x_k))|,
    ///
    /// the same function `sampleProbabilityFlow` reports for its own draws. `inverted[b]` is
    /// false where an iteration did not converge (log q unknown there): independence
    /// Metropolis rejects such moves, which keeps it exact.
    public func probabilityFlowLogDensity(_ x0: [Double], tolerance: Double? = nil, maxIterations: Int = 200)
        -> (logDensity: [Double], inverted: [Bool]) {
        let tolerance = tolerance ?? (configuration.precision == .float ? 1e-5 : 1e-10)
        let stride = space.coordinateCount, batch = x0.count / stride
        var x = x0, logQ = [Double](repeating: 0, count: batch), inverted = [Bool](repeating: true, count: batch)
        for k in 1...steps {
            let t = time(k), times = [Double](repeating: t, count: batch)
            let c = 0.5 * varianceIncrement(k)
            var z = x, moved = [Double](repeating: .infinity, count: batch)
            for _ in 0..<maxIterations where moved.contains(where: { !($0 <= tolerance) }) {
                let s = score(positions: z, times: times)
                var next = x
                for j in next.indices { next[j] -= c * s[j] }
                space.constrain(&next)
                for b in 0..<batch {
                    var m = 0.0
                    for j in (b * stride)..<((b + 1) * stride) { m = max(m, abs(space.residual(next[j] - z[j], index: j))) }
                    moved[b] = m.isNaN ? .infinity : m
                }
                z = next
            }
            for b in 0..<batch where !(moved[b] <= tolerance) { inverted[b] = false }
            let logDet = stepLogDeterminants(scoreJacobian(positions: z, times: times).jacobian, scale: c, batch: batch)
            for b in 0..<batch { logQ[b] -= logDet[b] }
            x = z
        }
        let prior = priorLogDensity(x)
        return ((0..<batch).map { inverted[$0] ? logQ[$0] + prior[$0] : .nan }, inverted)
    }

    /// log|det A| of a square matrix by LU with partial pivoting (A is overwritten); −∞ when singular.
    public static func logAbsDeterminant(_ a: inout [Double], size n: Int) -> Double {
        var total = 0.0
        for col in 0..<n {
            var pivot = col, best = abs(a[col * n + col])
            for r in (col + 1)..<max(col + 1, n) where abs(a[r * n + col]) > best { best = abs(a[r * n + col]); pivot = r }
            guard best > 0 else { return -.infinity }
            if pivot != col { for j in 0..<n { a.swapAt(col * n + j, pivot * n + j) } }
            let p = a[col * n + col]
            total += log(abs(p))
            for r in (col + 1)..<max(col + 1, n) {
                let f = a[r * n + col] / p
                if f == 0 { continue }
                for j in col..<n { a[r * n + j] -= f * a[col * n + j] }
            }
        }
        return total
    }
}
