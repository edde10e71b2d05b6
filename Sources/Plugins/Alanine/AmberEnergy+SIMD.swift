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
    // Double(k) without a per-lane conversion (AVX2 has none for 64-bit integers): add k to
    // the bits of 1.5·2⁵², whose low bits then hold it, and subtract 1.5·2⁵² (|k| < 2⁵¹).
    let magic = V4(repeating: 0x1.8p52)
    let dk = unsafeBitCast(unsafeBitCast(magic, to: SIMD4<Int64>.self) &+ k, to: V4.self) - magic
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

    /// LJ + Coulomb (+ GB) pair terms with SIMD4 over partners j: the same sums as
    /// `scalarPairEnergy`. Without a cutoff the partners of atom i are the aligned runs of
    /// j > i (contiguous loads); with one, atom i's neighbour row (gathered loads).
    func simdPairEnergy(_ s: Scratch, gradients: Bool) -> Double {
        let gb = solvent != .vacuum
        var energy = V4(repeating: 0)
        var scalarEnergy = 0.0
        // Pass 1 keeps the Born terms' r-derivatives for pass 3 when they fit (4 lanes × 2 per
        // chunk); else pass 3 computes them again.
        let lanes = pairLanes(s, rows: s, first: 0, step: 1)
        let keepDerivatives = keepsDerivatives(lanes: lanes, workers: 1, gradients: gradients)
        if keepDerivatives { s.reserveDerivatives(2 * lanes) }
        let k = PairTables(self, shared: s, own: s, derivatives: keepDerivatives ? s.derivatives : nil)
        pass1Rows(k, s, s, rows: s, first: 0, step: 1, gb: gb, &energy)
        if gb {
            scalarEnergy += bornRadii(integral: s.integral, rho: rho, radius: radius, charge: charge, ace: aceFactor,
                                      born: s.born, dBorn: s.dBorn, bornForce: s.bornForce)
            pass2Rows(k, s, s, rows: s, first: 0, step: 1, &energy)
            if gradients {
                chainRuleFactors(s)
                pass3Rows(k, s, s, rows: s, first: 0, step: 1)
            }
        }
        return energy.sum() + scalarEnergy
    }

    /// The same sums as `simdPairEnergy` for one configuration, its pairs split over
    /// `workers.count` threads, each accumulating into its own scratch; `workers[0]` holds the
    /// configuration (positions, cell list, Born radii) and receives the sums. Without
    /// neighbour rows worker t takes the rows of atoms t, t + T, t + 2T, … (interleaved, so
    /// the triangular runs give each nearly the same number of pairs); with them, it builds
    /// and walks the rows of a contiguous share of the cells holding about n/T atoms. Between
    /// the passes, and at the end, the partial sums are added in worker order, so the result
    /// is the same bits for the same worker count (and one worker's numbers to rounding).
    /// `prepare(_:_:rows: false)` must have loaded the configuration into `workers[0]`.
    func simdPairEnergy(workers: [Scratch], gradients: Bool) -> Double {
        let s = workers[0], count = workers.count
        let gb = solvent != .vacuum
        let zeroLength = stride
        let rowsSplit = s.usesList
        /// Worker t's rows: its own neighbour rows, or every count-th row of the runs.
        func share(_ t: Int) -> (rows: Scratch, first: Int, step: Int) {
            rowsSplit ? (workers[t], 0, 1) : (s, t, count)
        }
        DispatchQueue.concurrentPerform(iterations: count) { t in
            let w = workers[t]
            if t > 0 {
                for p in [w.gx, w.gy, w.gz, w.integral, w.bornForce] { p.update(repeating: 0, count: zeroLength) }
            }
            if rowsSplit, let cutoff {
                buildRows(from: s, into: w, cells: cellShare(s, worker: t, of: count), cutoff: cutoff.distance)
            }
            let (rows, first, step) = share(t)
            let lanes = pairLanes(s, rows: rows, first: first, step: step)
            w.keepsDerivatives = keepsDerivatives(lanes: lanes, workers: count, gradients: gradients)
            if w.keepsDerivatives { w.reserveDerivatives(2 * lanes) }
            w.pairEnergy = V4(repeating: 0)
            let k = PairTables(self, shared: s, own: w, derivatives: w.keepsDerivatives ? w.derivatives : nil)
            pass1Rows(k, s, w, rows: rows, first: first, step: step, gb: gb, &w.pairEnergy)
        }
        var scalarEnergy = 0.0
        if gb {
            for w in workers.dropFirst() { for i in 0..<n { s.integral[i] += w.integral[i] } }
            scalarEnergy += bornRadii(integral: s.integral, rho: rho, radius: radius, charge: charge, ace: aceFactor,
                                      born: s.born, dBorn: s.dBorn, bornForce: s.bornForce)
            DispatchQueue.concurrentPerform(iterations: count) { t in
                let w = workers[t]
                let (rows, first, step) = share(t)
                let k = PairTables(self, shared: s, own: w, derivatives: nil)
                pass2Rows(k, s, w, rows: rows, first: first, step: step, &w.pairEnergy)
            }
            if gradients {
                for w in workers.dropFirst() { for i in 0..<n { s.bornForce[i] += w.bornForce[i] } }
                chainRuleFactors(s)
                DispatchQueue.concurrentPerform(iterations: count) { t in
                    let w = workers[t]
                    let (rows, first, step) = share(t)
                    let k = PairTables(self, shared: s, own: w, derivatives: w.keepsDerivatives ? w.derivatives : nil)
                    pass3Rows(k, s, w, rows: rows, first: first, step: step)
                }
            }
        }
        for w in workers.dropFirst() {
            for i in 0..<n { s.gx[i] += w.gx[i]; s.gy[i] += w.gy[i]; s.gz[i] += w.gz[i] }
        }
        var energy = 0.0
        for w in workers { energy += w.pairEnergy.sum() }
        return energy + scalarEnergy
    }

    /// Whether pass 1 keeps a worker's Born-term derivatives for pass 3: GB with gradients,
    /// and every worker's share of `lanes` lanes (two derivatives each) fits in
    /// `derivativeCapacity` together; keeping them or not gives the same numbers.
    private func keepsDerivatives(lanes: Int, workers: Int, gradients: Bool) -> Bool {
        solvent != .vacuum && gradients && 2 * lanes * workers <= AmberEnergy.derivativeCapacity
    }

    /// Lanes (4 per chunk) of the rows first, first + step, … (of the runs, or of `r`'s
    /// neighbour rows): pass 1 keeps two derivatives each.
    private func pairLanes(_ s: Scratch, rows r: Scratch, first: Int, step: Int) -> Int {
        var lanes = 0
        if !s.usesList {
            for i in Swift.stride(from: first, to: n, by: step) { lanes += (n - ((i + 1) & ~3) + 3) / 4 * 4 }
        } else {
            for q in Swift.stride(from: first, to: r.rowCount, by: step) {
                lanes += Int(r.rowStart[q + 1] - r.rowStart[q])
            }
        }
        return lanes
    }

    /// ∂E/∂B · ∂B/∂I into `bornForce` for pass 3 (padding zero).
    func chainRuleFactors(_ s: Scratch) {
        for i in 0..<n { s.bornForce[i] *= s.dBorn[i] }
        for i in n..<stride { s.bornForce[i] = 0 }
    }

    /// Pass 1 (LJ + Coulomb, Born integrals) over the rows first, first + step, … (of the
    /// runs, or of `o`'s neighbour rows) of the configuration in `s`, accumulated into `w`
    /// (`k` reads `s` and writes `w`).
    @inline(__always)
    private func pass1Rows(_ k: PairTables, _ s: Scratch, _ w: Scratch, rows o: Scratch, first: Int, step: Int,
                           gb: Bool, _ energy: inout V4) {
        let rows = !s.usesList ? n : o.rowCount
        o.list.withUnsafeBufferPointer { listBuffer in
            let list = listBuffer.baseAddress
            var cursor = 0
            for r in Swift.stride(from: first, to: rows, by: step) {
                let i = !s.usesList ? r : Int(o.rowAtom[r])
                let skip = Int(partnerStart[i])..<Int(partnerStart[i + 1])
                for q in skip { w.keep[Int(partners[q])] = 0 }
                var a = Pass1Atom(k, i)
                if !s.usesList {
                    var j0 = (i + 1) & ~3
                    while j0 < n { k.pass1(PairLanes(run: j0, i: i, n: n), &a, &energy, gb: gb, &cursor); j0 += 4 }
                } else {
                    var q = Int(o.rowStart[r])
                    let end = Int(o.rowStart[r + 1])
                    while q < end { k.pass1(PairLanes(gather: list! + q, n: n), &a, &energy, gb: gb, &cursor); q += 4 }
                }
                for q in skip { w.keep[Int(partners[q])] = 1 }
                w.gx[i] += a.gx.sum(); w.gy[i] += a.gy.sum(); w.gz[i] += a.gz.sum()
                if gb { w.integral[i] += a.integral.sum() }
            }
        }
    }

    /// Pass 2 (GB pair terms) over the rows first, first + step, …, accumulated into `w`.
    @inline(__always)
    private func pass2Rows(_ k: PairTables, _ s: Scratch, _ w: Scratch, rows o: Scratch, first: Int, step: Int,
                           _ energy: inout V4) {
        let rows = !s.usesList ? n : o.rowCount
        o.list.withUnsafeBufferPointer { listBuffer in
            let list = listBuffer.baseAddress
            for r in Swift.stride(from: first, to: rows, by: step) {
                let i = !s.usesList ? r : Int(o.rowAtom[r])
                var a = GBAtom(k, i, bornForce: 0)
                if !s.usesList {
                    var j0 = (i + 1) & ~3
                    while j0 < n { k.pass2(PairLanes(run: j0, i: i, n: n), &a, &energy); j0 += 4 }
                } else {
                    var q = Int(o.rowStart[r])
                    let end = Int(o.rowStart[r + 1])
                    while q < end { k.pass2(PairLanes(gather: list! + q, n: n), &a, &energy); q += 4 }
                }
                w.bornForce[i] += a.bornForce.sum()
                w.gx[i] += a.gx.sum(); w.gy[i] += a.gy.sum(); w.gz[i] += a.gz.sum()
            }
        }
    }

    /// Pass 3 (chain rule through the Born radii) over the rows first, first + step, …,
    /// accumulated into `w`.
    @inline(__always)
    private func pass3Rows(_ k: PairTables, _ s: Scratch, _ w: Scratch, rows o: Scratch, first: Int, step: Int) {
        let rows = !s.usesList ? n : o.rowCount
        o.list.withUnsafeBufferPointer { listBuffer in
            let list = listBuffer.baseAddress
            var cursor = 0
            for r in Swift.stride(from: first, to: rows, by: step) {
                let i = !s.usesList ? r : Int(o.rowAtom[r])
                var a = GBAtom(k, i, bornForce: k.bornForce[i])
                if !s.usesList {
                    var j0 = (i + 1) & ~3
                    while j0 < n { k.pass3(PairLanes(run: j0, i: i, n: n), &a, &cursor); j0 += 4 }
                } else {
                    var q = Int(o.rowStart[r])
                    let end = Int(o.rowStart[r + 1])
                    while q < end { k.pass3(PairLanes(gather: list! + q, n: n), &a, &cursor); q += 4 }
                }
                w.gx[i] += a.gx.sum(); w.gy[i] += a.gy.sum(); w.gz[i] += a.gz.sum()
            }
        }
    }
}

