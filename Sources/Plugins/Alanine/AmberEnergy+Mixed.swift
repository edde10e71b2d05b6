import Foundation

/// Eight floats (one AVX2 register with -target-cpu haswell).
typealias F8 = SIMD8<Float>

/// The sum of eight floats' lanes in double (each half widened to four doubles).
@inline(__always)
func wideSum(_ v: F8) -> Double {
    (SIMD4<Double>(v.lowHalf) + SIMD4<Double>(v.highHalf)).sum()
}

/// Single-precision tables of the mixed-precision pair kernel (`precision=mixed`), built once
/// per system: each per-atom table padded to `stride` = n rounded up to 8, plus 8.
final class MixedTables {
    let stride: Int
    /// Charges (e) as a high part Float(q) and a low part Float(q − Float(q)): the Coulomb
    /// sums cancel to a few per cent of their terms, so the charges keep ~2⁻⁴⁸ of the doubles.
    let charge, chargeLow: UnsafeMutablePointer<Float>
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
        let byAtom = { (p: UnsafeMutablePointer<Double>) in
            table(e.ljTypeCount * stride) { k in k % stride < e.n ? p[k / stride * e.stride + k % stride] : 0 }
        }
        ljA = byAtom(e.ljAByAtom)
        ljB = byAtom(e.ljBByAtom)
    }

    deinit { for p in [charge, chargeLow, ljA, ljB] { p.deallocate() } }
}

/// One scratch's single-precision buffers (`MixedTables.stride` each): positions about the
/// centroid as high and low parts (the configuration's scratch), float gradient
/// accumulators of the partners j (moved into the scratch's double gradient every
/// `AmberEnergy.mixedFlushRows` rows) and the 1/0 exclusion switches (every worker's own).
final class MixedScratch {
    let x, y, z, lx, ly, lz, gx, gy, gz, keep: UnsafeMutablePointer<Float>

    init(stride: Int) {
        func buffer(_ value: Float) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: stride)
            p.initialize(repeating: value, count: stride)
            return p
        }
        (x, y, z, lx, ly, lz) = (buffer(0), buffer(0), buffer(0), buffer(0), buffer(0), buffer(0))
        (gx, gy, gz, keep) = (buffer(0), buffer(0), buffer(0), buffer(1))
    }

    deinit { for p in [x, y, z, lx, ly, lz, gx, gy, gz, keep] { p.deallocate() } }
}

extension AmberEnergy {
    /// Arithmetic of the non-bonded pair terms: double throughout (the default), or
    /// single precision on 8 lanes with each row's sums in double (`mixed`, as OpenMM's CPU
    /// platform computes them).
    enum Precision: String, CaseIterable { case double, mixed }

    /// Why `precision=mixed` cannot run with these settings, or nil when it can: it is
    /// implemented for vacuum without a cutoff and the SIMD kernel.
    static func mixedUnsupported(solvent: Solvent, cutoff: Cutoff?, kernel: Kernel) -> String? {
        var missing: [String] = []
        if solvent != .vacuum { missing.append("solvent=\(solvent.rawValue)") }
        if cutoff != nil { missing.append("cutoff=") }
        if kernel != .simd { missing.append("kernel=\(kernel.rawValue)") }
        guard !missing.isEmpty else { return nil }
        return "precision=mixed is implemented for solvent=vacuum without cutoff= and with kernel=simd only, not with "
            + missing.joined(separator: ", ") + "; use precision=double"
    }

    /// Rows of one worker between moves of its float partner gradients into double.
    static let mixedFlushRows = 32

    /// The scratch's float buffers, made on first use.
    func mixedBuffers(_ s: Scratch) -> MixedScratch {
        if let m = s.mixedBuffers { return m }
        let m = MixedScratch(stride: mixedTables!.stride)
        s.mixedBuffers = m
        return m
    }

    /// Loads the configuration in `s` (after `prepare`) into its float positions: about the
    /// centroid, high and low parts, so that float differences keep ~2⁻⁴⁸ of the double ones.
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

    /// LJ + Coulomb of one configuration in mixed precision (vacuum, no cutoff): the same sums
    /// as `simdPairEnergy` to ~1e-6 relative.
    func mixedPairEnergy(_ s: Scratch) -> Double {
        let m = loadMixedPositions(s)
        return mixedRows(positions: m, own: m, into: s, first: 0, step: 1)
    }

    /// The same split over `workers.count` threads as `simdPairEnergy(workers:gradients:)`:
    /// worker t takes rows t, t + T, …; partial sums added in worker order (the same bits for
    /// the same worker count). `workers[0]` holds the configuration.
    func mixedPairEnergy(workers: [Scratch]) -> Double {
        let s = workers[0], count = workers.count
        let p = loadMixedPositions(s)
        DispatchQueue.concurrentPerform(iterations: count) { t in
            let w = workers[t]
            if t > 0 { for g in [w.gx, w.gy, w.gz] { g.update(repeating: 0, count: stride) } }
            let e = mixedRows(positions: p, own: mixedBuffers(w), into: w, first: t, step: count)
            w.pairEnergy = V4(e, 0, 0, 0)
        }
        for w in workers.dropFirst() {
            for i in 0..<n { s.gx[i] += w.gx[i]; s.gy[i] += w.gy[i]; s.gz[i] += w.gz[i] }
        }
        var energy = 0.0
        for w in workers { energy += w.pairEnergy[0] }
        return energy
    }

