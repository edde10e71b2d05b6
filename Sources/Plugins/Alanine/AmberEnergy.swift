import Foundation

/// Implicit-solvent model: none, or OpenMM's generalized-Born OBC variants.
enum Solvent: String, CaseIterable {
    /// No solvent: the bare force field.
    case vacuum
    /// OpenMM `implicitSolvent=OBC1` (CustomGBForce GBSAOBC1Force, AMBER igb=2):
    /// α, β, γ = 0.8, 0, 2.909125.
    case obc1
    /// OpenMM `implicitSolvent=OBC2` (built-in GBSAOBCForce, AMBER igb=5):
    /// α, β, γ = 1.0, 0.8, 4.85.
    case obc2
}

/// The energy of one AMBER topology, vacuum or GB-OBC implicit solvent, in kcal/mol and Å,
/// with analytic gradients.
///
/// Generalized Born (Onufriev, Bashford & Case, Proteins 55, 383 (2004)), as OpenMM computes it:
/// - offset radii ρᵢ = Rᵢ − 0.09 Å, scaled radii sⱼ = SCREENⱼ·ρⱼ;
/// - Iᵢ = ½ Σⱼ≠ᵢ [1/L − 1/U + ¼(r − sⱼ²/r)(1/U² − 1/L²) + ½ ln(L/U)/r] for ρᵢ < r + sⱼ,
///   U = r + sⱼ, L = max(ρᵢ, |r − sⱼ|) (OBC2 adds 2(1/ρᵢ − 1/L) when ρᵢ < sⱼ − r, as
///   OpenMM's reference GBSAOBCForce does; OBC1's CustomGBForce does not);
/// - ψᵢ = ρᵢIᵢ, Bᵢ = 1/(1/ρᵢ − tanh(αψᵢ − βψᵢ² + γψᵢ³)/Rᵢ);
/// - E_GB = −k(1/ε_in − 1/ε_out) [½Σᵢ qᵢ²/Bᵢ + Σᵢ<ⱼ qᵢqⱼ/f], f = √(r² + BᵢBⱼ exp(−r²/4BᵢBⱼ));
/// - ACE surface term Σᵢ 4π·σ_SA (Rᵢ + 1.4 Å)² (Rᵢ/Bᵢ)⁶ with σ_SA = 2.25936 kJ/mol/nm².
/// Gradients: two pair passes (Born radii, then GB pair terms with ∂E/∂Bᵢ) and a third
/// applying the chain rule ∂E/∂Bᵢ·∂Bᵢ/∂ψᵢ·∂ψᵢ/∂r through the Born radii.
final class AmberEnergy {
    let n: Int
    let solvent: Solvent
    /// kT in kcal/mol (k_B = R/4.184 with OpenMM's R).
    let kT: Double

    private let bonds: [AmberTopology.Bond]
    private let angles: [AmberTopology.Angle]
    /// A torsion term with its phase's cosine and sine and, when the periodicity is a whole
    /// number 1…12 (always, for AMBER force fields), that number (else 0: use atan2).
    struct Torsion {
        var i: Int32, j: Int32, k: Int32, l: Int32
        var barrier: Double, periodicity: Double, cosPhase: Double, sinPhase: Double
        var integerPeriodicity: Int
    }
    private let torsions: [Torsion]
    /// Dense upper triangle over all i<j pairs, in loop order: (a, b, qq) with zeros
    /// for excluded pairs; 1-4 pairs carry their scaled parameters.
    let pairA: [Double], pairB: [Double], pairQQ: [Double]
    // GB per-atom parameters.
    let offsetRadius: [Double], scaledRadius: [Double], radius: [Double]
    let charge: [Double]
    let gbPrefactor: Double
    let aceFactor: [Double]
    let alpha: Double, beta: Double, gamma: Double
    let engulfCorrection: Bool