/// Four partners j: a contiguous run (vector loads and stores) or four gathered indices.
struct PairLanes {
    let j0: Int, j1: Int, j2: Int, j3: Int
    let contiguous: Bool
    /// Lanes that are real pairs.
    let valid: SIMDMask<SIMD4<Int64>>

    @inline(__always)
    init(run j0: Int, i: Int, n: Int) {
        (self.j0, j1, j2, j3) = (j0, j0 + 1, j0 + 2, j0 + 3)
        contiguous = true
        valid = AmberEnergy.laneMask(j0, i, n)
    }
    @inline(__always)
    init(gather p: UnsafePointer<Int32>, n: Int) {
        (j0, j1, j2, j3) = (Int(p[0]), Int(p[1]), Int(p[2]), Int(p[3]))
        contiguous = false
        valid = SIMD4<Int64>(Int64(j0), Int64(j1), Int64(j2), Int64(j3)) .< SIMD4(repeating: Int64(n))
    }
    @inline(__always)
    func load(_ p: UnsafePointer<Double>) -> V4 {
        contiguous ? UnsafeRawPointer(p + j0).loadUnaligned(as: V4.self) : V4(p[j0], p[j1], p[j2], p[j3])
    }
    @inline(__always)
    func load(_ p: UnsafeMutablePointer<Double>) -> V4 { load(UnsafePointer(p)) }
    /// p[j] += v on every lane (padding lanes carry zeros).
    @inline(__always)
    func add(_ v: V4, to p: UnsafeMutablePointer<Double>) {
        if contiguous {
            let q = UnsafeMutableRawPointer(p + j0)
            q.storeBytes(of: q.loadUnaligned(as: V4.self) + v, as: V4.self)
        } else {
            p[j0] += v[0]; p[j1] += v[1]; p[j2] += v[2]; p[j3] += v[3]
        }
    }
}