    /// LJ + Coulomb over the rows first, first + step, … of the runs of j > i, 8 float lanes
    /// (float charges and LJ coefficients, as OpenMM's CPU platform): positions from `p`, float partner gradients and exclusion switches in `m`, row sums
    /// and gradients added in double into `w`. Returns the energy.
    private func mixedRows(positions p: MixedScratch, own m: MixedScratch, into w: Scratch,
                           first: Int, step: Int) -> Double {
        let t = mixedTables!
        let fStride = t.stride
        for g in [m.gx, m.gy, m.gz] { g.update(repeating: 0, count: fStride) }
        /// Moves the float partner gradients of atoms `range` into `w`'s doubles.
        func flush(_ range: Range<Int>) {
            for a in range {
                w.gx[a] += Double(m.gx[a]); w.gy[a] += Double(m.gy[a]); w.gz[a] += Double(m.gz[a])
                m.gx[a] = 0; m.gy[a] = 0; m.gz[a] = 0
            }
        }
        let lane = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7), nv = SIMD8<Int32>(repeating: Int32(n))
        let zero = F8(repeating: 0), one = F8(repeating: 1)
        var energy = 0.0
        var done = 0
        for i in Swift.stride(from: first, to: n, by: step) {
            let skip = Int(partnerStart[i])..<Int(partnerStart[i + 1])
            for q in skip { m.keep[Int(partners[q])] = 0 }
            let xi = F8(repeating: p.x[i]), yi = F8(repeating: p.y[i]), zi = F8(repeating: p.z[i])
            let lxi = F8(repeating: p.lx[i]), lyi = F8(repeating: p.ly[i]), lzi = F8(repeating: p.lz[i])
            let kqDouble = coulomb * charge[i]
            let kq = F8(repeating: Float(kqDouble)), kqLow = F8(repeating: Float(kqDouble - Double(Float(kqDouble))))
            let row = Int(ljType[i]) * fStride
            let ljA = t.ljA + row, ljB = t.ljB + row
            let iv = SIMD8<Int32>(repeating: Int32(i))
            var ax = zero, ay = zero, az = zero
            var j0 = (i + 1) & ~7
            var j = lane &+ Int32(j0)
            while j0 < n {
                // Energy lanes go to double every 16 chunks.
                let end = min(j0 + 128, n)
                var ae = zero
                while j0 < end {
                    @inline(__always) func load(_ q: UnsafeMutablePointer<Float>) -> F8 {
                        UnsafeRawPointer(q + j0).loadUnaligned(as: F8.self)
                    }
                    @inline(__always) func subtract(_ v: F8, from q: UnsafeMutablePointer<Float>) {
                        let r = UnsafeMutableRawPointer(q + j0)
                        r.storeBytes(of: r.loadUnaligned(as: F8.self) - v, as: F8.self)
                    }
                    let valid = (j .> iv) .& (j .< nv)
                    let dx = (xi - load(p.x)) + (lxi - load(p.lx))
                    let dy = (yi - load(p.y)) + (lyi - load(p.ly))
                    let dz = (zi - load(p.z)) + (lzi - load(p.lz))
                    let r2 = one.replacing(with: dx * dx + dy * dy + dz * dz, where: valid)
                    let inv2 = 1 / r2
                    let invr = inv2.squareRoot()
                    let inv6 = inv2 * inv2 * inv2
                    let on = zero.replacing(with: load(m.keep), where: valid)
                    let t12 = on * inv6 * inv6, t6 = on * inv6
                    let lj12 = load(ljA) * t12, lj6 = load(ljB) * t6
                    let qj = on * load(t.charge), qjLow = on * load(t.chargeLow)
                    let eq = (kq * qj + (kqLow * qj + kq * qjLow)) * invr
                    ae += lj12 - lj6 + eq
                    let sc = (-12 * lj12 + 6 * lj6 - eq) * inv2
                    ax += sc * dx; ay += sc * dy; az += sc * dz
                    subtract(sc * dx, from: m.gx); subtract(sc * dy, from: m.gy); subtract(sc * dz, from: m.gz)
                    j0 += 8
                    j &+= 8
                }
                energy += wideSum(ae)
            }
            for q in skip { m.keep[Int(partners[q])] = 1 }
            w.gx[i] += wideSum(ax); w.gy[i] += wideSum(ay); w.gz[i] += wideSum(az)
            done += 1
            // Rows after i touch only partners j > i.
            if done % AmberEnergy.mixedFlushRows == 0 { flush((i + 1)..<n) }
        }
        flush(0..<n)
        return energy
    }
}
