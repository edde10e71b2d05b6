import Foundation

/// Eight floats (one AVX2 register with -target-cpu haswell).
typealias F8 = SIMD8<Float>
/// Lane masks of eight floats.
typealias M8 = SIMDMask<SIMD8<Int32>>

/// The sum of eight floats' lanes in double (each half widened to four doubles).
@inline(__always)
func wideSum(_ v: F8) -> Double {
    (SIMD4<Double>(v.lowHalf) + SIMD4<Double>(v.highHalf)).sum()
}

/// Natural logarithm of eight positive, normal floats: `vlog`'s algorithm in single
/// precision (fdlibm e_logf.c, its degree-8 polynomial), error below 1 ulp.
@inline(__always)
func vlogf(_ x: F8) -> F8 {
    let lg1: Float = 6.6666662693e-01, lg2: Float = 4.0000972152e-01
    let lg3: Float = 2.8498786688e-01, lg4: Float = 2.4279078841e-01
    let ln2Hi: Float = 6.9313812256e-01, ln2Lo: Float = 9.0580006145e-06
    var bits = unsafeBitCast(x, to: SIMD8<Int32>.self)
    var k = (bits &>> 23) &- 127
    bits &= 0x007f_ffff
    let i = (bits &+ (0x95f64 &<< 3)) & 0x80_0000
    bits |= i ^ 0x3f80_0000
    k &+= i &>> 23
    let f = unsafeBitCast(bits, to: F8.self) - 1
    let s = f / (2 + f)
    let dk = F8(k)
    let z = s * s, w = z * z
    let t1 = w * (lg2 + w * lg4)
    let t2 = z * (lg1 + w * lg3)
    let r = t2 + t1
    let hfsq = 0.5 * f * f
    return dk * ln2Hi - ((hfsq - (s * (hfsq + r) + dk * ln2Lo)) - f)
}

/// exp(x) of eight floats with x ≤ 0: `vexpNonPositive`'s algorithm in single precision
/// (fdlibm e_expf.c), error below 1 ulp; x is clamped to ≥ −80 (exp(−80) ≈ 2e−35).
@inline(__always)
func vexpfNonPositive(_ xIn: F8) -> F8 {
    let p1: Float = 1.6666625440e-01, p2: Float = -2.7667332906e-03
    let ln2Hi: Float = 6.9314575195e-01, ln2Lo: Float = 1.4286067653e-06
    let invLn2: Float = 1.4426950216e+00
    let shifter = F8(repeating: 0x1.8p23)
    let x0 = xIn.replacing(with: -80, where: xIn .< -80)
    let t = x0 * invLn2 + shifter
    let dk = t - shifter
    let kBits = unsafeBitCast(t, to: SIMD8<Int32>.self) &- unsafeBitCast(shifter, to: SIMD8<Int32>.self)
    let hi = x0 - dk * ln2Hi, lo = dk * ln2Lo
    let x = hi - lo
    let xx = x * x
    let c = x - xx * (p1 + xx * p2)
    let y = 1 - ((lo - (x * c) / (2 - c)) - hi)
    return unsafeBitCast(unsafeBitCast(y, to: SIMD8<Int32>.self) &+ (kBits &<< 23), to: F8.self)
}

/// Single-precision tables of the mixed-precision pair kernel (`precision=mixed`), built once
/// per system: each per-atom table padded to `stride` = n rounded up to 8, plus 8.
final class MixedTables {
    let stride: Int
    /// Charges (e) as a high part Float(q) and a low part Float(q − Float(q)): the Coulomb
    /// sums cancel to a few per cent of their terms, so the charges keep ~2⁻⁴⁸ of the doubles.
    let charge, chargeLow: UnsafeMutablePointer<Float>
    /// GB offset radii ρ (padding 1) and scaled radii s (padding 0).
    let rho, sr: UnsafeMutablePointer<Float>
    /// LJ A and B per partner atom (as `AmberEnergy.ljAByAtom`); ntypes × stride.
    let ljA, ljB: UnsafeMutablePointer<Float>