    /// Pair kernel: portable scalar loops, or SIMD4 over j (the default; same numbers to rounding).
    enum Kernel: String, CaseIterable { case simd, scalar }
    let kernel: Kernel
    /// n rounded up to a multiple of 4, and padded per-pair [n][padded] / per-atom [padded]
    /// parameter tables for the SIMD kernel (zeros, or harmless values, beyond n and on j ≤ i).
    let padded: Int
    let matA: [Double], matB: [Double], matQQ: [Double]
    let rhoPadded: [Double], srPadded: [Double], chargePadded: [Double]

    static let dielectricOffset = 0.09   // Å (OpenMM: 0.009 nm)
    static let probeRadius = 1.4         // Å (OpenMM: 0.14 nm)

    /// - Parameters:
    ///   - topology: the force field terms.
    ///   - solvent: vacuum, OBC1 or OBC2.
    ///   - temperature: K, for the reduced energy u = U/kT.
    ///   - soluteDielectric, solventDielectric: GB dielectrics (OpenMM defaults 1, 78.5).
    /// - Throws: `AmberFileError` when GB is asked for and the prmtop has no RADII/SCREEN.
    init(topology: AmberTopology, solvent: Solvent, temperature: Double,
         soluteDielectric: Double = 1, solventDielectric: Double = 78.5, kernel: Kernel = .simd) throws {
        n = topology.count
        self.kernel = kernel
        self.solvent = solvent
        kT = Constants.boltzmannKcal * temperature
        bonds = topology.bonds
        angles = topology.angles
        torsions = topology.torsions.map { t in
            let whole = t.periodicity.rounded()
            return Torsion(i: t.i, j: t.j, k: t.k, l: t.l, barrier: t.barrier, periodicity: t.periodicity,
                           cosPhase: cos(t.phase), sinPhase: sin(t.phase),
                           integerPeriodicity: whole == t.periodicity && whole >= 1 && whole <= 12 ? Int(whole) : 0)
        }
        var a = [Double](repeating: 0, count: n * (n - 1) / 2)
        var b = a, qq = a
        let count = topology.count
        for p in topology.pairs {
            let i = Int(p.i), j = Int(p.j)
            let k = i * (2 * count - i - 1) / 2 + (j - i - 1)
            a[k] = p.a; b[k] = p.b; qq[k] = p.qq
        }
        pairA = a; pairB = b; pairQQ = qq
        charge = topology.charges
        switch solvent {
        case .vacuum, .obc2: (alpha, beta, gamma) = (1.0, 0.8, 4.85)
        case .obc1: (alpha, beta, gamma) = (0.8, 0.0, 2.909125)
        }
        engulfCorrection = solvent == .obc2
        if solvent != .vacuum {
            guard topology.radii.count == n, topology.screen.count == n else {
                throw AmberFileError(description:
                    "solvent=\(solvent.rawValue) needs GB radii: the prmtop has no %FLAG RADII / %FLAG SCREEN sections")
            }
        }
        radius = solvent == .vacuum ? [] : topology.radii
        offsetRadius = radius.map { $0 - AmberEnergy.dielectricOffset }
        scaledRadius = zip(offsetRadius, topology.screen).map { $0 * $1 }
        let coulomb = Constants.coulombKcalAngstrom(
            solvent == .obc1 ? Constants.coulombCustomGB : Constants.coulombOpenMM)
        gbPrefactor = -coulomb * (1 / soluteDielectric - 1 / solventDielectric)
        // Surface-area energy per area, kcal/mol/Å²: OBC1's CustomGBForce writes 4π·2.25936
        // as the literal 28.3919551; GBSAOBCForce computes 4π·2.25936 itself.
        let fourPiSigma = (solvent == .obc1 ? 28.3919551 : 4 * Double.pi * 2.25936) / Constants.kJPerKcal / 100
        let np = (n + 3) / 4 * 4
        padded = np
        var ma = [Double](repeating: 0, count: n * np), mb = ma, mq = ma
        for p in topology.pairs {
            ma[Int(p.i) * np + Int(p.j)] = p.a; mb[Int(p.i) * np + Int(p.j)] = p.b
            mq[Int(p.i) * np + Int(p.j)] = p.qq
        }
        matA = ma; matB = mb; matQQ = mq
        rhoPadded = offsetRadius + [Double](repeating: 1, count: np - offsetRadius.count)
        srPadded = scaledRadius + [Double](repeating: 0, count: np - scaledRadius.count)
        chargePadded = charge + [Double](repeating: 0, count: np - n)
        aceFactor = radius.map { fourPiSigma * ($0 + AmberEnergy.probeRadius) * ($0 + AmberEnergy.probeRadius) }
    }

