// lennard-jones — Lennard-Jones clusters (LJ-13, LJ-55, any n, 2D or 3D) and
// periodic Lennard-Jones fluids and solids.
//
//   U(x) = Σ_{i<j} 4ε[(σ/r_ij)¹² − (σ/r_ij)⁶] + ½k Σ_i |x_i − x̄|²,   u = U / kT.
//
// Periodic (`box` or `density` given): r_ij is the minimum-image distance and
// each pair is truncated and shifted at r_c: 4ε[(σ/r)¹² − (σ/r)⁶] − 4ε[(σ/r_c)¹² − (σ/r_c)⁶]
// for r < r_c, 0 beyond (forces unchanged by the shift). r_c must be below half
// of every box edge or the minimum image would miss pairs. A cell list is used
// when every edge holds at least three cells of size ≥ r_c.
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
        preset=fcc256      atomic-solids benchmark: 256 particles, density 1.28 σ⁻³, kT 2ε, cutoff 2.7σ
        particles=N        number of particles (default 13; ≥ 2)
        box=L | Lx,Ly[,Lz] periodic box edge(s), length (default: free cluster)
        density=RHO        periodic cubic box with edge (N/ρ)^(1/d), particles/length^d
        cutoff=RC          periodic only: truncate-and-shift radius, length (default 2.5σ; < half the box)
        dimension=D        2 or 3 (default 3)
        epsilon=E          well depth ε, energy unit (default 1)
        sigma=S            zero-crossing distance σ, length unit (default 1)
        oscillator=K       strength k of ½k Σ|x_i − x̄|², energy/length² (default 1 for free clusters,
                           which evaporate without it; 0 gives a bare cluster, for minimisation only)
        temperature=T      kT in energy units; u = U/kT (default 1)
        length_unit=A      one length unit in Å for output (default 3.405/σ, so that σ is argon's 3.405 Å:
                           3.405 with the default σ = 1; 3.822 for lj13/lj55, whose unit is the pair
                           minimum r_m = 2^(1/6)σ)
        """

    /// Argon's σ in Å, the length the plugin's σ stands for in trajectories.
    static let argonSigma = 3.405

    let particleCount: Int
    let dimension: Int
    let epsilon: Double
    let sigma: Double
    let oscillator: Double
    let temperature: Double
    let lengthUnitAngstrom: Double
    /// Periodic edge lengths, or nil for a free cluster.
    let box: [Double]?
    /// Periodic only: truncation radius r_c and the pair energy at r_c (the shift).
    let cutoff: Double
    let shift: Double
    /// Periodic only: cells per edge (all ≥ 3) when a cell list is used, else nil.
    let cells: [Int]?

    init(parameters: Parameters) throws {
        try parameters.requireKnown(["preset", "particles", "dimension", "epsilon", "sigma", "oscillator",
                                     "temperature", "length_unit", "box", "density", "cutoff"])
        var particles = 13, epsilon = 1.0, sigma = 1.0, oscillator = 0.0, temperature = 1.0
        var density: Double?, cutoff = 2.5
        if parameters.has("preset") {
            switch parameters.string("preset", default: "").lowercased() {
            case "lj13": particles = 13; epsilon = 2; sigma = pow(2, -1.0 / 6); oscillator = 1
            case "lj55": particles = 55; epsilon = 2; sigma = pow(2, -1.0 / 6); oscillator = 1
            case "fcc256": particles = 256; density = 1.28; temperature = 2; cutoff = 2.7
            case let other:
                throw PluginFailure("parameter 'preset': unknown preset '\(other)' (valid: lj13, lj55, fcc256)")
            }
        }
        if let preset = parameters.has("preset") ? parameters.string("preset", default: "").lowercased() : nil {
            // A preset fixes these; another value silently made another system (issue 23:
            // preset=lj13 particles=20 sampled 20 atoms under the name LJ-13).
            let fixed: [(String, Double)] = preset == "fcc256"
                ? [("particles", 256), ("density", 1.28), ("temperature", 2), ("cutoff", 2.7)]
                : [("particles", Double(particles)), ("epsilon", epsilon), ("sigma", sigma), ("oscillator", oscillator)]
            for (key, value) in fixed where parameters.has(key) {
                let given = try parameters.double(key, default: value)
                guard abs(given - value) <= 1e-12 * max(1, abs(value)) else {
                    throw PluginFailure("preset=\(preset) sets \(key)=\(formatted(value)); \(key)=\(formatted(given)) contradicts it. Leave out preset= to choose \(key) yourself, or leave out \(key)")
                }
            }
        }
        particleCount = try parameters.int("particles", default: particles, in: 2...100_000)
        dimension = try parameters.int("dimension", default: 3, in: 2...3)
        self.epsilon = try parameters.double("epsilon", default: epsilon, positive: true)
        self.sigma = try parameters.double("sigma", default: sigma, positive: true)
        // A bare free cluster evaporates at any temperature (u → 0 as particles separate, so
        // exp(−u) is not normalisable): free clusters are confined by default.
        let periodic = parameters.has("box") || parameters.has("density") || density != nil
        if !periodic && !parameters.has("preset") { oscillator = 1 }
        self.oscillator = try parameters.double("oscillator", default: oscillator)
        guard self.oscillator >= 0 else { throw PluginFailure("parameter 'oscillator' must be ≥ 0") }
        self.temperature = try parameters.double("temperature", default: temperature, positive: true)
        // σ is argon's 3.405 Å: one unit is 3.405/σ Å. The lj13/lj55 presets (σ = 2^(−1/6), the
        // benchmark's r_m = 1) thus get r_m = 2^(1/6)·3.405 = 3.822 Å per unit (issue 23: they
        // used to be written at 3.405 Å per unit, squeezing every distance by 11 %).
        lengthUnitAngstrom = try parameters.double("length_unit", default: Self.argonSigma / self.sigma, positive: true)

        if parameters.has("box") && parameters.has("density") {
            throw PluginFailure("give either 'box' or 'density', not both")
        }
        if let edges = try parameters.doubles("box") {
            guard edges.count == 1 || edges.count == dimension, edges.allSatisfy({ $0 > 0 }) else {
                throw PluginFailure("parameter 'box': expected one positive edge or \(dimension) of them, got \(edges)")
            }
            box = edges.count == 1 ? Array(repeating: edges[0], count: dimension) : edges
        } else if let rho = try parameters.has("density") ? parameters.double("density", default: 1, positive: true) : density {
            box = Array(repeating: pow(Double(particleCount) / rho, 1 / Double(dimension)), count: dimension)
        } else {
            box = nil
        }
        if let box {
            guard self.oscillator == 0 else { throw PluginFailure("'oscillator' applies to free clusters only, not periodic boxes") }
            let rc = try parameters.double("cutoff", default: cutoff * self.sigma, positive: true)
            let half = box.min()! / 2
            guard rc < half else {
                throw PluginFailure("cutoff \(rc) must be below half the box edge (\(half)): the minimum image would miss pairs")
            }
            self.cutoff = rc
            let s6 = pow(self.sigma / rc, 6)
            shift = 4 * self.epsilon * (s6 * s6 - s6)
            let perEdge = box.map { Int(($0 / rc).rounded(.down)) }
            cells = perEdge.allSatisfy { $0 >= 3 } ? perEdge : nil
        } else {
            if parameters.has("cutoff") { throw PluginFailure("'cutoff' needs a periodic system: give 'box' or 'density'") }
            self.cutoff = .infinity
            shift = 0
            cells = nil
        }
    }

    func evaluate(batch: Int, positions: UnsafePointer<Double>, energies: UnsafeMutablePointer<Double>,
                  gradients: UnsafeMutablePointer<Double>?) throws {
        if box != nil {
            evaluatePeriodic(batch: batch, positions: positions, energies: energies, gradients: gradients)
            return
        }
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

    /// Periodic energies: minimum image, truncated and shifted at r_c; pairs from a cell
    /// list when the box holds ≥ 3 cells per edge, else all pairs.
    private func evaluatePeriodic(batch: Int, positions: UnsafePointer<Double>,
                                  energies: UnsafeMutablePointer<Double>, gradients: UnsafeMutablePointer<Double>?) {
        let n = particleCount, d = dimension, stride = n * d
        let edges = box! + Array(repeating: Double.infinity, count: 3 - d)
        let (lx, ly, lz) = (edges[0], edges[1], edges[2])
        let sigma2 = sigma * sigma, fourEpsilon = 4 * epsilon, beta = 1 / temperature, rc2 = cutoff * cutoff
        // Scratch for the cell list (per call: evaluate is reentrant).
        var head = [Int](), next = [Int](repeating: -1, count: n)
        var cellOf = [Int](repeating: 0, count: n)
        let counts = (cells ?? [1, 1, 1]) + Array(repeating: 1, count: 3 - (cells?.count ?? 3))
        if cells != nil { head = [Int](repeating: -1, count: counts[0] * counts[1] * counts[2]) }
        for b in 0..<batch {
            let x = positions + b * stride
            let g = gradients.map { $0 + b * stride }
            if let g { g.update(repeating: 0, count: stride) }
            var energy = 0.0
            @inline(__always) func pair(_ i: Int, _ j: Int) {
                var dx = x[i * d] - x[j * d], dy = x[i * d + 1] - x[j * d + 1]
                var dz = d == 3 ? x[i * d + 2] - x[j * d + 2] : 0
                dx -= lx * (dx / lx).rounded()
                dy -= ly * (dy / ly).rounded()
                if d == 3 { dz -= lz * (dz / lz).rounded() }
                let r2 = dx * dx + dy * dy + dz * dz
                guard r2 < rc2 else { return }
                let s2 = sigma2 / r2
                let s6 = s2 * s2 * s2
                energy += fourEpsilon * (s6 * s6 - s6) - shift
                if let g {
                    let f = -fourEpsilon * (12 * s6 * s6 - 6 * s6) / r2
                    g[i * d] += f * dx; g[j * d] -= f * dx
                    g[i * d + 1] += f * dy; g[j * d + 1] -= f * dy
                    if d == 3 { g[i * d + 2] += f * dz; g[j * d + 2] -= f * dz }
                }
            }
            if cells == nil {
                for i in 0..<n { for j in (i + 1)..<n { pair(i, j) } }
            } else {
                // Bin particles (wrapped into the box) into cells, then visit each cell's
                // 3^d neighbourhood; each pair is counted once (j's cell index ≥ i's, or j > i in the same cell).
                for c in head.indices { head[c] = -1 }
                for i in 0..<n {
                    var c = 0
                    for k in (0..<d).reversed() {
                        let l = edges[k]
                        var u = x[i * d + k] / l
                        u -= u.rounded(.down)
                        c = c * counts[k] + min(Int(u * Double(counts[k])), counts[k] - 1)
                    }
                    cellOf[i] = c
                    next[i] = head[c]
                    head[c] = i
                }
                let offsets = d == 3 ? [-1, 0, 1] : [0]
                for i in 0..<n {
                    var cc = [0, 0, 0]
                    var rest = cellOf[i]
                    for k in 0..<d { cc[k] = rest % counts[k]; rest /= counts[k] }
                    for oz in offsets {
                        for oy in [-1, 0, 1] {
                            for ox in [-1, 0, 1] {
                                let o = [ox, oy, oz]
                                var c = 0
                                for k in (0..<d).reversed() {
                                    c = c * counts[k] + (cc[k] + o[k] + counts[k]) % counts[k]
                                }
                                var j = head[c]
                                while j >= 0 {
                                    if j > i { pair(i, j) }
                                    j = next[j]
                                }
                            }
                        }
                    }
                }
            }
            energies[b] = energy * beta
            if let g { for k in 0..<stride { g[k] *= beta } }
        }
    }

    func atom(_ index: Int) -> (name: String, element: String, residue: String, residueNumber: Int, mass: Double)? {
        ("AR", "Ar", "LJ", index + 1, 39.948)
    }

    func initialPositions() -> [Double]? {
        guard let box else {
            // Nearest-neighbour distance r_m = 2^(1/6) σ: no overlap, close to bonded.
            return latticeStart(particles: particleCount, dimension: dimension, spacing: pow(2, 1.0 / 6) * sigma)
        }
        // Periodic: the FCC lattice when N = 4m³ (3D), else the first N sites of a simple
        // cubic (square) grid filling the box.
        let fccCells = Int(pow(Double(particleCount) / 4, 1.0 / 3).rounded())
        if dimension == 3 && 4 * fccCells * fccCells * fccCells == particleCount {
            return fccLattice(cells: fccCells, box: box)
        }
        let side = Int(pow(Double(particleCount), 1 / Double(dimension)).rounded(.up))
        var x: [Double] = []
        for i in 0..<particleCount {
            var index = i
            for k in 0..<dimension {
                x.append((Double(index % side) + 0.5) * box[k] / Double(side))
                index /= side
            }
        }
        return x
    }

    /// Face-centred cubic lattice: `cells`³ unit cells, 4 sites each, filling the box.
    func fccLattice(cells: Int, box: [Double]) -> [Double] {
        let basis: [[Double]] = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
        var x: [Double] = []
        for i in 0..<cells {
            for j in 0..<cells {
                for k in 0..<cells {
                    for site in basis {
                        let cell = [Double(i), Double(j), Double(k)]
                        for a in 0..<3 { x.append((cell[a] + site[a] + 0.25) * box[a] / Double(cells)) }
                    }
                }
            }
        }
        return x
    }
}

/// A number as a parameter would be written: integers without a fraction.
private func formatted(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
}