    init(_ e: AmberEnergy) {
        let stride = (e.n + 7) / 8 * 8 + 8
        self.stride = stride
        func table(_ count: Int, _ value: (Int) -> Double) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: count)
            for k in 0..<count { (p + k).initialize(to: Float(value(k))) }
            return p
        }
        charge = table(stride) { $0 < e.n ? e.charge[$0] : 0 }
        chargeLow = table(stride) { [charge] in $0 < e.n ? e.charge[$0] - Double(charge[$0]) : 0 }
        rho = table(stride) { $0 < e.n ? e.rho[$0] : 1 }
        sr = table(stride) { $0 < e.n ? e.scaledRadius[$0] : 0 }
        let byAtom = { (p: UnsafeMutablePointer<Double>) in
            table(e.ljTypeCount * stride) { k in k % stride < e.n ? p[k / stride * e.stride + k % stride] : 0 }
        }
        ljA = byAtom(e.ljAByAtom)
        ljB = byAtom(e.ljBByAtom)
    }

    deinit { for p in [charge, chargeLow, rho, sr, ljA, ljB] { p.deallocate() } }
}

/// One scratch's single-precision buffers (`MixedTables.stride` each). The configuration's
/// scratch holds the positions about the centroid as high and low parts, the Born radii and
/// the pass-3 factors ∂E/∂B · ∂B/∂I; every worker's own holds float accumulators of the
/// partners j (gradient, Born integrals, ∂E/∂B; moved into the scratch's doubles every
/// `AmberEnergy.mixedFlushRows` rows) and the 1/0 exclusion switches.
final class MixedScratch {
    let x, y, z, lx, ly, lz, born, factor: UnsafeMutablePointer<Float>
    let gx, gy, gz, integral, bornForce, keep: UnsafeMutablePointer<Float>

    init(stride: Int) {
        func buffer(_ value: Float) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: stride)
            p.initialize(repeating: value, count: stride)
            return p
        }
        (x, y, z, lx, ly, lz) = (buffer(0), buffer(0), buffer(0), buffer(0), buffer(0), buffer(0))
        (born, factor) = (buffer(1), buffer(0))
        (gx, gy, gz, integral, bornForce, keep) = (buffer(0), buffer(0), buffer(0), buffer(0), buffer(0), buffer(1))
    }

    deinit { for p in [x, y, z, lx, ly, lz, born, factor, gx, gy, gz, integral, bornForce, keep] { p.deallocate() } }
}

extension AmberEnergy {
    /// Arithmetic of the non-bonded pair terms: double throughout (the default), or
    /// single precision on 8 lanes with each row's sums in double (`mixed`, as OpenMM's CPU
    /// platform computes them).
    enum Precision: String, CaseIterable { case double, mixed }

    /// Why `precision=mixed` cannot run with these settings, or nil when it can: it is
    /// implemented without a cutoff and with the SIMD kernel.
    static func mixedUnsupported(solvent: Solvent, cutoff: Cutoff?, kernel: Kernel) -> String? {
        var missing: [String] = []
        if cutoff != nil { missing.append("cutoff=") }
        if kernel != .simd { missing.append("kernel=\(kernel.rawValue)") }
        guard !missing.isEmpty else { return nil }
        return "precision=mixed is implemented without cutoff= and with kernel=simd only, not with "
            + missing.joined(separator: ", ") + "; use precision=double"
    }

    /// Rows of one worker between moves of its float partner sums into double.
    static let mixedFlushRows = 32

    /// The scratch's float buffers, made on first use.
    func mixedBuffers(_ s: Scratch) -> MixedScratch {
        if let m = s.mixedBuffers { return m }
        let m = MixedScratch(stride: mixedTables!.stride)
        s.mixedBuffers = m
        return m
    }

