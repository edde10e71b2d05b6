import Foundation

/// A molecule's covalent bond graph, as its plugin reports it (`EnergySystem.bonds()`): the pair
/// classes of the EGNN's edge features and the harmonic prior of the denoising sampler.
public struct BondGraph: Codable, Equatable, Sendable {
    public var particles: Int
    /// Bonds as 0-based index pairs [i, j], i < j.
    public var bonds: [[Int]]
    /// The stereocentres the EGNN sees the handedness of ([centre, a, b, c], `stereocentres`);
    /// nil: none (a reflection-invariant network, as before this field existed).
    public var chiralCentres: [[Int]]? = nil

    public init(particles: Int, bonds: [(Int, Int)]) {
        self.particles = particles
        self.bonds = bonds.map { [min($0.0, $0.1), max($0.0, $0.1)] }.sorted { ($0[0], $0[1]) < ($1[0], $1[1]) }
    }

    /// Tetrahedral stereocentres of the graph: atoms with four bonds of which at most one to a
    /// hydrogen (a methyl or methylene carbon is not one: its hydrogens are equivalent), each as
    /// [centre, a, b, c] with its first three neighbours, heavy atoms first, in index order (the
    /// convention of `MirrorFold`). `hydrogen[i]`: atom i is a hydrogen.
    public func stereocentres(hydrogen: [Bool]) -> [[Int]] {
        precondition(hydrogen.count == particles, "hydrogen: one flag per particle")
        var neighbours = [[Int]](repeating: [], count: particles)
        for b in bonds { neighbours[b[0]].append(b[1]); neighbours[b[1]].append(b[0]) }
        return (0..<particles).compactMap { c in
            let bonded = neighbours[c]
            guard !hydrogen[c], bonded.count == 4, bonded.filter({ hydrogen[$0] }).count <= 1 else { return nil }
            let ordered = bonded.sorted { (hydrogen[$0] ? 1 : 0, $0) < (hydrogen[$1] ? 1 : 0, $1) }
            return [c] + ordered.prefix(3)
        }
    }

    /// Pair classes of `pairClasses`: bonded, 1–3, 1–4 (two and three bonds apart), the rest.
    public static let classCount = 4

    /// Bonds between every pair [n·n] by breadth-first search (0 on the diagonal; Int.max between
    /// unconnected atoms).
    public func hops() -> [Int] {
        let n = particles
        var neighbours = [[Int]](repeating: [], count: n)
        for b in bonds { neighbours[b[0]].append(b[1]); neighbours[b[1]].append(b[0]) }
        var result = [Int](repeating: Int.max, count: n * n)
        for source in 0..<n {
            result[source * n + source] = 0
            var frontier = [source]
            while !frontier.isEmpty {
                var next: [Int] = []
                for a in frontier {
                    for b in neighbours[a] where result[source * n + b] == Int.max {
                        result[source * n + b] = result[source * n + a] + 1
                        next.append(b)
                    }
                }
                frontier = next
            }
        }
        return result
    }

    /// The class of every pair [n·n]: 0 bonded, 1 a 1–3 pair, 2 a 1–4 pair, 3 otherwise (the
    /// force field's own distinction: bonds, angles, torsions, non-bonded).
    public func pairClasses() -> [Int] {
        hops().map { h in h >= 1 && h <= 3 ? h - 1 : 3 }
    }

    /// The harmonic prior of this graph (see `HarmonicPrior`).
    public func harmonicPrior() -> HarmonicPrior { HarmonicPrior(graph: self) }
}

/// The Gaussian N(0, σ²C) of a bond graph on the centred space (EigenFold's and harmonic-prior flow
/// matching's prior): precision P = L + δΠ, with L the graph Laplacian (one per bond), Π = I − 11ᵀ/n
/// the centring projector and δ = `stiffness` (which keeps unconnected fragments at a finite
/// distance), and C = P⁺ scaled to tr C = n − 1, the total variance per axis of the isotropic
/// prior it replaces. Bonded atoms move together: a bond's length varies far less than a random
/// pair's. Each of the d axes gets the same n × n covariance, so rotations commute with it and
/// the EGNN's equivariance is untouched.
public struct HarmonicPrior: Equatable, Sendable {
    /// δ of the precision L + δΠ.
    public static let stiffness = 0.05
    public let particles: Int
    /// A = C^{1/2} [n × n], symmetric: noise A ε per axis, ε ~ N(0, I_n).
    public let shape: [Double]
    /// C [n × n].
    public let covariance: [Double]
    /// C⁺ [n × n], the precision on the centred subspace.
    public let precision: [Double]
    /// log det⁺ C (its n − 1 non-zero eigenvalues).
    public let logDeterminant: Double

