import Foundation

/// The space a diffusion sampler moves in (jax-md style: boundary conditions are a
/// value). Every Gaussian of the samplers is built through it, so the dimension of the
/// log-normalisers and the noise projection live in one place.
///
/// - `free`: ℝ^{n·d}, D' = n·d.
/// - `centred`: free clusters in the zero-centre-of-mass subspace (translation-invariant
///   energies): noise is projected (particle mean subtracted), D' = (n−1)·d.
/// A periodic box (uniform prior, wrapped noise, minimum-image displacements, wrapped
/// Gaussian kernels) is meant to become a third kind here; it is not implemented yet.
public struct DiffusionSpace: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable { case free, centred }
    public var particles: Int
    public var dimension: Int
    public var kind: Kind

    public init(particles: Int, dimension: Int, kind: Kind) {
        self.particles = particles
        self.dimension = dimension
        self.kind = kind
    }

    /// Coordinates per configuration, n·d.
    public var coordinateCount: Int { particles * dimension }
    /// Dimension of the space the Gaussians live in: D' = (n−1)d when centred, else n·d.
    public var effectiveDimension: Int { kind == .centred ? (particles - 1) * dimension : coordinateCount }

    /// Projects a batch [batch, n, d] onto the space (centred: subtract the particle mean).
    public func project(_ x: inout [Double]) {
        if kind == .centred { Geometry.removeCentreOfMass(&x, particles: particles, dimension: dimension) }
    }

    /// Standard normal noise of `batch` configurations, projected.
    public func noise(batch: Int, rng: inout SeededGenerator) -> [Double] {
        var e = [Double](repeating: 0, count: batch * coordinateCount)
        rng.fillNormal(&e)
        project(&e)
        return e
    }

    /// log N(y; m, s²I) in D' dimensions from |y − m|² (already in the subspace).
    @inline(__always)
    public func logNormal(squaredDistance: Double, variance: Double) -> Double {
        -squaredDistance / (2 * variance) - 0.5 * Double(effectiveDimension) * log(2 * Double.pi * variance)
    }
}