    /// Loads the configuration in `s` (after `prepare`) into its float positions: about the
    /// centroid, high and low parts, so that a difference of two positions is rounded to float
    /// relative to itself, not to the coordinates.
    private func loadMixedPositions(_ s: Scratch) -> MixedScratch {
        let m = mixedBuffers(s)
        var cx = 0.0, cy = 0.0, cz = 0.0
        for a in 0..<n { cx += s.x[a]; cy += s.y[a]; cz += s.z[a] }
        let scale = 1 / Double(max(n, 1))
        cx *= scale; cy *= scale; cz *= scale
        for a in 0..<n {
            let px = s.x[a] - cx, py = s.y[a] - cy, pz = s.z[a] - cz
            m.x[a] = Float(px); m.y[a] = Float(py); m.z[a] = Float(pz)
            m.lx[a] = Float(px - Double(m.x[a])); m.ly[a] = Float(py - Double(m.y[a])); m.lz[a] = Float(pz - Double(m.z[a]))
        }
        return m
    }

    /// The pair terms of one configuration in mixed precision: the same sums as
    /// `simdPairEnergy` to ~1e-6 relative (no cutoff).
    func mixedPairEnergy(_ s: Scratch, gradients: Bool) -> Double {
        mixedPairEnergy(count: 1, { _ in s }, gradients: gradients)
    }

    /// The same split over `workers.count` threads as `simdPairEnergy(workers:gradients:)`
    /// (one worker: no threads): worker t takes rows t, t + T, …; partial sums added in worker
    /// order (the same bits for the same worker count). `workers[0]` holds the configuration.
    func mixedPairEnergy(workers: [Scratch], gradients: Bool) -> Double {
        mixedPairEnergy(count: workers.count, { workers[$0] }, gradients: gradients)
    }

    /// `mixedPairEnergy(workers:gradients:)` with worker t's scratch `worker(t)`.
    private func mixedPairEnergy(count: Int, _ worker: (Int) -> Scratch, gradients: Bool) -> Double {
        let s = worker(0)
        let gb = solvent != .vacuum
        let p = loadMixedPositions(s)
        /// `body(t)` on every worker (on this thread when there is one).
        func each(_ body: (Int) -> Void) {
            if count == 1 { body(0) } else { DispatchQueue.concurrentPerform(iterations: count, execute: body) }
        }
        each { t in
            let w = worker(t)
            if t > 0 { for g in [w.gx, w.gy, w.gz, w.integral, w.bornForce] { g.update(repeating: 0, count: stride) } }
            let m = mixedBuffers(w)
            // Pass 1 keeps the Born terms' r-derivatives for pass 3 (2 × 8 floats per chunk, in the
            // scratch's derivative buffer) when every worker's fit in `derivativeCapacity` doubles.
            let lanes = mixedLanes(first: t, step: count)
            w.keepsDerivatives = gb && gradients && lanes * count <= AmberEnergy.derivativeCapacity
            if w.keepsDerivatives { w.reserveDerivatives(lanes) }
            let kept = w.keepsDerivatives ? w.derivatives.map(UnsafeMutableRawPointer.init) : nil
            let e = gb ? mixedPass1(WithBornIntegrals.self, p, m, w, first: t, step: count, derivatives: kept)
                : mixedPass1(WithoutBornIntegrals.self, p, m, w, first: t, step: count, derivatives: nil)
            w.pairEnergy = V4(e, 0, 0, 0)
        }
        var scalarEnergy = 0.0
        if gb {
            for t in 1..<count { let w = worker(t); for i in 0..<n { s.integral[i] += w.integral[i] } }
            scalarEnergy += bornRadii(integral: s.integral, rho: rho, radius: radius, charge: charge, ace: aceFactor,
                                      born: s.born, dBorn: s.dBorn, bornForce: s.bornForce)
            for i in 0..<n { p.born[i] = Float(s.born[i]) }
            each { t in
                let w = worker(t)
                w.pairEnergy[1] = mixedPass2(p, mixedBuffers(w), w, first: t, step: count)
            }
            if gradients {
                for t in 1..<count { let w = worker(t); for i in 0..<n { s.bornForce[i] += w.bornForce[i] } }
                chainRuleFactors(s)
                for i in 0..<n { p.factor[i] = Float(s.bornForce[i]) }
                each { t in
                    let w = worker(t)
                    let kept = w.keepsDerivatives ? w.derivatives.map(UnsafeMutableRawPointer.init) : nil
                    mixedPass3(p, mixedBuffers(w), w, first: t, step: count, derivatives: kept)
                }
            }
        }
        for t in 1..<count {
            let w = worker(t)
            for i in 0..<n { s.gx[i] += w.gx[i]; s.gy[i] += w.gy[i]; s.gz[i] += w.gz[i] }
        }
        var energy = 0.0
        for t in 0..<count { energy += worker(t).pairEnergy[0] + worker(t).pairEnergy[1] }
        return energy + scalarEnergy
    }

