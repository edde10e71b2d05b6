import Foundation

/// Four doubles (one AVX2 register with -target-cpu haswell).
typealias V4 = SIMD4<Double>

/// Natural logarithm of four positive, normal doubles: the fdlibm algorithm (e_log.c:
/// x = 2ᵏ(1+f) with √2/2 ≤ 1+f < √2, s = f/(2+f), log(1+f) = f − ½f² + s(½f² + R(s²))
/// with its degree-14 minimax polynomial), error below 1 ulp as in fdlibm's main branch.
@inline(__always)
func vlog(_ x: V4) -> V4 {
    let lg1 = 6.666666666666735130e-01, lg2 = 3.999999999940941908e-01
    let lg3 = 2.857142874366239149e-01, lg4 = 2.222219843214978396e-01
    let lg5 = 1.818357216161805012e-01, lg6 = 1.531383769920937332e-01
    let lg7 = 1.479819860511658591e-01
    let ln2Hi = 6.93147180369123816490e-01, ln2Lo = 1.90821492927058770002e-10
    var bits = unsafeBitCast(x, to: SIMD4<UInt64>.self)
    var high = bits &>> 32
    var k = SIMD4<Int64>(truncatingIfNeeded: high &>> 20) &- 1023
    high &= 0x000f_ffff
    let i = (high &+ 0x95f64) & 0x10_0000
    bits = (bits & 0xffff_ffff) | ((high | (i ^ 0x3ff0_0000)) &<< 32)
    k &+= SIMD4<Int64>(truncatingIfNeeded: i &>> 20)
    let f = unsafeBitCast(bits, to: V4.self) - 1
    let s = f / (2 + f)
    let dk = V4(Double(k[0]), Double(k[1]), Double(k[2]), Double(k[3]))
    let z = s * s, w = z * z
    let t1 = w * (lg2 + w * (lg4 + w * lg6))
    let t2 = z * (lg1 + w * (lg3 + w * (lg5 + w * lg7)))
    let r = t2 + t1
    let hfsq = 0.5 * f * f
    return dk * ln2Hi - ((hfsq - (s * (hfsq + r) + dk * ln2Lo)) - f)
}

/// exp(x) of four doubles with x ≤ 0, the fdlibm algorithm (e_exp.c: x = k·ln2 + r,
/// |r| ≤ ½ln2, exp(r) = 1 + 2r/(2 − c(r)) with its degree-10 minimax polynomial), error
/// below 1 ulp; x is clamped to ≥ −700 (exp(−700) ≈ 1e−304, far below what the GB terms
/// can resolve).
@inline(__always)
func vexpNonPositive(_ xIn: V4) -> V4 {
    let p1 = 1.66666666666666019037e-01, p2 = -2.77777777770155933842e-03
    let p3 = 6.61375632143793436117e-05, p4 = -1.65339022054652515390e-06
    let p5 = 4.13813679705723846039e-08
    let ln2Hi = 6.93147180369123816490e-01, ln2Lo = 1.90821492927058770002e-10
    let invLn2 = 1.44269504088896338700e+00
    let shifter = V4(repeating: 0x1.8p52)
    let x0 = xIn.replacing(with: -700, where: xIn .< -700)
    // k = round(x/ln2) by the 1.5·2⁵² shifter; its low bits hold k in two's complement.
    let t = x0 * invLn2 + shifter
    let dk = t - shifter
    let kBits = unsafeBitCast(t, to: SIMD4<UInt64>.self) &- unsafeBitCast(shifter, to: SIMD4<UInt64>.self)
    let hi = x0 - dk * ln2Hi, lo = dk * ln2Lo
    let x = hi - lo
    let xx = x * x
    let c = x - xx * (p1 + xx * (p2 + xx * (p3 + xx * (p4 + xx * p5))))
    let y = 1 - ((lo - (x * c) / (2 - c)) - hi)
    // y · 2ᵏ by adding k to the exponent field.
    return unsafeBitCast(unsafeBitCast(y, to: SIMD4<UInt64>.self) &+ (kBits &<< 52), to: V4.self)
}