    /// Per-call scratch, one per thread: never shared between concurrent calls.
    final class Scratch {
        var r: [Double], ux: [Double], uy: [Double], uz: [Double]
        var dTermIJ: [Double], dTermJI: [Double]
        var integral: [Double], born: [Double], dBorn: [Double], bornForce: [Double]
        /// SIMD kernel: positions and gradient as structure of arrays [padded], per-pair
        /// values [n][padded].
        var sx: [Double], sy: [Double], sz: [Double], sgx: [Double], sgy: [Double], sgz: [Double]
        var pr: [Double], pux: [Double], puy: [Double], puz: [Double], pdij: [Double], pdji: [Double]
        init(n: Int) {
            let np = (n + 3) / 4 * 4
            sx = [Double](repeating: 0, count: np); sy = sx; sz = sx; sgx = sx; sgy = sx; sgz = sx
            pr = [Double](repeating: 0, count: n * np); pux = pr; puy = pr; puz = pr; pdij = pr; pdji = pr
            let m = n * (n - 1) / 2
            r = [Double](repeating: 0, count: m); ux = r; uy = r; uz = r; dTermIJ = r; dTermJI = r
            integral = [Double](repeating: 0, count: np); born = integral; dBorn = integral; bornForce = integral
        }
    }

    /// Potential energy (kcal/mol) of one configuration; adds ∂U/∂x (kcal/mol/Å) into
    /// `gradient` when given (the caller zeroes it).
    /// - Parameters:
    ///   - x: positions [n][3] in Å.
    ///   - gradient: [n][3], or nil for the energy only.
    func energy(_ x: UnsafePointer<Double>, gradient: UnsafeMutablePointer<Double>?, scratch: Scratch) -> Double {
        var e = bondedEnergy(x, gradient)
        switch kernel {
        case .simd: e += simdPairEnergy(x, gradient, scratch)
        case .scalar: e += pairEnergy(x, gradient, scratch)
        }
        return e
    }

    // MARK: - Bonded terms