    /// Lanes (8 per chunk) of the rows first, first + step, … of the runs of j > i.
    private func mixedLanes(first: Int, step: Int) -> Int {
        var lanes = 0
        for i in Swift.stride(from: first, to: n, by: step) { lanes += (n - ((i + 1) & ~7) + 7) / 8 * 8 }
        return lanes
    }

    /// Adds float accumulators `f[range]` into the doubles `d` and zeroes them.
    @inline(__always)
    private static func flush(_ f: UnsafeMutablePointer<Float>, into d: UnsafeMutablePointer<Double>, _ range: Range<Int>) {
        for a in range { d[a] += Double(f[a]); f[a] = 0 }
    }

    /// Pass 1 (LJ + Coulomb, and Born integrals when `G.gb`) over the rows first, first + step,
    /// … of the runs of j > i, 8 float lanes (float charges with their low parts, float LJ
    /// coefficients, as OpenMM's CPU platform): positions from `p`, float partner sums and
    /// exclusion switches in `m`, row sums added in double into `w`. Returns the energy.
    /// Generic over `G` so that vacuum and GB each get their own compiled loop.
    private func mixedPass1<G: MixedPass1Kind>(_: G.Type, _ p: MixedScratch, _ m: MixedScratch, _ w: Scratch,
                                               first: Int, step: Int, derivatives: UnsafeMutableRawPointer?) -> Double {
        let gb = G.gb
        let t = mixedTables!
        let fStride = t.stride
        for g in [m.gx, m.gy, m.gz, m.integral] { g.update(repeating: 0, count: fStride) }
        let lane = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7), nv = SIMD8<Int32>(repeating: Int32(n))
        let zero = F8(repeating: 0), one = F8(repeating: 1)
        let engulf = engulfCorrection
        var energy = 0.0
        var done = 0
        var cursor = 0
        for i in Swift.stride(from: first, to: n, by: step) {
            let skip = Int(partnerStart[i])..<Int(partnerStart[i + 1])
            for q in skip { m.keep[Int(partners[q])] = 0 }
            let xi = F8(repeating: p.x[i]), yi = F8(repeating: p.y[i]), zi = F8(repeating: p.z[i])
            let lxi = F8(repeating: p.lx[i]), lyi = F8(repeating: p.ly[i]), lzi = F8(repeating: p.lz[i])
            let kqDouble = coulomb * charge[i]
            let kq = F8(repeating: Float(kqDouble)), kqLow = F8(repeating: Float(kqDouble - Double(Float(kqDouble))))
            let rhoI = F8(repeating: t.rho[i]), srI = F8(repeating: t.sr[i])
            let row = Int(ljType[i]) * fStride
            let ljA = t.ljA + row, ljB = t.ljB + row
            let iv = SIMD8<Int32>(repeating: Int32(i))
            var ax = zero, ay = zero, az = zero, aIntegral = zero
            var j0 = (i + 1) & ~7
            var j = lane &+ Int32(j0)
            while j0 < n {
                // Energy lanes go to double every 16 chunks.
                let end = min(j0 + 128, n)
                var ae = zero
                while j0 < end {
                    let valid = (j .> iv) .& (j .< nv)
                    let dx = (xi - p.x.lanes(at: j0)) + (lxi - p.lx.lanes(at: j0))
                    let dy = (yi - p.y.lanes(at: j0)) + (lyi - p.ly.lanes(at: j0))
                    let dz = (zi - p.z.lanes(at: j0)) + (lzi - p.lz.lanes(at: j0))
                    let r2 = one.replacing(with: dx * dx + dy * dy + dz * dz, where: valid)
                    let inv2 = 1 / r2
                    let invr = inv2.squareRoot()
                    let inv6 = inv2 * inv2 * inv2
                    let on = zero.replacing(with: m.keep.lanes(at: j0), where: valid)
                    let t12 = on * inv6 * inv6, t6 = on * inv6
                    let lj12 = ljA.lanes(at: j0) * t12, lj6 = ljB.lanes(at: j0) * t6
                    let qj = on * t.charge.lanes(at: j0), qjLow = on * t.chargeLow.lanes(at: j0)
                    let eq = (kq * qj + (kqLow * qj + kq * qjLow)) * invr
                    ae += lj12 - lj6 + eq
                    let sc = (-12 * lj12 + 6 * lj6 - eq) * inv2
                    ax += sc * dx; ay += sc * dy; az += sc * dz
                    m.gx.addLanes(-sc * dx, at: j0); m.gy.addLanes(-sc * dy, at: j0); m.gz.addLanes(-sc * dz, at: j0)
                    if gb {
                        let r = r2 * invr
                        let (tij, dij) = AmberEnergy.bornF(r, invr, rhoI, t.sr.lanes(at: j0), valid, engulf)
                        let (tji, dji) = AmberEnergy.bornF(r, invr, t.rho.lanes(at: j0), srI, valid, engulf)
                        aIntegral += tij
                        m.integral.addLanes(tji, at: j0)
                        if let derivatives {
                            derivatives.storeBytes(of: dij, toByteOffset: cursor, as: F8.self)
                            derivatives.storeBytes(of: dji, toByteOffset: cursor + 32, as: F8.self)
                            cursor += 64
                        }
                    }
                    j0 += 8
                    j &+= 8
                }
                energy += wideSum(ae)
            }
            for q in skip { m.keep[Int(partners[q])] = 1 }
            w.gx[i] += wideSum(ax); w.gy[i] += wideSum(ay); w.gz[i] += wideSum(az)
            if gb { w.integral[i] += wideSum(aIntegral) }
            done += 1
            // Rows after i touch only partners j > i.
            if done % AmberEnergy.mixedFlushRows == 0 {
                let rest = (i + 1)..<n
                AmberEnergy.flush(m.gx, into: w.gx, rest); AmberEnergy.flush(m.gy, into: w.gy, rest)
                AmberEnergy.flush(m.gz, into: w.gz, rest)
                if gb { AmberEnergy.flush(m.integral, into: w.integral, rest) }
            }
        }
        AmberEnergy.flush(m.gx, into: w.gx, 0..<n); AmberEnergy.flush(m.gy, into: w.gy, 0..<n)
        AmberEnergy.flush(m.gz, into: w.gz, 0..<n)
        if gb { AmberEnergy.flush(m.integral, into: w.integral, 0..<n) }
        return energy
    }

    /// Pass 2 (GB pair terms: energy, ∂E/∂B, direct gradient) over the rows first,
    /// first + step, …; Born radii from `p`, float partner sums in `m`, row sums into `w`.
    private func mixedPass2(_ p: MixedScratch, _ m: MixedScratch, _ w: Scratch, first: Int, step: Int) -> Double {
        let t = mixedTables!
        for g in [m.gx, m.gy, m.gz, m.bornForce] { g.update(repeating: 0, count: t.stride) }
        let lane = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7), nv = SIMD8<Int32>(repeating: Int32(n))
        let zero = F8(repeating: 0)
        var energy = 0.0
        var done = 0
        for i in Swift.stride(from: first, to: n, by: step) {
            let xi = F8(repeating: p.x[i]), yi = F8(repeating: p.y[i]), zi = F8(repeating: p.z[i])
            let lxi = F8(repeating: p.lx[i]), lyi = F8(repeating: p.ly[i]), lzi = F8(repeating: p.lz[i])
            let preDouble = gbPrefactor * charge[i]
            let pre = F8(repeating: Float(preDouble)), preLow = F8(repeating: Float(preDouble - Double(Float(preDouble))))
            let bi = F8(repeating: p.born[i])
            let iv = SIMD8<Int32>(repeating: Int32(i))
            var ax = zero, ay = zero, az = zero, aBorn = zero
            var j0 = (i + 1) & ~7
            var j = lane &+ Int32(j0)
            while j0 < n {
                let end = min(j0 + 128, n)
                var ae = zero
                while j0 < end {
                    let valid = (j .> iv) .& (j .< nv)
                    let dx = (xi - p.x.lanes(at: j0)) + (lxi - p.lx.lanes(at: j0))
                    let dy = (yi - p.y.lanes(at: j0)) + (lyi - p.ly.lanes(at: j0))
                    let dz = (zi - p.z.lanes(at: j0)) + (lzi - p.lz.lanes(at: j0))
                    let r2 = dx * dx + dy * dy + dz * dz
                    let bj = p.born.lanes(at: j0)
                    let pb = bi * bj
                    let d = r2 / (4 * pb)
                    let ex = vexpfNonPositive(-d)
                    let invf2 = 1 / (r2 + pb * ex)
                    let qj = t.charge.lanes(at: j0)
                    let qq = zero.replacing(with: pre * qj + (preLow * qj + pre * t.chargeLow.lanes(at: j0)), where: valid)
                    let gpol = qq * invf2.squareRoot()
                    ae += gpol
                    let dGdr = -gpol * (1 - 0.25 * ex) * invf2
                    let dGdp = -0.5 * gpol * ex * (1 + d) * invf2
                    aBorn += dGdp * bj
                    m.bornForce.addLanes(dGdp * bi, at: j0)
                    ax += dGdr * dx; ay += dGdr * dy; az += dGdr * dz
                    m.gx.addLanes(-dGdr * dx, at: j0); m.gy.addLanes(-dGdr * dy, at: j0); m.gz.addLanes(-dGdr * dz, at: j0)
                    j0 += 8
                    j &+= 8
                }
                energy += wideSum(ae)
            }
            w.bornForce[i] += wideSum(aBorn)
            w.gx[i] += wideSum(ax); w.gy[i] += wideSum(ay); w.gz[i] += wideSum(az)
            done += 1
            if done % AmberEnergy.mixedFlushRows == 0 {
                let rest = (i + 1)..<n
                AmberEnergy.flush(m.gx, into: w.gx, rest); AmberEnergy.flush(m.gy, into: w.gy, rest)
                AmberEnergy.flush(m.gz, into: w.gz, rest); AmberEnergy.flush(m.bornForce, into: w.bornForce, rest)
            }
        }
        AmberEnergy.flush(m.gx, into: w.gx, 0..<n); AmberEnergy.flush(m.gy, into: w.gy, 0..<n)
        AmberEnergy.flush(m.gz, into: w.gz, 0..<n); AmberEnergy.flush(m.bornForce, into: w.bornForce, 0..<n)
        return energy
    }

    /// Pass 3 (chain rule through the Born radii; `p.factor` holds ∂E/∂B · ∂B/∂I) over the
    /// rows first, first + step, …, the Born-term derivatives from pass 1 (`derivatives`) or
    /// computed again.
    private func mixedPass3(_ p: MixedScratch, _ m: MixedScratch, _ w: Scratch, first: Int, step: Int,
                            derivatives: UnsafeMutableRawPointer?) {
        let t = mixedTables!
        for g in [m.gx, m.gy, m.gz] { g.update(repeating: 0, count: t.stride) }
        let lane = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7), nv = SIMD8<Int32>(repeating: Int32(n))
        let zero = F8(repeating: 0), one = F8(repeating: 1)
        let engulf = engulfCorrection
        var done = 0
        var cursor = 0
        for i in Swift.stride(from: first, to: n, by: step) {
            let xi = F8(repeating: p.x[i]), yi = F8(repeating: p.y[i]), zi = F8(repeating: p.z[i])
            let lxi = F8(repeating: p.lx[i]), lyi = F8(repeating: p.ly[i]), lzi = F8(repeating: p.lz[i])
            let rhoI = F8(repeating: t.rho[i]), srI = F8(repeating: t.sr[i]), factorI = F8(repeating: p.factor[i])
            let iv = SIMD8<Int32>(repeating: Int32(i))
            var ax = zero, ay = zero, az = zero
            var j0 = (i + 1) & ~7
            var j = lane &+ Int32(j0)
            while j0 < n {
                let valid = (j .> iv) .& (j .< nv)
                let dx = (xi - p.x.lanes(at: j0)) + (lxi - p.lx.lanes(at: j0))
                let dy = (yi - p.y.lanes(at: j0)) + (lyi - p.ly.lanes(at: j0))
                let dz = (zi - p.z.lanes(at: j0)) + (lzi - p.lz.lanes(at: j0))
                let r2 = one.replacing(with: dx * dx + dy * dy + dz * dz, where: valid)
                let invr = (1 / r2).squareRoot()
                let dij: F8, dji: F8
                if let derivatives {
                    dij = derivatives.loadUnaligned(fromByteOffset: cursor, as: F8.self)
                    dji = derivatives.loadUnaligned(fromByteOffset: cursor + 32, as: F8.self)
                    cursor += 64
                } else {
                    let r = r2 * invr
                    dij = AmberEnergy.bornF(r, invr, rhoI, t.sr.lanes(at: j0), valid, engulf).1
                    dji = AmberEnergy.bornF(r, invr, t.rho.lanes(at: j0), srI, valid, engulf).1
                }
                let sc = (factorI * dij + p.factor.lanes(at: j0) * dji) * invr
                ax += sc * dx; ay += sc * dy; az += sc * dz
                m.gx.addLanes(-sc * dx, at: j0); m.gy.addLanes(-sc * dy, at: j0); m.gz.addLanes(-sc * dz, at: j0)
                j0 += 8
                j &+= 8
            }
            w.gx[i] += wideSum(ax); w.gy[i] += wideSum(ay); w.gz[i] += wideSum(az)
            done += 1
            if done % AmberEnergy.mixedFlushRows == 0 {
                let rest = (i + 1)..<n
                AmberEnergy.flush(m.gx, into: w.gx, rest); AmberEnergy.flush(m.gy, into: w.gy, rest)
                AmberEnergy.flush(m.gz, into: w.gz, rest)
            }
        }
        AmberEnergy.flush(m.gx, into: w.gx, 0..<n); AmberEnergy.flush(m.gy, into: w.gy, 0..<n)
        AmberEnergy.flush(m.gz, into: w.gz, 0..<n)
    }

    /// `bornV` on eight float lanes: the OBC Born integral terms of atoms with offset radii
    /// `rho` from atoms with scaled radii `s` at distances `r`, and their r-derivatives; zero
    /// where `valid` is false.
    @_transparent
    static func bornF(_ r: F8, _ invr: F8, _ rho: F8, _ s: F8, _ valid: M8, _ engulf: Bool) -> (F8, F8) {
        let u = r + s
        let active = valid .& (rho .< u)
        let d = r - s
        let absD = d.replacing(with: -d, where: d .< 0)
        let l = rho.replacing(with: absD, where: rho .< absD)
        let invLU = 1 / (l * u)
        let invL = u * invLU, invU = l * invLU
        let invL2 = invL * invL, invU2 = invU * invU
        let ratio = F8(repeating: 1).replacing(with: l * invU, where: active)
        let logLU = vlogf(ratio)
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
        let zero = F8(repeating: 0)
        return (zero.replacing(with: term, where: active), zero.replacing(with: dterm, where: active))
    }
}

/// Whether `mixedPass1` sums the Born integrals (a type, so each case is compiled apart).
protocol MixedPass1Kind { static var gb: Bool { get } }
enum WithBornIntegrals: MixedPass1Kind { static var gb: Bool { true } }
enum WithoutBornIntegrals: MixedPass1Kind { static var gb: Bool { false } }

extension UnsafeMutablePointer where Pointee == Float {
    /// The eight floats from index `j` (unaligned).
    @inline(__always) func lanes(at j: Int) -> F8 { UnsafeRawPointer(self + j).loadUnaligned(as: F8.self) }
    /// Adds `v` to the eight floats from index `j` (unaligned).
    @inline(__always) func addLanes(_ v: F8, at j: Int) {
        let r = UnsafeMutableRawPointer(self + j)
        r.storeBytes(of: r.loadUnaligned(as: F8.self) + v, as: F8.self)
    }
}
