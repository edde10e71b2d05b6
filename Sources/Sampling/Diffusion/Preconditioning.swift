import Foundation

/// EDM preconditioning of a score model (Karras et al. 2022, VE form; docs/samplers.md):
///
///     D(x; σ) = c_skip(σ) x + c_out(σ) F_θ(c_in(σ) x; c_noise(σ)),   s(x; σ) = (D − x)/σ²
///     c_skip = σ_d²/(σ² + σ_d²),  c_out = σ σ_d/√(σ² + σ_d²),  c_in = 1/√(σ² + σ_d²),  c_noise = ¼ ln σ
///
/// σ_d is the data's rms coordinate after removing each frame's centre. The network sees inputs
/// of unit scale and predicts a target of unit scale at every σ; the coefficients are scalars,
/// so the denoiser is as equivariant as F. Regressing F on (x_0 − c_skip x)/c_out with unit
/// weight is EDM's loss λ(σ)‖D − x_0‖², λ = 1/c_out².
public struct EDMCoefficients: Equatable {
    public var skip: Double, out: Double, input: Double, noise: Double

    public init(sigma: Double, sigmaData sd: Double) {
        let s2 = sigma * sigma + sd * sd
        skip = sd * sd / s2
        out = sigma * sd / s2.squareRoot()
        input = 1 / s2.squareRoot()
        noise = 0.25 * log(sigma)
    }
}

extension DiffusionModel {
    /// Whether the score is EDM-preconditioned (`DiffusionConfiguration.parameterization`).
    public var isPreconditioned: Bool { configuration.parameterization == .edm }

    /// The noise standard deviation √h(t) of the VE process at time t (the σ of the denoiser).
    public func noiseLevel(_ t: Double) -> Double { max(noiseVariance(t), 1e-300).squareRoot() }

    /// D(x; σ) for a batch [m, n·d] at noise levels [m] (EDM-preconditioned models).
    public func denoise(positions x: [Double], sigmas: [Double]) -> [Double] {
        let stride = space.coordinateCount
        let c = sigmas.map { EDMCoefficients(sigma: $0, sigmaData: sigmaData) }
        var input = x
        for b in sigmas.indices { for i in 0..<stride { input[b * stride + i] *= c[b].input } }
        var d = network.forward(positions: input, times: c.map(\.noise), conditions: conditions(sigmas.count))
        for b in sigmas.indices {
            for i in 0..<stride { d[b * stride + i] = c[b].skip * x[b * stride + i] + c[b].out * d[b * stride + i] }
        }
        space.project(&d)
        return d
    }

    /// s(x; σ) = (D(x; σ) − x)/σ² (EDM-preconditioned models), projected onto the space.
    public func score(positions x: [Double], sigmas: [Double]) -> [Double] {
        let stride = space.coordinateCount
        var s = denoise(positions: x, sigmas: sigmas)
        var y = x
        space.project(&y)
        for b in sigmas.indices {
            let w = 1 / (sigmas[b] * sigmas[b])
            for i in 0..<stride { s[b * stride + i] = (s[b * stride + i] - y[b * stride + i]) * w }
        }
        return s
    }

    /// The score at (x, σ) with its Jacobians J[b] = ∂s/∂x ([m, D, D], row-major) from one forward
    /// and D backward passes of the network. EDM: J = ((c_skip − 1) P + c_out c_in J_F)/σ², P the
    /// projection onto the space (the zero-centre subspace of a centred cluster, so that the
    /// translations stay in J's null space); noise parameterization: J = scale(t)·J_F.
    public func scoreJacobian(positions x: [Double], times: [Double]) -> (score: [Double], jacobian: [Double]) {
        isPreconditioned ? scoreJacobian(positions: x, sigmas: times.map(noiseLevel)) : timeScoreJacobian(positions: x, times: times)
    }

    /// The time of the VE process whose noise level √h(t) is σ (inverse of `noiseLevel`).
    public func time(ofNoiseLevel s: Double) -> Double {
        let m = configuration.sigmaMin
        return min(1, max(0, log((s * s + m * m).squareRoot() / m) / log(configuration.sigmaMax / m)))
    }

    /// s(x; σ) of any score model (a noise-parameterized one at the time of noise level σ).
    public func scoreAt(positions x: [Double], sigmas: [Double]) -> [Double] {
        isPreconditioned ? score(positions: x, sigmas: sigmas) : score(positions: x, times: sigmas.map(time(ofNoiseLevel:)))
    }

    /// `scoreJacobian` at noise levels σ [m].
    public func scoreJacobian(positions x: [Double], sigmas: [Double]) -> (score: [Double], jacobian: [Double]) {
        guard isPreconditioned else { return timeScoreJacobian(positions: x, times: sigmas.map(time(ofNoiseLevel:))) }
        return preconditionedScoreJacobian(positions: x, sigmas: sigmas)
    }

    private func timeScoreJacobian(positions x: [Double], times: [Double]) -> (score: [Double], jacobian: [Double]) {
        let stride = space.coordinateCount, batch = times.count
        var (f, j) = fieldJacobian(positions: x, times: times)
        for b in 0..<batch {
            let c = scoreScale(times[b])
            for i in 0..<stride { f[b * stride + i] *= c }
            for q in 0..<(stride * stride) { j[b * stride * stride + q] *= c }
        }
        return (f, j)
    }

    private func preconditionedScoreJacobian(positions x: [Double], sigmas: [Double]) -> (score: [Double], jacobian: [Double]) {
        let stride = space.coordinateCount, batch = sigmas.count
        let c = sigmas.map { EDMCoefficients(sigma: $0, sigmaData: sigmaData) }
        var input = x
        for b in 0..<batch { for i in 0..<stride { input[b * stride + i] *= c[b].input } }
        var (f, j) = fieldJacobian(positions: input, times: c.map(\.noise))
        let projection = space.projectionMatrix()
        var y = x
        space.project(&y)
        for b in 0..<batch {
            let w = 1 / (sigmas[b] * sigmas[b]), a = (c[b].skip - 1) * w, g = c[b].out * c[b].input * w
            for i in 0..<stride { f[b * stride + i] = (c[b].out * f[b * stride + i] + (c[b].skip - 1) * y[b * stride + i]) * w }
            for q in 0..<(stride * stride) { j[b * stride * stride + q] = g * j[b * stride * stride + q] + a * projection[q] }
        }
        return (f, j)
    }
}

extension DiffusionSpace {
    /// The matrix [D, D] of `project`: I − (1/n) Σ over particles per axis for a centred
    /// cluster, I otherwise.
    public func projectionMatrix() -> [Double] {
        let D = coordinateCount
        var p = [Double](repeating: 0, count: D * D)
        for i in 0..<D { p[i * D + i] = 1 }
        if kind == .centred {
            let n = particles, d = dimension
            for a in 0..<n { for b in 0..<n { for k in 0..<d { p[(a * d + k) * D + b * d + k] -= 1 / Double(n) } } }
        }
        return p
    }
}