    private func bondedEnergy(_ x: UnsafePointer<Double>, _ g: UnsafeMutablePointer<Double>?) -> Double {
        var e = 0.0
        bonds.withUnsafeBufferPointer { bonds in
            for bond in bonds {
                let i = 3 * Int(bond.i), j = 3 * Int(bond.j)
                let dx = x[i] - x[j], dy = x[i + 1] - x[j + 1], dz = x[i + 2] - x[j + 2]
                let r = (dx * dx + dy * dy + dz * dz).squareRoot()
                let dr = r - bond.r0
                e += bond.k * dr * dr
                if let g {
                    let s = 2 * bond.k * dr / r
                    g[i] += s * dx; g[i + 1] += s * dy; g[i + 2] += s * dz
                    g[j] -= s * dx; g[j + 1] -= s * dy; g[j + 2] -= s * dz
                }
            }
        }
        angles.withUnsafeBufferPointer { angles in
            for angle in angles {
                let i = 3 * Int(angle.i), j = 3 * Int(angle.j), k = 3 * Int(angle.l)
                let ax = x[i] - x[j], ay = x[i + 1] - x[j + 1], az = x[i + 2] - x[j + 2]
                let bx = x[k] - x[j], by = x[k + 1] - x[j + 1], bz = x[k + 2] - x[j + 2]
                let cx = ay * bz - az * by, cy = az * bx - ax * bz, cz = ax * by - ay * bx
                let dot = ax * bx + ay * by + az * bz
                let cross = (cx * cx + cy * cy + cz * cz).squareRoot()
                let theta = atan2(cross, dot)
                let dtheta = theta - angle.theta0
                e += angle.k * dtheta * dtheta
                if let g {
                    // ∂θ/∂a = (a(a·b)/|a|² − b)/|a×b|, ∂θ/∂b = (b(a·b)/|b|² − a)/|a×b|.
                    let s = 2 * angle.k * dtheta / max(cross, 1e-300)
                    let sa = dot / (ax * ax + ay * ay + az * az), sb = dot / (bx * bx + by * by + bz * bz)
                    let gax = s * (sa * ax - bx), gay = s * (sa * ay - by), gaz = s * (sa * az - bz)
                    let gbx = s * (sb * bx - ax), gby = s * (sb * by - ay), gbz = s * (sb * bz - az)
                    g[i] += gax; g[i + 1] += gay; g[i + 2] += gaz
                    g[k] += gbx; g[k + 1] += gby; g[k + 2] += gbz
                    g[j] -= gax + gbx; g[j + 1] -= gay + gby; g[j + 2] -= gaz + gbz
                }
            }
        }
        torsions.withUnsafeBufferPointer { torsions in
            for t in torsions {
                let i = 3 * Int(t.i), j = 3 * Int(t.j), k = 3 * Int(t.k), l = 3 * Int(t.l)
                // F = xi − xj, G = xj − xk, H = xl − xk; A = F×G, B = H×G (Blondel & Karplus 1996).
                let fx = x[i] - x[j], fy = x[i + 1] - x[j + 1], fz = x[i + 2] - x[j + 2]
                let gx = x[j] - x[k], gy = x[j + 1] - x[k + 1], gz = x[j + 2] - x[k + 2]
                let hx = x[l] - x[k], hy = x[l + 1] - x[k + 1], hz = x[l + 2] - x[k + 2]
                let ax = fy * gz - fz * gy, ay = fz * gx - fx * gz, az = fx * gy - fy * gx
                let bx = hy * gz - hz * gy, by = hz * gx - hx * gz, bz = hx * gy - hy * gx
                let gNorm = (gx * gx + gy * gy + gz * gz).squareRoot()
                // IUPAC: φ = atan2(|b₂| b₁·n₂, n₁·n₂) with b₁ = −F, b₂ = −G, n₁ = A, n₂ = B;
                // cos nφ and sin nφ by the multiple-angle recurrence (no atan2, cos, sin).
                let yy = -gNorm * (fx * bx + fy * by + fz * bz), xx = ax * bx + ay * by + az * bz
                let (cosN, sinN): (Double, Double)
                if t.integerPeriodicity > 0 {
                    let h = (xx * xx + yy * yy).squareRoot()
                    let c1 = h > 0 ? xx / h : 1, s1 = h > 0 ? yy / h : 0
                    var c = c1, sn = s1
                    for _ in 1..<t.integerPeriodicity {
                        (c, sn) = (c * c1 - sn * s1, sn * c1 + c * s1)
                    }
                    (cosN, sinN) = (c, sn)
                } else {
                    let phi = t.periodicity * atan2(yy, xx)
                    (cosN, sinN) = (cos(phi), sin(phi))
                }
                // cos(nφ − γ), sin(nφ − γ).
                let cosArg = cosN * t.cosPhase + sinN * t.sinPhase
                let sinArg = sinN * t.cosPhase - cosN * t.sinPhase
                e += t.barrier * (1 + cosArg)
                if let g {
                    let dEdphi = -t.barrier * t.periodicity * sinArg
                    let a2 = max(ax * ax + ay * ay + az * az, 1e-300), b2 = max(bx * bx + by * by + bz * bz, 1e-300)
                    let gi = -gNorm / a2, gl = gNorm / b2
                    let fg = (fx * gx + fy * gy + fz * gz) / (a2 * gNorm)
                    let hg = (hx * gx + hy * gy + hz * gz) / (b2 * gNorm)
                    // ∂φ/∂xi = −|G|/A² A, ∂φ/∂xl = |G|/B² B,
                    // ∂φ/∂xj = −∂φ/∂xi + (F·G)/(A²|G|) A − (H·G)/(B²|G|) B, ∂φ/∂xk = −(sum of the others).
                    let dix = gi * ax, diy = gi * ay, diz = gi * az
                    let dlx = gl * bx, dly = gl * by, dlz = gl * bz
                    let djx = -dix + fg * ax - hg * bx, djy = -diy + fg * ay - hg * by, djz = -diz + fg * az - hg * bz
                    g[i] += dEdphi * dix; g[i + 1] += dEdphi * diy; g[i + 2] += dEdphi * diz
                    g[l] += dEdphi * dlx; g[l + 1] += dEdphi * dly; g[l + 2] += dEdphi * dlz
                    g[j] += dEdphi * djx; g[j + 1] += dEdphi * djy; g[j + 2] += dEdphi * djz
                    g[k] -= dEdphi * (dix + dlx + djx); g[k + 1] -= dEdphi * (diy + dly + djy)
                    g[k + 2] -= dEdphi * (diz + dlz + djz)
                }
            }
        }
        return e
    }