    public init(graph: BondGraph) {
        let n = graph.particles
        var p = [Double](repeating: 0, count: n * n)
        for b in graph.bonds {
            let i = b[0], j = b[1]
            p[i * n + i] += 1; p[j * n + j] += 1
            p[i * n + j] -= 1; p[j * n + i] -= 1
        }
        for i in 0..<n { for j in 0..<n { p[i * n + j] += Self.stiffness * ((i == j ? 1 : 0) - 1 / Double(n)) } }
        let (values, vectors) = Metrics.symmetricEigensystem(p, size: n)
        // The translation mode (eigenvalue 0, vector 1/√n) is dropped; the others are ≥ δ·something > 0.
        let keep = (0..<n).filter { k in
            let mean = (0..<n).map { vectors[$0 * n + k] }.reduce(0, +) / Double(n)
            return !(abs(mean * Double(n).squareRoot()) > 0.5)  // not the constant vector
        }
        precondition(keep.count == n - 1, "the bond graph's precision should have exactly one zero mode")
        let inverse = keep.map { 1 / values[$0] }
        let scale = Double(n - 1) / inverse.reduce(0, +)
        func assemble(_ f: (Double) -> Double) -> [Double] {
            var m = [Double](repeating: 0, count: n * n)
            for (q, k) in keep.enumerated() {
                let w = f(inverse[q] * scale)
                for i in 0..<n { for j in 0..<n { m[i * n + j] += w * vectors[i * n + k] * vectors[j * n + k] } }
            }
            return m
        }
        particles = n
        covariance = assemble { $0 }
        shape = assemble { $0.squareRoot() }
        precision = assemble { 1 / $0 }
        logDeterminant = inverse.map { log($0 * scale) }.reduce(0, +)
    }

    /// y = M x per axis for configurations [m, n·d] (M an n × n matrix).
    func apply(_ matrix: [Double], to x: [Double], dimension d: Int) -> [Double] {
        let n = particles, stride = n * d
        var y = [Double](repeating: 0, count: x.count)
        for b in 0..<(x.count / stride) {
            let o = b * stride
            for i in 0..<n {
                for j in 0..<n {
                    let w = matrix[i * n + j]
                    if w == 0 { continue }
                    for k in 0..<d { y[o + i * d + k] += w * x[o + j * d + k] }
                }
            }
        }
        return y
    }

    /// Noise A ε for `batch` configurations of n particles in d dimensions (centred by construction).
    public func noise(batch: Int, dimension d: Int, rng: inout SeededGenerator) -> [Double] {
        var e = [Double](repeating: 0, count: batch * particles * d)
        rng.fillNormal(&e)
        return apply(shape, to: e, dimension: d)
    }

    /// C x per axis (the metric that turns a score into the denoiser's step).
    public func applyCovariance(_ x: [Double], dimension d: Int) -> [Double] { apply(covariance, to: x, dimension: d) }

    /// log N(x; 0, σ²C) of one centred configuration [n·d] on its (n − 1)·d-dimensional space.
    public func logDensity(_ x: ArraySlice<Double>, variance: Double, dimension d: Int) -> Double {
        let n = particles, o = x.startIndex
        var quadratic = 0.0
        for i in 0..<n {
            for j in 0..<n {
                let w = precision[i * n + j]
                for k in 0..<d { quadratic += x[o + i * d + k] * w * x[o + j * d + k] }
            }
        }
        let dims = Double((n - 1) * d)
        return -quadratic / (2 * variance) - 0.5 * dims * log(2 * Double.pi * variance) - 0.5 * Double(d) * logDeterminant
    }
}

/// Whether drawn configurations are whole molecules: every bond's length against its length in
/// a reference structure (the plugin's start, near the force field's minimum).
public struct BondCheck: Codable, Equatable, Sendable {
    /// rms over all bonds and samples of (r − r_ref), in the plugin's length unit.
    public var rmsDeviation: Double
    /// Fraction of samples whose every bond is within ±25 % of its reference length.
    public var wholeFraction: Double
    /// Samples checked.
    public var samples: Int

    /// - Parameters:
    ///   - positions: configurations [m, n·d]; reference: one configuration [n·d].
    public init(graph: BondGraph, positions: [Double], reference: [Double], dimension d: Int) {
        let stride = graph.particles * d, m = positions.count / stride
        func length(_ x: ArraySlice<Double>, _ i: Int, _ j: Int) -> Double {
            let o = x.startIndex
            return (0..<d).map { x[o + i * d + $0] - x[o + j * d + $0] }.map { $0 * $0 }.reduce(0, +).squareRoot()
        }
        let r0 = graph.bonds.map { length(reference[...], $0[0], $0[1]) }
        var squares = 0.0, whole = 0
        for b in 0..<m {
            let x = positions[(b * stride)..<((b + 1) * stride)]
            var intact = true
            for (k, bond) in graph.bonds.enumerated() {
                let r = length(x, bond[0], bond[1])
                squares += (r - r0[k]) * (r - r0[k])
                if !(abs(r - r0[k]) <= 0.25 * r0[k]) { intact = false }
            }
            if intact { whole += 1 }
        }
        rmsDeviation = (squares / Double(max(1, m * graph.bonds.count))).squareRoot()
        wholeFraction = Double(whole) / Double(max(1, m))
        samples = m
    }
}
