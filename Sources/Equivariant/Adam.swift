/// Adam (Kingma & Ba 2015) on a flat parameter buffer, with optional
/// global-norm gradient clipping and an optional exponential moving average
/// of the parameters (for evaluation / sampling with the EMA weights).
///
///     g ← g · min(1, clipNorm/‖g‖)          (when clipNorm is set)
///     m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²
///     θ ← θ − lr · m̂/(√v̂ + ε),  m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ)
///     ema ← δ·ema + (1−δ)·θ                   (when emaDecay δ is set)
///
/// The moments and the EMA have the parameters' flat layout, so they
/// checkpoint and all-reduce like the parameters. A value (Codable for Float and Double), so
/// a checkpoint restores it bit for bit; the project's one Adam.
public struct Adam<Scalar: TensorScalar> {
    public var learningRate: Double
    public var beta1: Double, beta2: Double, epsilon: Double
    /// Global L2-norm clip of the gradient; nil: no clipping.
    public var clipNorm: Double?
    /// EMA decay δ; nil: no EMA.
    public let emaDecay: Double?
    public private(set) var firstMoment: [Scalar]
    public private(set) var secondMoment: [Scalar]
    /// EMA of the parameters (empty without `emaDecay`, set on the first step).
    public private(set) var ema: [Scalar] = []
    public private(set) var stepCount = 0

    public init(parameterCount: Int, learningRate: Double = 1e-3, beta1: Double = 0.9,
                beta2: Double = 0.999, epsilon: Double = 1e-8, clipNorm: Double? = nil,
                emaDecay: Double? = nil) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.clipNorm = clipNorm
        self.emaDecay = emaDecay
        firstMoment = [Scalar](repeating: 0, count: parameterCount)
        secondMoment = [Scalar](repeating: 0, count: parameterCount)
    }

    /// One update of `parameters` from `gradients` (same count).
    /// - Returns: the gradient's global L2 norm before clipping.
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    @discardableResult
    public mutating func step(parameters: inout [Scalar], gradients: [Scalar]) -> Double {
        precondition(parameters.count == firstMoment.count && gradients.count == firstMoment.count,
                     "Adam: expected \(firstMoment.count) parameters and gradients")
        var sq = 0.0
        for g in gradients { sq += Double(g) * Double(g) }
        let norm = sq.squareRoot()
        var scale = 1.0
        if let clip = clipNorm, norm > clip { scale = clip / norm }
        stepCount += 1
        let t = Double(stepCount)
        let c1 = 1 - Foundation_pow(beta1, t), c2 = 1 - Foundation_pow(beta2, t)
        let b1 = Scalar(beta1), b2 = Scalar(beta2), s = Scalar(scale)
        let stepSize = Scalar(learningRate / c1), invC2 = Scalar(1 / c2), eps = Scalar(epsilon)
        parameters.withUnsafeMutableBufferPointer { p in
            gradients.withUnsafeBufferPointer { g in
                firstMoment.withUnsafeMutableBufferPointer { m in
                    secondMoment.withUnsafeMutableBufferPointer { v in
                        for i in 0..<p.count {
                            let gi = g[i] * s
                            m[i] = b1 * m[i] + (1 - b1) * gi
                            v[i] = b2 * v[i] + (1 - b2) * gi * gi
                            p[i] -= stepSize * m[i] / ((v[i] * invC2).squareRoot() + eps)
                        }
                    }
                }
            }
        }
        if let decay = emaDecay {
            if ema.isEmpty {
                ema = parameters
            } else {
                let dd = Scalar(decay)
                for i in ema.indices { ema[i] = dd * ema[i] + (1 - dd) * parameters[i] }
            }
        }
        return norm
    }
}

extension Adam: Codable {
    enum CodingKeys: String, CodingKey {
        case learningRate, beta1, beta2, epsilon, clipNorm, emaDecay, firstMoment, secondMoment, ema, stepCount
    }

    /// `ema` and `emaDecay` may be absent (optimizers saved without an EMA).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        learningRate = try c.decode(Double.self, forKey: .learningRate)
        beta1 = try c.decode(Double.self, forKey: .beta1)
        beta2 = try c.decode(Double.self, forKey: .beta2)
        epsilon = try c.decode(Double.self, forKey: .epsilon)
        clipNorm = try c.decodeIfPresent(Double.self, forKey: .clipNorm)
        emaDecay = try c.decodeIfPresent(Double.self, forKey: .emaDecay)
        firstMoment = try c.decode([Scalar].self, forKey: .firstMoment)
        secondMoment = try c.decode([Scalar].self, forKey: .secondMoment)
        ema = try c.decodeIfPresent([Scalar].self, forKey: .ema) ?? []
        stepCount = try c.decode(Int.self, forKey: .stepCount)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(learningRate, forKey: .learningRate)
        try c.encode(beta1, forKey: .beta1)
        try c.encode(beta2, forKey: .beta2)
        try c.encode(epsilon, forKey: .epsilon)
        try c.encodeIfPresent(clipNorm, forKey: .clipNorm)
        try c.encodeIfPresent(emaDecay, forKey: .emaDecay)
        try c.encode(firstMoment, forKey: .firstMoment)
        try c.encode(secondMoment, forKey: .secondMoment)
        if !ema.isEmpty { try c.encode(ema, forKey: .ema) }
        try c.encode(stepCount, forKey: .stepCount)
    }
}
extension Adam: Equatable {}
extension Adam: @unchecked Sendable {}

import Foundation
@inline(__always) private func Foundation_pow(_ a: Double, _ b: Double) -> Double { Foundation.pow(a, b) }
