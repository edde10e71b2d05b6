import Foundation

/// The space a diffusion sampler moves in (jax-md style: boundary conditions are a
/// value). Every Gaussian of the samplers is built through it, so the dimension of the
/// log-normalisers, the noise projection and the periodic wrapping live in one place.
///
/// - `free`: ℝ^{n·d}, D' = n·d.
/// - `centred`: free clusters in the zero-centre-of-mass subspace (translation-invariant
///   energies): noise is projected (particle mean subtracted), D' = (n−1)·d.
/// - `periodic`: the torus [0, L₀) × … × [0, L_{d−1}) per particle (`box`), D' = n·d. Positions
///   are wrapped after every move, residuals are taken modulo the box, and every Gaussian
///   kernel is the wrapped Gaussian WN(r; s²) = Π_coordinates Σ_k N(r + kL; 0, s²) (images
///   summed exactly, see `logKernel`). The prior is uniform: log density −n·Σ_a log L_a.
///   Translations modulo the box are a symmetry of the energy; the zero mode is kept (the
///   uniform prior covers it), so nothing is projected.
public struct DiffusionSpace: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable { case free, centred, periodic }
    public var particles: Int
    public var dimension: Int
    public var kind: Kind
    /// Box edge lengths (one per axis) of the `periodic` kind, nil otherwise.
    public var box: [Double]?

    public init(particles: Int, dimension: Int, kind: Kind) {
        precondition(kind != .periodic, "a periodic space needs its box: use init(particles:box:)")
        self.particles = particles
        self.dimension = dimension
        self.kind = kind
    }

    /// A periodic box of edges `box` (one per axis).
    public init(particles: Int, box: [Double]) {
        precondition(box.allSatisfy { $0 > 0 && $0.isFinite }, "box edges must be positive")
        self.particles = particles
        self.dimension = box.count
        self.kind = .periodic
        self.box = box
    }

    /// Coordinates per configuration, n·d.
    public var coordinateCount: Int { particles * dimension }
    /// Dimension of the space the Gaussians live in: D' = (n−1)d when centred, else n·d.
    public var effectiveDimension: Int { kind == .centred ? (particles - 1) * dimension : coordinateCount }
    public var isPeriodic: Bool { kind == .periodic }

    /// log of the torus volume, n·Σ_a log L_a (0 unless periodic): the uniform prior's
    /// log density is −logVolume, and log Z of u ≡ 0 is +logVolume.
    public var logVolume: Double {
        guard let box else { return 0 }
        return Double(particles) * box.reduce(0) { $0 + log($1) }
    }

    /// Projects a batch of *directions* [batch, n, d] (noise, gradients, scores) onto the
    /// tangent space (centred: subtract the particle mean; free and periodic: identity).
    public func project(_ x: inout [Double]) {
        if kind == .centred { Geometry.removeCentreOfMass(&x, particles: particles, dimension: dimension) }
    }

    /// Scales every particle's d-vector of a batch of directions [m, n, d] down to norm ≤
    /// `maxNorm` (DEM's clip of score targets and of ∇log π: per particle, never the whole
    /// configuration, which would shrink accurate large restoring forces).
    public func clipParticles(_ v: inout [Double], maxNorm: Double) {
        let d = dimension
        var i = 0
        while i + d <= v.count {
            var sq = 0.0
            for a in 0..<d { sq += v[i + a] * v[i + a] }
            if sq > maxNorm * maxNorm {
                let s = maxNorm / sq.squareRoot()
                for a in 0..<d { v[i + a] *= s }
            }
            i += d
        }
    }

    /// Maps a batch of *positions* onto the space: centred — subtract the particle mean;
    /// periodic — wrap every coordinate into [0, L); free — identity.
    public func constrain(_ x: inout [Double]) {
        switch kind {
        case .free: break
        case .centred: Geometry.removeCentreOfMass(&x, particles: particles, dimension: dimension)
        case .periodic: Geometry.wrap(&x, box: box!)
        }
    }

    /// The difference y − m of coordinate `index` (flat index into [batch, n, d]) as the
    /// space measures it: the minimum image when periodic.
    @inline(__always)
    public func residual(_ delta: Double, index: Int) -> Double {
        guard let box else { return delta }
        return Geometry.minimumImage(delta, edge: box[index % dimension])
    }

    /// Standard normal noise of `batch` configurations, projected.
    public func noise(batch: Int, rng: inout SeededGenerator) -> [Double] {
        var e = [Double](repeating: 0, count: batch * coordinateCount)
        rng.fillNormal(&e)
        project(&e)
        return e
    }

    /// Start states x_0 of the PIS process: the origin, or uniform on the box when periodic.
    public func initialStates(batch: Int, rng: inout SeededGenerator) -> [Double] {
        var x = [Double](repeating: 0, count: batch * coordinateCount)
        if let box { for j in x.indices { x[j] = rng.uniform() * box[j % dimension] } }
        return x
    }

    /// log N(y; m, s²I) in D' dimensions from |y − m|² (already in the subspace).
    @inline(__always)
    public func logNormal(squaredDistance: Double, variance: Double) -> Double {
        -squaredDistance / (2 * variance) - 0.5 * Double(effectiveDimension) * log(2 * Double.pi * variance)
    }

    /// log of the transition kernel N(y; m, s²I) on the space for one configuration, from the
    /// differences r = y − m of its n·d coordinates (`r[0..<coordinateCount]`, any image).
    /// On return r holds the *effective residuals* ρ with ∂ log p / ∂m = ρ / s².
    ///
    /// - free, centred: log N in D' dimensions; ρ = r.
    /// - periodic: the wrapped Gaussian, Σ_coordinates log Σ_k N(r̄ + kL; 0, s²) with r̄ the
    ///   minimum image of r; ρ = Σ_k w_k (r̄ + kL), w_k the images' posterior weights. Images
    ///   |k| ≤ M = ⌈8s/L⌉ + 1 are summed (every neglected image lies ≥ (M − ½)L > 8s away:
    ///   relative error < e^{−32}); when s < L/20 only k = 0 is kept (exact up to
    ///   e^{−L(L−2|r̄|)/2s²}, below e^{−50} for |r̄| < 5s, i.e. for all but 10⁻⁶ of the draws).
    @inline(__always)
    public func logKernel(_ r: UnsafeMutablePointer<Double>, variance: Double) -> Double {
        guard let box else {
            var sq = 0.0
            for i in 0..<coordinateCount { sq += r[i] * r[i] }
            return logNormal(squaredDistance: sq, variance: variance)
        }
        let s = variance.squareRoot()
        var total = -0.5 * Double(coordinateCount) * log(2 * Double.pi * variance)
        var sq = 0.0
        for a in 0..<dimension {
            let l = box[a]
            if s < l / 20 {
                var i = a
                while i < coordinateCount {
                    let v = Geometry.minimumImage(r[i], edge: l)
                    r[i] = v
                    sq += v * v
                    i += dimension
                }
                continue
            }
            let images = Int((8 * s / l).rounded(.up)) + 1
            var i = a
            while i < coordinateCount {
                let v = Geometry.minimumImage(r[i], edge: l)
                // log Σ_k exp(−(v + kL)²/2s²), stabilised by the k = 0 term (the largest).
                let base = -v * v / (2 * variance)
                var sum = 0.0, weighted = 0.0
                for k in -images...images {
                    let y = v + Double(k) * l
                    let e = exp(-y * y / (2 * variance) - base)
                    sum += e
                    weighted += e * y
                }
                total += base + log(sum)
                r[i] = weighted / sum
                i += dimension
            }
        }
        return total - sq / (2 * variance)
    }

    /// `logKernel` for configuration `b` of a flat residual batch (convenience).
    @inline(__always)
    public func logKernel(_ r: inout [Double], configuration b: Int, variance: Double) -> Double {
        let stride = coordinateCount
        return r.withUnsafeMutableBufferPointer { logKernel($0.baseAddress! + b * stride, variance: variance) }
    }
}
