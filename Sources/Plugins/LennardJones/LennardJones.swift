// lennard-jones — Lennard-Jones clusters (LJ-13, LJ-55, any n, 2D or 3D).
//
//   U(x) = Σ_{i<j} 4ε[(σ/r_ij)¹² − (σ/r_ij)⁶] + ½k Σ_i |x_i − x̄|²,   u = U / kT.
//
// The harmonic "oscillator" term about the centre of mass is the iDEM/DEM
// benchmark's way of keeping the cluster together. Presets `lj13` and `lj55`
// reproduce that benchmark exactly: it sums ε[(r_m/r)¹² − 2(r_m/r)⁶] over
// ORDERED pairs i≠j with ε = r_m = 1 (twice the i<j sum), which is the form
// above with ε = 2, σ = 2^(−1/6), k = 1, kT = 1 (../shared/reference/README.md).
import EnsemblePluginABI
import Foundation

typealias ThisSystem = LennardJonesSystem

final class LennardJonesSystem: PluginSystem {
    static let name = "lennard-jones"
    static let version = "1.0.0"
    static let summary = "Lennard-Jones clusters with an optional harmonic centre-of-mass term (reduced units)"
    static let parametersHelp = """
        preset=lj13|lj55   the iDEM/DEM benchmark clusters (sets particles, epsilon, sigma, oscillator)
        particles=N        number of particles (default 13; ≥ 2)
        dimension=D        2 or 3 (default 3)
        epsilon=E          well depth ε, energy unit (default 1)
        sigma=S            zero-crossing distance σ, length unit (default 1)
        oscillator=K       strength k of ½k Σ|x_i − x̄|², energy/length² (default 0; presets 1)
        temperature=T      kT in energy units; u = U/kT (default 1)
        length_unit=A      one length unit in Å for output (default 3.405, argon σ)
        """

    let particleCount: Int
    let dimension: Int
    let epsilon: Double
    let sigma: Double
    let oscillator: Double
    let temperature: Double
    let lengthUnitAngstrom: Double
    var box: [Double]? { nil }

    init(parameters: Parameters) throws {
        try parameters.requireKnown(["preset", "particles", "dimension", "epsilon", "sigma", "oscillator",
                                     "temperature", "length_unit"])
        var particles = 13, epsilon = 1.0, sigma = 1.0, oscillator = 0.0
        if parameters.has("preset") {
            switch parameters.string("preset", default: "").lowercased() {
            case "lj13": particles = 13
            case "lj55": particles = 55
            case let other: throw PluginFailure("parameter 'preset': unknown preset '\(other)' (valid: lj13, lj55)")
            }
            epsilon = 2
            sigma = pow(2, -1.0 / 6)
            oscillator = 1
        }
        particleCount = try parameters.int("particles", default: particles, in: 2...100_000)
        dimension = try parameters.int("dimension", default: 3, in: 2...3)
        self.epsilon = try parameters.double("epsilon", default: epsilon, positive: true)
        self.sigma = try parameters.double("sigma", default: sigma, positive: true)
        self.oscillator = try parameters.double("oscillator", default: oscillator)
        guard self.oscillator >= 0 else { throw PluginFailure("parameter 'oscillator' must be ≥ 0") }
        temperature = try parameters.double("temperature", default: 1, positive: true)
        lengthUnitAngstrom = try parameters.double("length_unit", default: 3.405, positive: true)
    }

    func evaluate(batch: Int, positions: UnsafePointer<Double>, energies: UnsafeMutablePointer<Double>,
                  gradients: UnsafeMutablePointer<Double>?) throws {
        let n = particleCount, d = dimension, stride = n * d
        let sigma2 = sigma * sigma, fourEpsilon = 4 * epsilon, beta = 1 / temperature
        var centre = (0.0, 0.0, 0.0)
        for b in 0..<batch {
            let x = positions + b * stride
            let g = gradients.map { $0 + b * stride }
            if let g { g.update(repeating: 0, count: stride) }
            var energy = 0.0
            // Pair sum over i < j, gradient accumulated in the same pass.
            for i in 0..<n {
                let xi = x + i * d
                for j in (i + 1)..<n {
                    let xj = x + j * d
                    let dx = xi[0] - xj[0], dy = xi[1] - xj[1]
                    let dz = d == 3 ? xi[2] - xj[2] : 0
                    let r2 = dx * dx + dy * dy + dz * dz
                    let s2 = sigma2 / r2
                    let s6 = s2 * s2 * s2
                    energy += fourEpsilon * (s6 * s6 - s6)
                    if let g {
                        // (dU/dr)/r = −4ε(12 s¹² − 6 s⁶)/r²
                        let f = -fourEpsilon * (12 * s6 * s6 - 6 * s6) / r2
                        g[i * d] += f * dx; g[j * d] -= f * dx
                        g[i * d + 1] += f * dy; g[j * d + 1] -= f * dy
                        if d == 3 { g[i * d + 2] += f * dz; g[j * d + 2] -= f * dz }
                    }
                }
            }
            if oscillator > 0 {
                centre = (0, 0, 0)
                for i in 0..<n {
                    centre.0 += x[i * d]; centre.1 += x[i * d + 1]
                    if d == 3 { centre.2 += x[i * d + 2] }
                }
                let inv = 1 / Double(n)
                centre = (centre.0 * inv, centre.1 * inv, centre.2 * inv)
                var sum = 0.0
                for i in 0..<n {
                    let a = x[i * d] - centre.0, c = x[i * d + 1] - centre.1
                    let e = d == 3 ? x[i * d + 2] - centre.2 : 0
                    sum += a * a + c * c + e * e
                    // ∂/∂x_i of ½k Σ|x_j − x̄|² = k (x_i − x̄), since Σ_j (x_j − x̄) = 0.
                    if let g {
                        g[i * d] += oscillator * a; g[i * d + 1] += oscillator * c
                        if d == 3 { g[i * d + 2] += oscillator * e }
                    }
                }
                energy += 0.5 * oscillator * sum
            }
            energies[b] = energy * beta
            if let g { for k in 0..<stride { g[k] *= beta } }
        }
    }

    func atom(_ index: Int) -> (name: String, element: String, residue: String, residueNumber: Int, mass: Double)? {
        ("AR", "Ar", "LJ", index + 1, 39.948)
    }

    func initialPositions() -> [Double]? {
        // Nearest-neighbour distance r_m = 2^(1/6) σ: no overlap, close to bonded.
        latticeStart(particles: particleCount, dimension: dimension, spacing: pow(2, 1.0 / 6) * sigma)
    }
}
