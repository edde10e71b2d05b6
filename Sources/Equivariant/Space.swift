import Foundation

/// The space particles move in (jax-md's `space.free()` / `space.periodic(L)`): boundary
/// conditions are a value, so displacements, minimum images, wrapping, the projection of
/// noise, noise draws and the Gaussian log-kernels live in one place. It is chosen once from
/// the loaded system (`Space.of(_:)` in Sampling) and handed to the EGNN, every MCMC kernel
/// and every diffusion process. Positions are flat row-major arrays [batch, n, d].
///
/// - `free`: ℝ^{n·d}, D' = n·d.
/// - `centred`: free clusters in the zero-centre-of-mass subspace (translation-invariant
///   energies): directions are projected (particle mean subtracted), D' = (n−1)·d.
/// - `periodic`: the torus [0, L₀) × … × [0, L_{d−1}) per particle (`box`), D' = n·d. Positions
///   are wrapped after every move, displacements are minimum images, and every Gaussian
///   kernel is the wrapped Gaussian WN(r; s²) = Π_coordinates Σ_k N(r + kL; 0, s²) (images
///   summed exactly, see `logKernel`). The prior is uniform: log density −n·Σ_a log L_a.
///   Translations modulo the box are a symmetry; the diffusion processes keep the zero mode
///   (the uniform prior covers it), so nothing is projected. MCMC on a torus fixes it instead
///   (`fixingCentreOfMass(true)`): directions are projected as for `centred`, D' = (n−1)·d —
///   the centre's marginal is uniform, so removing its drift loses nothing.
public struct Space: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable { case free, centred, periodic }
    public var particles: Int
    public var dimension: Int
    public var kind: Kind
    /// Box edge lengths (one per axis) of the `periodic` kind, nil otherwise.
    public var box: [Double]?
    /// A torus whose centre-of-mass mode is projected out of every direction (nil: not; only
    /// ever set for `periodic`, so the spaces of older checkpoints decode unchanged).
    private var torusCentred: Bool?

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

    public static func free(particles: Int, dimension: Int) -> Space { Space(particles: particles, dimension: dimension, kind: .free) }
    public static func centred(particles: Int, dimension: Int) -> Space { Space(particles: particles, dimension: dimension, kind: .centred) }
    public static func periodic(particles: Int, box: [Double]) -> Space { Space(particles: particles, box: box) }

    /// Coordinates per configuration, n·d.
    public var coordinateCount: Int { particles * dimension }
    /// Dimension of the space moves live in: D' = (n−1)d when the centre of mass is fixed, else n·d.
    public var effectiveDimension: Int { fixesCentreOfMass ? (particles - 1) * dimension : coordinateCount }
    public var isPeriodic: Bool { kind == .periodic }
    /// Whether directions are projected onto the zero-centre-of-mass subspace: always when
    /// `centred`, never when `free`, on a torus when asked.
    public var fixesCentreOfMass: Bool { kind == .centred || torusCentred == true }

    /// The same space with the centre of mass fixed or free: free ↔ centred, or the torus
    /// with its zero mode projected out (MCMC) or kept (diffusion).
    public func fixingCentreOfMass(_ fixed: Bool) -> Space {
        var space = self
        switch kind {
        case .free, .centred: space.kind = fixed ? .centred : .free
        case .periodic: space.torusCentred = fixed ? true : nil
        }
        return space
    }

    /// log of the torus volume, n·Σ_a log L_a (0 unless periodic): the uniform prior's
    /// log density is −logVolume, and log Z of u ≡ 0 is +logVolume.
    public var logVolume: Double {
        guard let box else { return 0 }
        return Double(particles) * box.reduce(0) { $0 + log($1) }
    }

    // MARK: - Displacements (the one minimum image)

    /// The minimum-image difference on an edge of length l: δ − l·round(δ/l), ties to even.
    /// The one minimum image of the host (plugins, separate libraries, keep their own).
    @inlinable @inline(__always)
    public static func minimumImage<S: BinaryFloatingPoint>(_ delta: S, edge l: S) -> S {
        delta - l * (delta / l).rounded(.toNearestOrEven)
    }

    /// Displacement a − b of two points (`dimension` values each): the minimum image when periodic.
    @inlinable @inline(__always)
    public func displacement<S: BinaryFloatingPoint>(_ a: UnsafePointer<S>, _ b: UnsafePointer<S>,
                                                     into out: UnsafeMutablePointer<S>) {
        if let box {
            for k in 0..<dimension { out[k] = Self.minimumImage(a[k] - b[k], edge: S(box[k])) }
        } else {
            for k in 0..<dimension { out[k] = a[k] - b[k] }
        }
    }

    /// Displacement a − b for single points given as arrays of length d.
    public func displacement<S: BinaryFloatingPoint>(_ a: [S], _ b: [S]) -> [S] {
        precondition(a.count == dimension && b.count == dimension)
        return (0..<dimension).map { k in box.map { Self.minimumImage(a[k] - b[k], edge: S($0[k])) } ?? a[k] - b[k] }
    }

    /// The difference y − m of coordinate `index` (flat index into [batch, n, d]) as the
    /// space measures it: the minimum image when periodic.
    @inlinable @inline(__always)
    public func residual(_ delta: Double, index: Int) -> Double {
        guard let box else { return delta }
        return Self.minimumImage(delta, edge: box[index % dimension])
    }

    // MARK: - Positions and directions

    /// Wraps every coordinate into [0, L_k) (k = index mod box.count).
    public static func wrap<S: BinaryFloatingPoint>(_ x: inout [S], box: [Double]) {
        let d = box.count
        for i in x.indices {
            let l = S(box[i % d])
            var v = x[i] - l * (x[i] / l).rounded(.down)
            if v >= l { v -= l }  // rounding can land exactly on L
            if v < 0 { v += l }
            x[i] = v
        }
    }

    /// Subtracts each configuration's particle mean (zero centre of mass; equal weights).
    /// - Parameter x: [batch, n, d], modified in place.
    public static func removeCentreOfMass(_ x: inout [Double], particles n: Int, dimension d: Int) {
        let stride = n * d
        let batch = x.count / stride
        x.withUnsafeMutableBufferPointer { p in
            for b in 0..<batch {
                let base = b * stride
                for k in 0..<d {
                    var mean = 0.0
                    for i in 0..<n { mean += p[base + i * d + k] }
                    mean /= Double(n)
                    for i in 0..<n { p[base + i * d + k] -= mean }
                }
            }
        }
    }

    /// Maps positions into the primary cell [0, L) when periodic (identity otherwise).
    public func wrap<S: BinaryFloatingPoint>(_ positions: inout [S]) {
        if let box { Self.wrap(&positions, box: box) }
    }

    /// Projects a batch of *directions* [batch, n, d] (noise, gradients, scores) onto the
    /// tangent space (centre of mass fixed: subtract the particle mean; otherwise identity).
    public func project(_ x: inout [Double]) {
        if fixesCentreOfMass { Self.removeCentreOfMass(&x, particles: particles, dimension: dimension) }
    }

    /// Maps a batch of *positions* onto the space: centre of mass fixed — subtract the
    /// particle mean; periodic — then wrap every coordinate into [0, L); free — identity.
    public func constrain(_ x: inout [Double]) {
        if fixesCentreOfMass { Self.removeCentreOfMass(&x, particles: particles, dimension: dimension) }
        if let box { Self.wrap(&x, box: box) }
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

    // MARK: - Draws and Gaussian log-kernels

    /// log N(y; m, s²I) in D' dimensions from |y − m|² (already in the subspace).
    @inlinable @inline(__always)
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
                    let v = Self.minimumImage(r[i], edge: l)
                    r[i] = v
                    sq += v * v
                    i += dimension
                }
                continue
            }
            let images = Int((8 * s / l).rounded(.up)) + 1
            var i = a
            while i < coordinateCount {
                let v = Self.minimumImage(r[i], edge: l)
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