/// Atom i's broadcast values and its accumulators in pass 1.
struct Pass1Atom {
    let x, y, z, kq, rho, sr: V4
    let ljA, ljB: UnsafePointer<Double>
    var gx = V4(repeating: 0), gy = V4(repeating: 0), gz = V4(repeating: 0), integral = V4(repeating: 0)
    @inline(__always)
    init(_ k: PairTables, _ i: Int) {
        x = V4(repeating: k.x[i]); y = V4(repeating: k.y[i]); z = V4(repeating: k.z[i])
        kq = V4(repeating: k.coulomb * k.charge[i])
        rho = V4(repeating: k.rho[i]); sr = V4(repeating: k.sr[i])
        let row = Int(k.type[i]) * k.stride
        ljA = k.ljAByAtom + row; ljB = k.ljBByAtom + row
    }
}

/// Atom i's broadcast values and its accumulators in passes 2 and 3.
struct GBAtom {
    let x, y, z, qPre, born, bornForce0, rho, sr: V4
    var gx = V4(repeating: 0), gy = V4(repeating: 0), gz = V4(repeating: 0), bornForce = V4(repeating: 0)
    /// `bornForce`: atom i's ∂E/∂B · ∂B/∂I in pass 3 (unused in pass 2).
    @inline(__always)
    init(_ k: PairTables, _ i: Int, bornForce: Double) {
        x = V4(repeating: k.x[i]); y = V4(repeating: k.y[i]); z = V4(repeating: k.z[i])
        qPre = V4(repeating: k.gbPrefactor * k.charge[i]); born = V4(repeating: k.born[i])
        bornForce0 = V4(repeating: bornForce)
        rho = V4(repeating: k.rho[i]); sr = V4(repeating: k.sr[i])
    }
}

