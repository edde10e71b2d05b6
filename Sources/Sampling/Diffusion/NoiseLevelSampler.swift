import Foundation
import PluginHost

/// How a score model's draw steps down its noise levels (docs/samplers.md, "Few network steps").
public enum Integrator: String, Codable, Sendable, CaseIterable {
    /// First order: the probability-flow ODE's Euler step, or (stochastic) the reverse-diffusion step.
    case euler
    /// Second order (EDM Algorithm 1): an Euler step corrected by the slope at its end point; with
    /// noise, EDM Algorithm 2 (churn: raise σ_i to σ̂ = σ_i(1 + γ) by fresh noise, then a Heun step).
    case heun
    /// Predictor–corrector (Song et al. 2021): a reverse-diffusion step, then Langevin steps with
    /// the learned score at the new noise level.
    case pc
}

/// What a draw on the noise-level grid does.
public struct DrawSettings: Equatable, Sendable {
    public var integrator: Integrator = .heun
    /// Noise levels N of the grid (σ_0 = σ_max … σ_{N−1} = σ_min, then σ_N = 0).
    public var steps = 20
    /// Deterministic (probability flow) or stochastic.
    public var stochastic = false
    /// Exact log-weights of a deterministic draw (the step maps' Jacobians: D backward passes per
    /// network call); otherwise log w is nan (no weight).
    public var exactWeights = false
    /// EDM's grid exponent ρ.
    public var rho = 7.0
    /// Stochastic heun: S_churn (γ = min(S_churn/N, √2 − 1)) and S_noise.
    public var churn = 10.0
    public var churnNoise = 1.0
    /// pc: Langevin corrector steps per level and their signal-to-noise ratio r.
    public var correctorSteps = 1
    public var signalToNoise = 0.15

    public init(integrator: Integrator = .heun, steps: Int = 20, stochastic: Bool = false, exactWeights: Bool = false) {
        self.integrator = integrator
        self.steps = steps
        self.stochastic = stochastic
        self.exactWeights = exactWeights
    }

    /// Network evaluations per sample.
    public var networkEvaluations: Int {
        switch integrator {
        case .euler: return steps
        case .heun: return 2 * steps - 1
        case .pc: return steps + correctorSteps * (steps - 1)
        }
    }
}

extension DiffusionModel {
    /// EDM's grid σ_i = (σ_max^{1/ρ} + i/(N−1)(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ, i < N, then σ_N = 0;
    /// σ_max is the process's top level √h(1), σ_min the configuration's.
    public func noiseLevels(steps n: Int, rho: Double = 7) -> [Double] {
        let top = noiseLevel(1), bottom = configuration.sigmaMin
        let a = pow(top, 1 / rho), b = pow(bottom, 1 / rho), last = Double(max(1, n - 1))
        var grid: [Double] = []
        for i in 0..<n {
            let f = Double(i) / last
            grid.append(pow(a + f * (b - a), rho))
        }
        return grid + [0]
    }