extension AmberEnergy {
    /// OBC Born integral terms of atoms with offset radii `rho` from atoms with scaled radii
    /// `s` at distances `r`, and their r-derivatives; zero where `valid` is false.
    /// The same formulas as the scalar `born` (see AmberEnergy.swift).
    @_transparent
    static func bornV(_ r: V4, _ invr: V4, _ rho: V4, _ s: V4, _ valid: SIMDMask<SIMD4<Int64>>,
                      _ engulf: Bool) -> (V4, V4) {
        let u = r + s
        let active = valid .& (rho .< u)
        let d = r - s
        // max(ρ, |r − s|) without the generic pointwiseMax (a call, not an instruction).
        let absD = d.replacing(with: -d, where: d .< 0)
        let l = rho.replacing(with: absD, where: rho .< absD)
        // One division for both reciprocals: 1/L = U/(LU), 1/U = L/(LU).
        let invLU = 1 / (l * u)
        let invL = u * invLU, invU = l * invLU
        let invL2 = invL * invL, invU2 = invU * invU
        let ratio = V4(repeating: 1).replacing(with: l * invU, where: active)
        let logLU = vlog(ratio)
        var term = invL - invU + 0.25 * (r - s * s * invr) * (invU2 - invL2) + 0.5 * logLU * invr
        var dterm = 0.25 * (invU2 - invL2) * (1 + s * s * invr * invr) - 0.5 * logLU * invr * invr
        let engulfed = active .& (rho .< -d)
        if any(engulfed) {
            if engulf {
                term = term.replacing(with: term + 2 * (1 / rho - invL), where: engulfed)
            } else {
                dterm = dterm.replacing(with: dterm + 2 * invL2, where: engulfed)
            }
        }
        let zero = V4(repeating: 0)
        return (zero.replacing(with: term, where: active), zero.replacing(with: dterm, where: active))
    }

    /// Lanes j of the aligned chunk starting at j0 that are pairs i < j < n.
    @inline(__always)
    static func laneMask(_ j0: Int, _ i: Int, _ n: Int) -> SIMDMask<SIMD4<Int64>> {
        let j = SIMD4<Int64>(Int64(j0), Int64(j0 + 1), Int64(j0 + 2), Int64(j0 + 3))
        return (j .> SIMD4(repeating: Int64(i))) .& (j .< SIMD4(repeating: Int64(n)))
    }