/// The raw tables one evaluation reads and writes, and the three pair passes on four lanes:
/// positions, Born radii and the pass-3 Born factors of the configuration (the shared
/// scratch), and one worker's accumulators (gradient, Born integrals, pass-2 ∂E/∂B) and
/// exclusion switches (its own scratch; the same one without threads).
struct PairTables {
    let x, y, z, born, bornForce: UnsafeMutablePointer<Double>
    let gx, gy, gz, integral, bornForceSum, keep: UnsafeMutablePointer<Double>
    let charge, rho, sr, ljAByAtom, ljBByAtom: UnsafePointer<Double>
    let stride: Int
    let type: UnsafePointer<Int32>
    let typeCount: Int
    let coulomb, gbPrefactor, kRF, cRF, gbShift: Double
    /// Whether Coulomb carries the reaction-field terms (a cutoff).
    let reactionField: Bool
    /// r² beyond which a lane is not a pair: r_c² on runs with a cutoff, else +∞.
    let limit2: Double
    let engulf: Bool
    /// Born-term r-derivatives (j ← i and i ← j, 4 lanes each per chunk) kept from pass 1, or nil.
    let derivatives: UnsafeMutablePointer<Double>?

    init(_ e: AmberEnergy, shared s: AmberEnergy.Scratch, own w: AmberEnergy.Scratch,
         derivatives: UnsafeMutablePointer<Double>?) {
        self.derivatives = derivatives
        (x, y, z, born, bornForce) = (s.x, s.y, s.z, s.born, s.bornForce)
        (gx, gy, gz, integral, bornForceSum, keep) = (w.gx, w.gy, w.gz, w.integral, w.bornForce, w.keep)
        (charge, rho, sr) = (UnsafePointer(e.charge), UnsafePointer(e.rho), UnsafePointer(e.scaledRadius))
        (ljAByAtom, ljBByAtom) = (UnsafePointer(e.ljAByAtom), UnsafePointer(e.ljBByAtom))
        stride = e.stride
        type = UnsafePointer(e.ljType)
        typeCount = e.ljTypeCount
        coulomb = e.coulomb
        gbPrefactor = e.gbPrefactor
        (kRF, cRF) = e.cutoff.map { ($0.kRF, $0.cRF) } ?? (0, 0)
        reactionField = e.cutoff != nil
        gbShift = e.cutoff.map { 1 / $0.distance } ?? 0
        // Runs of j > i with a cutoff drop pairs beyond it per lane; neighbour rows hold none.
        limit2 = s.usesList ? .infinity : e.cutoff.map { $0.distance * $0.distance } ?? .infinity
        engulf = e.engulfCorrection
    }

