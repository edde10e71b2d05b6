// double-well — the many-particle double-well potential (DW-4 and friends).
//
//   U(x) = Σ_{i<j} a(d_ij − d0) + b(d_ij − d0)² + c(d_ij − d0)⁴,   u = U / kT,
//
// with d_ij = |x_i − x_j|. Defaults are the DW-4 benchmark of the equivariant-flow
// and iDEM papers: 4 particles in 2D, a = 0, b = −4, c = 0.9, d0 = 4, kT = 1.
import EnsemblePluginABI
import Foundation

typealias ThisSystem = DoubleWellSystem

final class DoubleWellSystem: PluginSystem {
    static let name = "double-well"
    static let version = "1.0.0"
    static let summary = "Multi-particle double-well pair potential (DW-4 by default)"
    static let parametersHelp = """
        particles=N     number of particles (default 4; ≥ 2)
        dimension=D     2 or 3 (default 2)
        a=A             linear coefficient, energy/length (default 0)
        b=B             quadratic coefficient, energy/length² (default −4)
        c=C             quartic coefficient, energy/length⁴ (default 0.9; > 0)
        d0=D0           reference distance, length (default 4)
        temperature=T   kT in energy units; u = U/kT (default 1)
        length_unit=A   one length unit in Å for output (default 1)
        """

    let particleCount: Int
    let dimension: Int
    let a, b, c, d0, temperature: Double
    let lengthUnitAngstrom: Double
    var box: [Double]? { nil }

    init(parameters: Parameters) throws {
        try parameters.requireKnown(["particles", "dimension", "a", "b", "c", "d0", "temperature", "length_unit"])
        particleCount = try parameters.int("particles", default: 4, in: 2...100_000)
        dimension = try parameters.int("dimension", default: 2, in: 2...3)
        a = try parameters.double("a", default: 0)
        b = try parameters.double("b", default: -4)
        c = try parameters.double("c", default: 0.9, positive: true)
        d0 = try parameters.double("d0", default: 4, positive: true)
        temperature = try parameters.double("temperature", default: 1, positive: true)
        lengthUnitAngstrom = try parameters.double("length_unit", default: 1, positive: true)
    }

    func evaluate(batch: Int, positions: UnsafePointer<Double>, energies: UnsafeMutablePointer<Double>,
                  gradients: UnsafeMutablePointer<Double>?) throws {
        let n = particleCount, dim = dimension, stride = n * dim, beta = 1 / temperature
        for s in 0..<batch {
            let x = positions + s * stride
            let g = gradients.map { $0 + s * stride }
            if let g { g.update(repeating: 0, count: stride) }
            var energy = 0.0
            for i in 0..<n {
                for j in (i + 1)..<n {
                    var r2 = 0.0
                    for k in 0..<dim {
                        let delta = x[i * dim + k] - x[j * dim + k]
                        r2 += delta * delta
                    }
                    let r = r2.squareRoot()
                    let e = r - d0, e2 = e * e
                    energy += a * e + b * e2 + c * e2 * e2
                    if let g {
                        // dU/dr · (x_i − x_j)/r; at r = 0 the direction is undefined: use 0.
                        let f = r > 0 ? (a + 2 * b * e + 4 * c * e2 * e) / r : 0
                        for k in 0..<dim {
                            let delta = x[i * dim + k] - x[j * dim + k]
                            g[i * dim + k] += f * delta * beta
                            g[j * dim + k] -= f * delta * beta
                        }
                    }
                }
            }
            energies[s] = energy * beta
        }
    }

    func atom(_ index: Int) -> (name: String, element: String, residue: String, residueNumber: Int, mass: Double)? {
        ("P\(index + 1)", "C", "DW", 1, 12.011)
    }

    func initialPositions() -> [Double]? {
        // A lattice with spacing d0, relaxed by damped gradient descent into a low-energy
        // configuration (the raw lattice has far pairs high up the quartic wall).
        var x = latticeStart(particles: particleCount, dimension: dimension, spacing: d0)
        var g = [Double](repeating: 0, count: x.count)
        var u = 0.0
        let step = 0.01 * temperature / c
        for _ in 0..<2000 {
            x.withUnsafeBufferPointer { p in
                try? evaluate(batch: 1, positions: p.baseAddress!, energies: &u, gradients: &g)
            }
            let norm = g.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let scale = step / max(1, norm * step / (0.1 * d0)) // never move more than 0.1·d0
            for i in x.indices { x[i] -= scale * g[i] }
        }
        return x
    }
}