    // MARK: - Pair terms (LJ, Coulomb, GB)

    /// One OBC Born integral term of atom i (offset radius ρ) from atom j (scaled radius s)
    /// at distance r, and its derivative in r.
    @inline(__always)
    private static func born(_ r: Double, _ invr: Double, _ rho: Double, _ s: Double,
                             _ engulf: Bool) -> (Double, Double) {
        let u = r + s
        guard rho < u else { return (0, 0) }
        let l = max(rho, abs(r - s))
        let invL = 1 / l, invU = 1 / u
        let invL2 = invL * invL, invU2 = invU * invU
        let logLU = log(l * invU)
        var term = invL - invU + 0.25 * (r - s * s * invr) * (invU2 - invL2) + 0.5 * logLU * invr
        // ∂term/∂U = 0 identically; ∂term/∂L = ((L − r)² − s²)/(2rL³) vanishes for L = r − s.
        var dterm = 0.25 * (invU2 - invL2) * (1 + s * s * invr * invr) - 0.5 * logLU * invr * invr
        if rho < s - r {
            // L = s − r: OBC2 adds 2(1/ρ − 1/L), whose r-derivative cancels ∂term/∂L·∂L/∂r.
            if engulf { term += 2 * (1 / rho - invL) } else { dterm += 2 * invL2 }
        }
        return (term, dterm)
    }