    /// LJ + Coulomb (+ GB) pair terms with SIMD4 over j; the same sums as `pairEnergy` and
    /// `gbEnergy`, in a structure-of-arrays layout.
    func simdPairEnergy(_ x: UnsafePointer<Double>, _ g: UnsafeMutablePointer<Double>?,
                        _ scratch: Scratch) -> Double {
        let n = self.n, np = padded
        let gb = solvent != .vacuum
        let engulf = engulfCorrection
        var energy = V4(repeating: 0)
        var scalarEnergy = 0.0
        matA.withUnsafeBufferPointer { pa in
        matB.withUnsafeBufferPointer { pb in
        matQQ.withUnsafeBufferPointer { pq in
        rhoPadded.withUnsafeBufferPointer { rho in
        srPadded.withUnsafeBufferPointer { sr in
        chargePadded.withUnsafeBufferPointer { q in
        radius.withUnsafeBufferPointer { radius in
        aceFactor.withUnsafeBufferPointer { ace in
        scratch.sx.withUnsafeMutableBufferPointer { X in
        scratch.sy.withUnsafeMutableBufferPointer { Y in
        scratch.sz.withUnsafeMutableBufferPointer { Z in
        scratch.sgx.withUnsafeMutableBufferPointer { GX in
        scratch.sgy.withUnsafeMutableBufferPointer { GY in
        scratch.sgz.withUnsafeMutableBufferPointer { GZ in
        scratch.pr.withUnsafeMutableBufferPointer { PR in
        scratch.pux.withUnsafeMutableBufferPointer { UX in
        scratch.puy.withUnsafeMutableBufferPointer { UY in
        scratch.puz.withUnsafeMutableBufferPointer { UZ in
        scratch.pdij.withUnsafeMutableBufferPointer { DIJ in
        scratch.pdji.withUnsafeMutableBufferPointer { DJI in
        scratch.integral.withUnsafeMutableBufferPointer { integral in
        scratch.born.withUnsafeMutableBufferPointer { born in
        scratch.dBorn.withUnsafeMutableBufferPointer { dBorn in
        scratch.bornForce.withUnsafeMutableBufferPointer { bornForce in
            @inline(__always) func load(_ p: UnsafeMutableBufferPointer<Double>, _ k: Int) -> V4 {
                UnsafeRawPointer(p.baseAddress! + k).loadUnaligned(as: V4.self)
            }
            @inline(__always) func load(_ p: UnsafeBufferPointer<Double>, _ k: Int) -> V4 {
                UnsafeRawPointer(p.baseAddress! + k).loadUnaligned(as: V4.self)
            }
            @inline(__always) func store(_ v: V4, _ p: UnsafeMutableBufferPointer<Double>, _ k: Int) {
                UnsafeMutableRawPointer(p.baseAddress! + k).storeBytes(of: v, as: V4.self)
            }
            for a in 0..<np {
                if a < n {
                    X[a] = x[3 * a]; Y[a] = x[3 * a + 1]; Z[a] = x[3 * a + 2]
                } else {
                    X[a] = 0; Y[a] = 0; Z[a] = 0
                }
                GX[a] = 0; GY[a] = 0; GZ[a] = 0; integral[a] = 0; bornForce[a] = 0; born[a] = 1
            }
            let one = V4(repeating: 1)
            // Pass 1: LJ + Coulomb, Born integrals.
            for i in 0..<n {
                let xi = V4(repeating: X[i]), yi = V4(repeating: Y[i]), zi = V4(repeating: Z[i])
                let rhoI = V4(repeating: rho[i]), srI = V4(repeating: sr[i])
                var gxi = V4(repeating: 0), gyi = gxi, gzi = gxi, integralI = gxi
                let row = i * np
                var j0 = (i + 1) & ~3
                while j0 < n {
                    let mask = AmberEnergy.laneMask(j0, i, n)
                    let dx = xi - load(X, j0), dy = yi - load(Y, j0), dz = zi - load(Z, j0)
                    let r2 = one.replacing(with: dx * dx + dy * dy + dz * dz, where: mask)
                    let inv2 = 1 / r2
                    let invr = inv2.squareRoot()
                    let inv6 = inv2 * inv2 * inv2
                    let lj12 = load(pa, row + j0) * inv6 * inv6, lj6 = load(pb, row + j0) * inv6
                    let coul = load(pq, row + j0) * invr
                    energy += lj12 - lj6 + coul
                    let s = (-12 * lj12 + 6 * lj6 - coul) * inv2
                    gxi += s * dx; gyi += s * dy; gzi += s * dz
                    store(load(GX, j0) - s * dx, GX, j0)
                    store(load(GY, j0) - s * dy, GY, j0)
                    store(load(GZ, j0) - s * dz, GZ, j0)
                    if gb {
                        let r = r2 * invr
                        store(r, PR, row + j0)
                        store(dx * invr, UX, row + j0); store(dy * invr, UY, row + j0); store(dz * invr, UZ, row + j0)
                        let (tij, dtij) = AmberEnergy.bornV(r, invr, rhoI, load(sr, j0), mask, engulf)
                        let (tji, dtji) = AmberEnergy.bornV(r, invr, load(rho, j0), srI, mask, engulf)
                        integralI += tij
                        store(load(integral, j0) + tji, integral, j0)
                        store(dtij, DIJ, row + j0); store(dtji, DJI, row + j0)
                    }
                    j0 += 4
                }
                GX[i] += gxi.sum(); GY[i] += gyi.sum(); GZ[i] += gzi.sum()
                if gb { integral[i] += integralI.sum() }
            }
            if gb {
                let pre = gbPrefactor
                // Born radii, self energy and ACE term (scalar: n values).
                scalarEnergy += bornRadii(integral: integral.baseAddress!, rho: rho.baseAddress!, radius: radius.baseAddress!,
                                          charge: q.baseAddress!, ace: ace.baseAddress!, born: born.baseAddress!,
                                          dBorn: dBorn.baseAddress!, bornForce: bornForce.baseAddress!)
                // Pass 2: GB pair terms.
                for i in 0..<n {
                    let qi = pre * q[i], bi = born[i]
                    var bfi = V4(repeating: 0), gxi = bfi, gyi = bfi, gzi = bfi
                    let row = i * np
                    var j0 = (i + 1) & ~3
                    while j0 < n {
                        let mask = AmberEnergy.laneMask(j0, i, n)
                        let r = load(PR, row + j0)
                        let r2 = r * r
                        let bj = load(born, j0)
                        let p = bi * bj
                        let d = r2 / (4 * p)
                        let ex = vexpNonPositive(-d)
                        let f2 = r2 + p * ex
                        let invf2 = 1 / f2
                        let gpol = V4(repeating: 0).replacing(with: qi * load(q, j0) * invf2.squareRoot(), where: mask)
                        energy += gpol
                        let dGdr = -gpol * (1 - 0.25 * ex) * r * invf2
                        let dGdp = -0.5 * gpol * ex * (1 + d) * invf2
                        bfi += dGdp * bj
                        store(load(bornForce, j0) + dGdp * bi, bornForce, j0)
                        let ux = load(UX, row + j0), uy = load(UY, row + j0), uz = load(UZ, row + j0)
                        gxi += dGdr * ux; gyi += dGdr * uy; gzi += dGdr * uz
                        store(load(GX, j0) - dGdr * ux, GX, j0)
                        store(load(GY, j0) - dGdr * uy, GY, j0)
                        store(load(GZ, j0) - dGdr * uz, GZ, j0)
                        j0 += 4
                    }
                    bornForce[i] += bfi.sum()
                    GX[i] += gxi.sum(); GY[i] += gyi.sum(); GZ[i] += gzi.sum()
                }
                // Pass 3: chain rule through the Born radii.
                if g != nil {
                    for i in 0..<n { bornForce[i] *= dBorn[i] }
                    for i in n..<np { bornForce[i] = 0 }
                    for i in 0..<n {
                        let ci = V4(repeating: bornForce[i])
                        var gxi = V4(repeating: 0), gyi = gxi, gzi = gxi
                        let row = i * np
                        var j0 = (i + 1) & ~3
                        while j0 < n {
                            // DIJ/DJI are zero on lanes that are not pairs.
                            let s = ci * load(DIJ, row + j0) + load(bornForce, j0) * load(DJI, row + j0)
                            let ux = load(UX, row + j0), uy = load(UY, row + j0), uz = load(UZ, row + j0)
                            gxi += s * ux; gyi += s * uy; gzi += s * uz
                            store(load(GX, j0) - s * ux, GX, j0)
                            store(load(GY, j0) - s * uy, GY, j0)
                            store(load(GZ, j0) - s * uz, GZ, j0)
                            j0 += 4
                        }
                        GX[i] += gxi.sum(); GY[i] += gyi.sum(); GZ[i] += gzi.sum()
                    }
                }
            }
            if let g {
                for a in 0..<n { g[3 * a] += GX[a]; g[3 * a + 1] += GY[a]; g[3 * a + 2] += GZ[a] }
            }
        }}}}}}}}}}}}}}}}}}}}}}}}
        return energy.sum() + scalarEnergy
    }
}