    /// `batch` draws of a score model on its noise-level grid (any score model: a noise-
    /// parameterized one is read at the time of each noise level). Starts from N(0, σ_0²) in
    /// the space's D' dimensions; the last step is the denoiser D(x; σ_min) = x + σ_min² s.
    ///
    /// - euler, deterministic: x ← x + (σ_{i+1} − σ_i) d(x; σ_i), d = −σ s (probability flow in σ).
    /// - heun, deterministic: EDM Algorithm 1 (two network calls per level but the last).
    /// - heun, stochastic: EDM Algorithm 2 (churn), then Heun.
    /// - euler, stochastic: reverse diffusion x ← x + (σ_i² − σ_{i+1}²) s + √(σ_i² − σ_{i+1}²) ε.
    /// - pc: reverse diffusion, then `correctorSteps` Langevin steps at σ_{i+1},
    ///   x ← x + ε s + √(2ε) z, ε = 2 (r ‖z‖/‖s‖)².
    ///
    /// With `exactWeights` (deterministic only) every step map's Jacobian A is formed from the
    /// score's (Euler: A = I − Δσ σ_i J(x); Heun: A = I + Δ/2 (J₁ + J₂(I + Δ J₁)), J_k = −σ J_s at its
    /// point) and log q(x) = log N(x_0; 0, σ_0²) − Σ log|det A|, log w = −u − log q: exact weights of
    /// the discrete sampler. Otherwise log w is nan.
    public func sampleNoiseLevels(batch: Int, system: EnergySystem, settings: DrawSettings,
                                  rng: inout SeededGenerator) throws -> DiffusionPaths {
        precondition(configuration.method.usesVEProcess && !space.isPeriodic, "noise-level draws are for score models off the torus")
        let stride = space.coordinateCount, sigmas = noiseLevels(steps: settings.steps, rho: settings.rho)
        let weighted = settings.exactWeights && !settings.stochastic && settings.integrator != .pc
        var x = noise(batch: batch, rng: &rng).map { $0 * sigmas[0] }
        var logQ = (0..<batch).map { b -> Double in
            if let prior = harmonicPrior {
                return prior.logDensity(x[(b * stride)..<((b + 1) * stride)], variance: sigmas[0] * sigmas[0], dimension: space.dimension)
            }
            var sq = 0.0
            for i in 0..<stride { sq += x[b * stride + i] * x[b * stride + i] }
            return space.logNormal(squaredDistance: sq, variance: sigmas[0] * sigmas[0])
        }
        func levels(_ s: Double) -> [Double] { [Double](repeating: s, count: batch) }
        /// d = −σ s at x (and −σ J_s when weighted).
        func slope(_ y: [Double], _ s: Double) -> (d: [Double], j: [Double]) {
            if weighted {
                let (score, jac) = scoreJacobian(positions: y, sigmas: levels(s))
                return (score.map { -s * $0 }, jac.map { -s * $0 })
            }
            let score = scoreAt(positions: y, sigmas: levels(s))
            return (score.map { -s * $0 }, [])
        }
        for i in 0..<settings.steps {
            var sigma = sigmas[i]
            let next = sigmas[i + 1]
            if settings.stochastic && settings.integrator == .heun {
                let gamma = min(settings.churn / Double(settings.steps), 2.0.squareRoot() - 1)
                let raised = sigma * (1 + gamma)
                let e = noise(batch: batch, rng: &rng), a = (raised * raised - sigma * sigma).squareRoot() * settings.churnNoise
                for j in x.indices { x[j] += a * e[j] }
                sigma = raised
            }
            if settings.stochastic && settings.integrator == .euler || settings.integrator == .pc {
                let score = scoreAt(positions: x, sigmas: levels(sigma))
                let variance = sigma * sigma - next * next
                if next == 0 {
                    for j in x.indices { x[j] += variance * score[j] }
                } else {
                    let e = noise(batch: batch, rng: &rng), sd = variance.squareRoot()
                    for j in x.indices { x[j] += variance * score[j] + sd * e[j] }
                    if settings.integrator == .pc {
                        for _ in 0..<settings.correctorSteps { langevinCorrector(&x, sigma: next, r: settings.signalToNoise, rng: &rng) }
                    }
                }
            } else {
                let delta = next - sigma
                let (d1, j1) = slope(x, sigma)
                if settings.integrator == .euler || next == 0 {
                    for j in x.indices { x[j] += delta * d1[j] }
                    if weighted { logQ = subtract(logQ, stepLogDeterminants(j1, scale: delta, batch: batch)) }
                } else {
                    var trial = x
                    for j in x.indices { trial[j] += delta * d1[j] }
                    let (d2, j2) = slope(trial, next)
                    for j in x.indices { x[j] += 0.5 * delta * (d1[j] + d2[j]) }
                    if weighted {
                        logQ = subtract(logQ, heunLogDeterminants(j1, j2, delta: delta, batch: batch))
                    }
                }
            }
            space.constrain(&x)
            guard x.allSatisfy(\.isFinite) else { throw DiffusionError.divergedPositions(timeStep: settings.steps - i) }
        }
        let energies = try system.evaluate(x, batch: batch, withGradients: false).energies
        let beta = drawBeta
        let logWeights = (0..<batch).map { weighted ? -beta * energies[$0] - logQ[$0] : Double.nan }
        return DiffusionPaths(batch: batch, states: [x], sampleEnergies: energies, energyGradients: [], logWeights: logWeights)
    }

    private func subtract(_ a: [Double], _ b: [Double]) -> [Double] { zip(a, b).map { $0 - $1 } }

    /// One Langevin corrector step at noise level σ with the learned score (Song et al. 2021):
    /// ε = 2 (r ‖z‖/‖s‖)² per configuration.
    func langevinCorrector(_ x: inout [Double], sigma: Double, r: Double, rng: inout SeededGenerator) {
        let stride = space.coordinateCount, batch = x.count / stride
        let s = scoreAt(positions: x, sigmas: [Double](repeating: sigma, count: batch))
        let z = noise(batch: batch, rng: &rng)
        for b in 0..<batch {
            var ss = 0.0, zz = 0.0
            for i in 0..<stride { ss += s[b * stride + i] * s[b * stride + i]; zz += z[b * stride + i] * z[b * stride + i] }
            guard ss > 0 else { continue }
            let eps = 2 * r * r * zz / ss, noise = (2 * eps).squareRoot()
            for i in 0..<stride { x[b * stride + i] += eps * s[b * stride + i] + noise * z[b * stride + i] }
        }
    }

    /// log|det(I + Δ/2 (J₁ + J₂ (I + Δ J₁)))| per configuration (the Heun step's Jacobian).
    func heunLogDeterminants(_ j1: [Double], _ j2: [Double], delta: Double, batch: Int) -> [Double] {
        let n = space.coordinateCount
        var a = [Double](repeating: 0, count: n * n)
        return (0..<batch).map { b in
            let o = b * n * n
            for r in 0..<n {
                for c in 0..<n {
                    // (J₂ (I + Δ J₁))_rc = J₂_rc + Δ Σ_k J₂_rk J₁_kc
                    var sum = 0.0
                    for k in 0..<n { sum += j2[o + r * n + k] * j1[o + k * n + c] }
                    a[r * n + c] = 0.5 * delta * (j1[o + r * n + c] + j2[o + r * n + c] + delta * sum)
                }
                a[r * n + r] += 1
            }
            return Self.logAbsDeterminant(&a, size: n)
        }
    }
}