    private func pairEnergy(_ x: UnsafePointer<Double>, _ g: UnsafeMutablePointer<Double>?, _ scratch: Scratch) -> Double {
        let n = self.n
        let gb = solvent != .vacuum
        var e = 0.0
        pairA.withUnsafeBufferPointer { pa in
        pairB.withUnsafeBufferPointer { pb in
        pairQQ.withUnsafeBufferPointer { pq in
        offsetRadius.withUnsafeBufferPointer { rho in
        scaledRadius.withUnsafeBufferPointer { sr in
        scratch.r.withUnsafeMutableBufferPointer { rr in
        scratch.ux.withUnsafeMutableBufferPointer { ux in
        scratch.uy.withUnsafeMutableBufferPointer { uy in
        scratch.uz.withUnsafeMutableBufferPointer { uz in
        scratch.dTermIJ.withUnsafeMutableBufferPointer { dij in
        scratch.dTermJI.withUnsafeMutableBufferPointer { dji in
        scratch.integral.withUnsafeMutableBufferPointer { integral in
            if gb { for i in 0..<n { integral[i] = 0 } }
            let engulf = engulfCorrection
            // Pass 1: LJ + Coulomb over non-excluded pairs, Born integrals over all pairs.
            var k = 0
            for i in 0..<n {
                let xi = x[3 * i], yi = x[3 * i + 1], zi = x[3 * i + 2]
                var gxi = 0.0, gyi = 0.0, gzi = 0.0
                var integralI = 0.0
                let rhoI = gb ? rho[i] : 0, srI = gb ? sr[i] : 0
                for j in (i + 1)..<n {
                    let dx = xi - x[3 * j], dy = yi - x[3 * j + 1], dz = zi - x[3 * j + 2]
                    let r2 = dx * dx + dy * dy + dz * dz
                    let inv2 = 1 / r2
                    let invr = inv2.squareRoot()
                    let inv6 = inv2 * inv2 * inv2
                    let lj12 = pa[k] * inv6 * inv6, lj6 = pb[k] * inv6, coul = pq[k] * invr
                    e += lj12 - lj6 + coul
                    let s = (-12 * lj12 + 6 * lj6 - coul) * inv2    // (∂E/∂r)/r
                    gxi += s * dx; gyi += s * dy; gzi += s * dz
                    if let g {
                        g[3 * j] -= s * dx; g[3 * j + 1] -= s * dy; g[3 * j + 2] -= s * dz
                    }
                    if gb {
                        let r = r2 * invr
                        rr[k] = r; ux[k] = dx * invr; uy[k] = dy * invr; uz[k] = dz * invr
                        let (tij, dtij) = AmberEnergy.born(r, invr, rhoI, sr[j], engulf)
                        let (tji, dtji) = AmberEnergy.born(r, invr, rho[j], srI, engulf)
                        integralI += tij
                        integral[j] += tji
                        dij[k] = dtij; dji[k] = dtji
                    }
                    k += 1
                }
                if let g { g[3 * i] += gxi; g[3 * i + 1] += gyi; g[3 * i + 2] += gzi }
                if gb { integral[i] += integralI }
            }
        }}}}}}}}}}}}
        if gb { e += gbEnergy(g, scratch) }
        return e
    }

    /// Born radii, GB polar and ACE energies, and the chain rule through the Born radii.
    private func gbEnergy(_ g: UnsafeMutablePointer<Double>?, _ scratch: Scratch) -> Double {
        let n = self.n
        var e = 0.0
        let pre = gbPrefactor
        charge.withUnsafeBufferPointer { q in
        radius.withUnsafeBufferPointer { radius in
        offsetRadius.withUnsafeBufferPointer { rho in
        aceFactor.withUnsafeBufferPointer { ace in
        scratch.r.withUnsafeMutableBufferPointer { rr in
        scratch.ux.withUnsafeMutableBufferPointer { ux in
        scratch.uy.withUnsafeMutableBufferPointer { uy in
        scratch.uz.withUnsafeMutableBufferPointer { uz in
        scratch.dTermIJ.withUnsafeMutableBufferPointer { dij in
        scratch.dTermJI.withUnsafeMutableBufferPointer { dji in
        scratch.integral.withUnsafeMutableBufferPointer { integral in
        scratch.born.withUnsafeMutableBufferPointer { born in
        scratch.dBorn.withUnsafeMutableBufferPointer { dBorn in
        scratch.bornForce.withUnsafeMutableBufferPointer { bornForce in
            e += bornRadii(integral: integral.baseAddress!, rho: rho.baseAddress!, radius: radius.baseAddress!,
                           charge: q.baseAddress!, ace: ace.baseAddress!, born: born.baseAddress!,
                           dBorn: dBorn.baseAddress!, bornForce: bornForce.baseAddress!)
            // Pass 2: GB pair terms.
            var k = 0
            for i in 0..<n {
                let qi = pre * q[i], bi = born[i]
                var bfi = 0.0
                var gxi = 0.0, gyi = 0.0, gzi = 0.0
                for j in (i + 1)..<n {
                    let r = rr[k]
                    let r2 = r * r
                    let p = bi * born[j]
                    let d = r2 / (4 * p)
                    let ex = exp(-d)
                    let f2 = r2 + p * ex
                    let invf2 = 1 / f2
                    let gpol = qi * q[j] * invf2.squareRoot()
                    e += gpol
                    // ∂G/∂r = −G(1 − e/4) r/f², ∂G/∂P = −G e (1 + D)/(2f²).
                    let dGdr = -gpol * (1 - 0.25 * ex) * r * invf2
                    let dGdp = -0.5 * gpol * ex * (1 + d) * invf2
                    bfi += dGdp * born[j]
                    bornForce[j] += dGdp * bi
                    if let g {
                        gxi += dGdr * ux[k]; gyi += dGdr * uy[k]; gzi += dGdr * uz[k]
                        g[3 * j] -= dGdr * ux[k]; g[3 * j + 1] -= dGdr * uy[k]; g[3 * j + 2] -= dGdr * uz[k]
                    }
                    k += 1
                }
                bornForce[i] += bfi
                if let g { g[3 * i] += gxi; g[3 * i + 1] += gyi; g[3 * i + 2] += gzi }
            }
            guard let g else { return }
            // Pass 3: chain rule through the Born radii, ∂E/∂Bᵢ · ∂Bᵢ/∂Iᵢ · ∂Iᵢ/∂r.
            for i in 0..<n { bornForce[i] *= dBorn[i] }
            k = 0
            for i in 0..<n {
                let ci = bornForce[i]
                var gxi = 0.0, gyi = 0.0, gzi = 0.0
                for j in (i + 1)..<n {
                    let s = ci * dij[k] + bornForce[j] * dji[k]
                    gxi += s * ux[k]; gyi += s * uy[k]; gzi += s * uz[k]
                    g[3 * j] -= s * ux[k]; g[3 * j + 1] -= s * uy[k]; g[3 * j + 2] -= s * uz[k]
                    k += 1
                }
                g[3 * i] += gxi; g[3 * i + 1] += gyi; g[3 * i + 2] += gzi
            }
        }}}}}}}}}}}}}}
        return e
    }
}