    /// LJ + Coulomb (reaction field with a cutoff) on kept lanes, Born integral terms on all.
    @inline(__always)
    func pass1(_ l: PairLanes, _ a: inout Pass1Atom, _ energy: inout V4, gb: Bool, _ cursor: inout Int) {
        let one = V4(repeating: 1), zero = V4(repeating: 0)
        let dx = a.x - l.load(x), dy = a.y - l.load(y), dz = a.z - l.load(z)
        let r2Raw = dx * dx + dy * dy + dz * dz
        let valid = l.valid .& (r2Raw .< V4(repeating: limit2))
        let r2 = one.replacing(with: r2Raw, where: valid)
        let inv2 = 1 / r2
        let invr = inv2.squareRoot()
        let inv6 = inv2 * inv2 * inv2
        let on = zero.replacing(with: l.load(keep), where: valid)
        let lj12 = on * l.load(a.ljA) * inv6 * inv6, lj6 = on * l.load(a.ljB) * inv6
        let qq = on * a.kq * l.load(charge)
        let coulomb = reactionField ? invr + kRF * r2 - cRF : invr
        energy += lj12 - lj6 + qq * coulomb
        let s = (-12 * lj12 + 6 * lj6) * inv2 + qq * (reactionField ? 2 * kRF - invr * inv2 : -invr * inv2)
        a.gx += s * dx; a.gy += s * dy; a.gz += s * dz
        l.add(-s * dx, to: gx); l.add(-s * dy, to: gy); l.add(-s * dz, to: gz)
        if gb {
            let r = r2 * invr
            let (tij, dij) = AmberEnergy.bornV(r, invr, a.rho, l.load(sr), valid, engulf)
            let (tji, dji) = AmberEnergy.bornV(r, invr, l.load(rho), a.sr, valid, engulf)
            a.integral += tij
            l.add(tji, to: integral)
            if let d = derivatives {
                UnsafeMutableRawPointer(d + cursor).storeBytes(of: dij, as: V4.self)
                UnsafeMutableRawPointer(d + cursor + 4).storeBytes(of: dji, as: V4.self)
                cursor += 8
            }
        }
    }

    /// GB pair terms: energy, ∂E/∂B into the Born forces, the direct gradient.
    @inline(__always)
    func pass2(_ l: PairLanes, _ a: inout GBAtom, _ energy: inout V4) {
        let zero = V4(repeating: 0)
        let dx = a.x - l.load(x), dy = a.y - l.load(y), dz = a.z - l.load(z)
        let r2 = dx * dx + dy * dy + dz * dz
        let bj = l.load(born)
        let p = a.born * bj
        let d = r2 / (4 * p)
        let ex = vexpNonPositive(-d)
        let invf2 = 1 / (r2 + p * ex)
        let qq = zero.replacing(with: a.qPre * l.load(charge), where: l.valid .& (r2 .< V4(repeating: limit2)))
        let gpol = qq * invf2.squareRoot()
        energy += gpol - qq * gbShift
        let dGdr = -gpol * (1 - 0.25 * ex) * invf2       // (∂G/∂r)/r
        let dGdp = -0.5 * gpol * ex * (1 + d) * invf2
        a.bornForce += dGdp * bj
        l.add(dGdp * a.born, to: bornForceSum)
        a.gx += dGdr * dx; a.gy += dGdr * dy; a.gz += dGdr * dz
        l.add(-dGdr * dx, to: gx); l.add(-dGdr * dy, to: gy); l.add(-dGdr * dz, to: gz)
    }

    /// Chain rule through the Born radii (bornForce already holds ∂E/∂B · ∂B/∂I).
    @inline(__always)
    func pass3(_ l: PairLanes, _ a: inout GBAtom, _ cursor: inout Int) {
        let one = V4(repeating: 1)
        let dx = a.x - l.load(x), dy = a.y - l.load(y), dz = a.z - l.load(z)
        let r2Raw = dx * dx + dy * dy + dz * dz
        let valid = l.valid .& (r2Raw .< V4(repeating: limit2))
        let r2 = one.replacing(with: r2Raw, where: valid)
        let invr = (1 / r2).squareRoot()
        let dij: V4, dji: V4
        if let d = derivatives {
            dij = UnsafeRawPointer(d + cursor).loadUnaligned(as: V4.self)
            dji = UnsafeRawPointer(d + cursor + 4).loadUnaligned(as: V4.self)
            cursor += 8
        } else {
            let r = r2 * invr
            dij = AmberEnergy.bornV(r, invr, a.rho, l.load(sr), valid, engulf).1
            dji = AmberEnergy.bornV(r, invr, l.load(rho), a.sr, valid, engulf).1
        }
        let s = (a.bornForce0 * dij + l.load(bornForce) * dji) * invr
        a.gx += s * dx; a.gy += s * dy; a.gz += s * dz
        l.add(-s * dx, to: gx); l.add(-s * dy, to: gy); l.add(-s * dz, to: gz)
    }
}