extension AmberEnergy {
    /// OBC Born radii from the descreening integrals I_i, with ∂B/∂I, and the GB self energy and
    /// ACE term (returned); `bornForce[i]` = ∂(self + ACE)/∂B_i. The one copy both the scalar
    /// and the SIMD pair paths call.
    ///
    ///     ψ = ρI/2,  B = 1/(1/ρ − tanh(αψ − βψ² + γψ³)/R),
    ///     E_self = ½ pre q²/B,  E_ACE = ace (R/B)⁶.
    @inline(__always)
    func bornRadii(integral: UnsafeMutablePointer<Double>, rho: UnsafePointer<Double>, radius: UnsafePointer<Double>,
                   charge q: UnsafePointer<Double>, ace: UnsafePointer<Double>, born: UnsafeMutablePointer<Double>,
                   dBorn: UnsafeMutablePointer<Double>, bornForce: UnsafeMutablePointer<Double>) -> Double {
        let (alpha, beta, gamma) = (self.alpha, self.beta, self.gamma)
        let pre = gbPrefactor
        var e = 0.0
        for i in 0..<n {
            let psi = 0.5 * rho[i] * integral[i]
            let t = tanh(psi * (alpha + psi * (-beta + gamma * psi)))
            let b = 1 / (1 / rho[i] - t / radius[i])
            born[i] = b
            // ∂B/∂I = B²(1 − tanh²)(α − 2βψ + 3γψ²)/R · ∂ψ/∂I, ∂ψ/∂I = ρ/2.
            dBorn[i] = b * b * (1 - t * t) * (alpha + psi * (-2 * beta + 3 * gamma * psi)) / radius[i] * 0.5 * rho[i]
            let selfE = 0.5 * pre * q[i] * q[i] / b
            let ratio = radius[i] / b
            let r3 = ratio * ratio * ratio
            let aceE = ace[i] * r3 * r3
            e += selfE + aceE
            bornForce[i] = -selfE / b - 6 * aceE / b
        }
        return e
    }
}
