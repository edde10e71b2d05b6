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
    /// 1-4 pairs (scaled LJ and Coulomb, never cut off), computed apart from the pair loops.
    let oneFour: [AmberTopology.Pair]
    let engulfCorrection: Bool
    let alpha: Double, beta: Double, gamma: Double
    let gbPrefactor: Double

    /// Pair kernel: portable scalar loops, or SIMD4 over j (the default; same numbers to rounding).
    enum Kernel: String, CaseIterable { case simd, scalar }
    let kernel: Kernel
    /// Arithmetic of the pair terms (see `Precision`).
    let precision: Precision
    /// Single-precision tables (`precision=mixed` only).
    private(set) var mixedTables: MixedTables?

    /// The non-bonded cutoff, as OpenMM's `CutoffNonPeriodic` computes it: every pair term
    /// (LJ, Coulomb, the GB Born integrals and GB pair terms) is dropped at r ≥ r_c; Coulomb
    /// between non-excluded pairs becomes the reaction field
    /// kq_iq_j(1/r + k_rf r² − c_rf), k_rf = (ε_rf − 1)/((2ε_rf + 1) r_c³),
    /// c_rf = 3ε_rf/((2ε_rf + 1) r_c); the GB pair term becomes −k(1/ε_in − 1/ε_out)q_iq_j(1/f − 1/r_c)
    /// (the GB self terms are unchanged); LJ is truncated without a switch; 1-4 pairs are
    /// neither cut nor reaction-field corrected; excluded pairs contribute nothing.
    struct Cutoff {
        /// r_c in Å.
        var distance: Double
        /// ε_rf: OpenMM's NonbondedForce default 78.3 in vacuum; `createSystem` sets 1 with GB.
        var reactionFieldDielectric: Double
        /// Neighbour rows always (`yes`), never (`no`: runs of j > i cut per lane), or when the
        /// molecule is large against the cutoff sphere (`auto`); the same pairs either way.
        var neighbourList: NeighbourList = .auto
        enum NeighbourList: String, CaseIterable { case auto, yes, no }
        var kRF: Double { (reactionFieldDielectric - 1) / ((2 * reactionFieldDielectric + 1) * distance * distance * distance) }
        var cRF: Double { 3 * reactionFieldDielectric / ((2 * reactionFieldDielectric + 1) * distance) }
    }
    let cutoff: Cutoff?

    /// Per-atom tables, each padded to `stride` = n rounded up to 4, plus 4 (index n is the
    /// dummy partner that pads neighbour rows): allocated once, owned by this object.
    let stride: Int
    /// Charges (e), Lennard-Jones types, GB offset radii ρ (padding 1) and scaled radii s.
    let charge: UnsafeMutablePointer<Double>
    let ljType: UnsafeMutablePointer<Int32>
    let rho: UnsafeMutablePointer<Double>, scaledRadius: UnsafeMutablePointer<Double>
    /// GB radii R and ACE factors 4πσ(R + 1.4)², n each.
    let radius: UnsafeMutablePointer<Double>, aceFactor: UnsafeMutablePointer<Double>
    /// LJ A and B over type pairs, ntypes × ntypes.
    let ljTypeCount: Int
    let ljA: UnsafeMutablePointer<Double>, ljB: UnsafeMutablePointer<Double>
    /// The same per partner atom, for the SIMD kernel: `ljAByAtom[t · stride + j]` = A[t, type j]
    /// (ntypes × stride each, O(n)), so a run of partners loads its A and B as vectors.
    let ljAByAtom: UnsafeMutablePointer<Double>, ljBByAtom: UnsafeMutablePointer<Double>
    /// Coulomb's constant, kcal·Å/(mol·e²).
    let coulomb: Double
    /// Skipped partners (exclusions and 1-4 pairs) of each atom, both directions, in CSR form:
    /// `partners[partnerStart[i] ..< partnerStart[i + 1]]`.
    let partnerStart: [Int32], partners: [Int32]

    /// Chunks of 4 partners in the pair loops without a cutoff: Σᵢ ⌈(n − ⌊(i+1)/4⌋·4)/4⌉.
    let fullChunks: Int
    /// At most this many Born-term derivatives (8 bytes each) are kept between passes 1 and 3
    /// per scratch (16 MB); beyond it, pass 3 recomputes them, so memory stays O(n) without a
    /// cutoff and O(n · neighbours) with one.
    static let derivativeCapacity = 2 << 20

    /// Scratch buffers, one per concurrent caller, kept for the life of the system.
    private var pool: [Scratch] = []
    private let poolLock = NSLock()

    static let dielectricOffset = 0.09   // Å (OpenMM: 0.009 nm)
    static let probeRadius = 1.4         // Å (OpenMM: 0.14 nm)

    /// - Parameters:
    ///   - topology: the force field terms.
    ///   - solvent: vacuum, OBC1 or OBC2.
    ///   - temperature: K, for the reduced energy u = U/kT.
    ///   - soluteDielectric, solventDielectric: GB dielectrics (OpenMM defaults 1, 78.5).
    ///   - cutoff: nil for every pair (the exact sum), else r_c and ε_rf (see `Cutoff`).
    ///   - precision: `.mixed` only where `mixedUnsupported` is nil (the caller checks).
    /// - Throws: `AmberFileError` when GB is asked for and the prmtop has no RADII/SCREEN.
    init(topology: AmberTopology, solvent: Solvent, temperature: Double,
         soluteDielectric: Double = 1, solventDielectric: Double = 78.5, kernel: Kernel = .simd,
         cutoff: Cutoff? = nil, precision: Precision = .double) throws {
        precondition(precision == .double || AmberEnergy.mixedUnsupported(solvent: solvent, cutoff: cutoff, kernel: kernel) == nil)
        n = topology.count
        self.kernel = kernel
        self.precision = precision
        self.solvent = solvent
        self.cutoff = cutoff
        kT = Constants.boltzmannKcal * temperature
        bonds = topology.bonds
        angles = topology.angles
        torsions = topology.torsions.map { t in
            let whole = t.periodicity.rounded()
            return Torsion(i: t.i, j: t.j, k: t.k, l: t.l, barrier: t.barrier, periodicity: t.periodicity,
                           cosPhase: cos(t.phase), sinPhase: sin(t.phase),
                           integerPeriodicity: whole == t.periodicity && whole >= 1 && whole <= 12 ? Int(whole) : 0)
        }
        oneFour = topology.oneFour
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
        coulomb = Constants.coulombKcalAngstrom(Constants.coulombOpenMM)
        let gbCoulomb = Constants.coulombKcalAngstrom(
            solvent == .obc1 ? Constants.coulombCustomGB : Constants.coulombOpenMM)
        gbPrefactor = -gbCoulomb * (1 / soluteDielectric - 1 / solventDielectric)
        // Surface-area energy per area, kcal/mol/Å²: OBC1's CustomGBForce writes 4π·2.25936
        // as the literal 28.3919551; GBSAOBCForce computes 4π·2.25936 itself.
        let fourPiSigma = (solvent == .obc1 ? 28.3919551 : 4 * Double.pi * 2.25936) / Constants.kJPerKcal / 100
        let stride = (n + 3) / 4 * 4 + 4
        self.stride = stride
        func table(_ values: [Double], padding: Double) -> UnsafeMutablePointer<Double> {
            let p = UnsafeMutablePointer<Double>.allocate(capacity: stride)
            p.initialize(repeating: padding, count: stride)
            for (k, v) in values.enumerated() { p[k] = v }
            return p
        }
        charge = table(topology.charges, padding: 0)
        let gbRadii = solvent == .vacuum ? [Double](repeating: 1, count: n) : topology.radii
        let offset = gbRadii.map { $0 - AmberEnergy.dielectricOffset }
        let screen = solvent == .vacuum ? [Double](repeating: 0, count: n) : topology.screen
        rho = table(offset, padding: 1)
        scaledRadius = table(zip(offset, screen).map { $0 * $1 }, padding: 0)
        radius = table(gbRadii, padding: 1)
        aceFactor = table(gbRadii.map { fourPiSigma * ($0 + AmberEnergy.probeRadius) * ($0 + AmberEnergy.probeRadius) },
                          padding: 0)
        ljType = .allocate(capacity: stride)
        ljType.initialize(repeating: 0, count: stride)
        for (k, t) in topology.ljType.enumerated() { ljType[k] = t }
        ljTypeCount = topology.ljTypeCount
        ljA = .allocate(capacity: topology.ljA.count)
        ljA.initialize(from: topology.ljA, count: topology.ljA.count)
        ljB = .allocate(capacity: topology.ljB.count)
        ljB.initialize(from: topology.ljB, count: topology.ljB.count)
        let types = topology.ljTypeCount
        ljAByAtom = .allocate(capacity: types * stride)
        ljAByAtom.initialize(repeating: 0, count: types * stride)
        ljBByAtom = .allocate(capacity: types * stride)
        ljBByAtom.initialize(repeating: 0, count: types * stride)
        for t in 0..<types {
            for (j, tj) in topology.ljType.enumerated() {
                ljAByAtom[t * stride + j] = topology.ljA[t * types + Int(tj)]
                ljBByAtom[t * stride + j] = topology.ljB[t * types + Int(tj)]
            }
        }
        var both = [[Int32]](repeating: [], count: n)
        for (i, list) in topology.skipped.enumerated() {
            for j in list { both[i].append(j); both[Int(j)].append(Int32(i)) }
        }
        var start: [Int32] = [0]
        start.reserveCapacity(n + 1)
        for list in both { start.append(start.last! + Int32(list.count)) }
        partnerStart = start
        partners = both.flatMap { $0.sorted() }
        let count = n
        fullChunks = (0..<count).reduce(0) { $0 + (count - (($1 + 1) & ~3) + 3) / 4 }
        if precision == .mixed { mixedTables = MixedTables(self) }
    }

    deinit {
        for p in [charge, rho, scaledRadius, radius, aceFactor, ljA, ljB, ljAByAtom, ljBByAtom] { p.deallocate() }
        ljType.deallocate()
    }

    /// Per-call working memory, O(n) (plus the neighbour list, O(n · neighbours) with a cutoff):
    /// allocated on first use and then reused by every call on the same thread of work (one
    /// per thread when a configuration's pairs are split over threads).
    final class Scratch {
        let stride: Int
        /// Positions and gradient as structure of arrays, Born integrals, radii, ∂B/∂I, ∂E/∂B,
        /// and the 1/0 factors that switch excluded partners off; `stride` each.
        let x, y, z, gx, gy, gz, integral, born, dBorn, bornForce, keep: UnsafeMutablePointer<Double>
        /// Neighbour rows (cutoff only): row r holds atom `rowAtom[r]`'s partners
        /// `list[rowStart[r] ..< rowStart[r + 1]]`, padded to a multiple of 4 with the dummy index n.
        var rowAtom: [Int32] = [], rowStart: [Int32] = [], list: [Int32] = []
        /// Cell list (cutoff only): atoms sorted by cell, their sorted positions, cell starts.
        var cellOf: [Int32] = [], cellStart: [Int32] = [], sorted: [Int32] = []
        var cellDims = SIMD3<Int>(0, 0, 0)
        var cellCount: Int { cellDims.x * cellDims.y * cellDims.z }
        /// Rows in `rowAtom` (every atom's after `buildNeighbours`; a worker's share when the
        /// rows are built per worker).
        var rowCount = 0
        var sx: [Double] = [], sy: [Double] = [], sz: [Double] = []
        var ranges: [(Int, Int)] = []
        /// This call's pair loops walk neighbour rows (else runs of j > i, cut per lane).
        var usesList = false
        /// The pair energy this scratch's worker summed (one configuration split over threads).
        var pairEnergy = SIMD4<Double>(repeating: 0)
        /// The bonded and 1-4 energy this scratch's worker computed (the same).
        var termEnergy = 0.0
        /// Whether this worker's pass 1 kept its Born-term derivatives for pass 3.
        var keepsDerivatives = false
        /// Single-precision buffers (`precision=mixed`), made on first use.
        var mixedBuffers: MixedScratch?
        /// Born-term derivatives kept from pass 1 for pass 3 (GB with gradients), grown on demand.
        private(set) var derivatives: UnsafeMutablePointer<Double>?
        private var derivativeCount = 0
        func reserveDerivatives(_ count: Int) {
            guard count > derivativeCount else { return }
            derivatives?.deallocate()
            derivatives = .allocate(capacity: count)
            derivativeCount = count
        }

        init(n: Int, stride: Int) {
            self.stride = stride
            func buffer(_ value: Double) -> UnsafeMutablePointer<Double> {
                let p = UnsafeMutablePointer<Double>.allocate(capacity: stride)
                p.initialize(repeating: value, count: stride)
                return p
            }
            (x, y, z, gx, gy, gz) = (buffer(0), buffer(0), buffer(0), buffer(0), buffer(0), buffer(0))
            (integral, born, dBorn, bornForce, keep) = (buffer(0), buffer(1), buffer(0), buffer(0), buffer(1))
        }
        deinit {
            for p in [x, y, z, gx, gy, gz, integral, born, dBorn, bornForce, keep] { p.deallocate() }
            derivatives?.deallocate()
        }
    }

    /// Runs `body` with a scratch that no concurrent caller holds, taken from (and returned to)
    /// this system's pool: after the first calls, an evaluate call allocates nothing.
    func withScratch<T>(_ body: (Scratch) throws -> T) rethrows -> T {
        poolLock.lock()
        let scratch = pool.popLast() ?? Scratch(n: n, stride: stride)
        poolLock.unlock()
        defer { poolLock.lock(); pool.append(scratch); poolLock.unlock() }
        return try body(scratch)
    }

    /// Runs `body` with `count` scratches that no concurrent caller holds (see `withScratch`),
    /// taken from the end of the pool and put back in the same order, so that consecutive
    /// calls give each worker the same scratch (each grows to its own share only).
    func withScratches<T>(_ count: Int, _ body: ([Scratch]) throws -> T) rethrows -> T {
        poolLock.lock()
        let kept = max(0, pool.count - count)
        var taken = Array(pool[kept...])
        pool.removeSubrange(kept...)
        while taken.count < count { taken.append(Scratch(n: n, stride: stride)) }
        poolLock.unlock()
        defer { poolLock.lock(); pool.append(contentsOf: taken); poolLock.unlock() }
        return try body(taken)
    }

    /// Whether `energy(_:gradient:workers:)` splits the pair rows over its workers: the SIMD
    /// kernel only (the scalar reference loops always run on one thread).
    var splitsPairs: Bool { kernel == .simd }

    /// Potential energy (kcal/mol) of one configuration; adds ∂U/∂x (kcal/mol/Å) into
    /// `gradient` when given (the caller zeroes it).
    /// - Parameters:
    ///   - x: positions [n][3] in Å.
    ///   - gradient: [n][3], or nil for the energy only.
    func energy(_ x: UnsafePointer<Double>, gradient: UnsafeMutablePointer<Double>?, scratch: Scratch) -> Double {
        var e = bondedEnergy(x, gradient) + oneFourEnergy(x, gradient)
        prepare(x, scratch)
        switch kernel {
        case .simd where precision == .mixed: e += mixedPairEnergy(scratch, gradients: gradient != nil)
        case .simd: e += simdPairEnergy(scratch, gradients: gradient != nil)
        case .scalar: e += scalarPairEnergy(scratch, gradients: gradient != nil)
        }
        if let g = gradient {
            for a in 0..<n { g[3 * a] += scratch.gx[a]; g[3 * a + 1] += scratch.gy[a]; g[3 * a + 2] += scratch.gz[a] }
        }
        return e
    }

    /// The same energy and gradient with the pair rows split over `workers.count` threads, one
    /// scratch each (`simdPairEnergy(workers:gradients:)`): the same bits for the same number
    /// of workers, and one worker's numbers to rounding. The bonded and 1-4 terms run on one
    /// thread while another loads the configuration and builds its neighbour rows; then the
    /// pair passes run on all of them.
    func energy(_ x: UnsafePointer<Double>, gradient: UnsafeMutablePointer<Double>?, workers: [Scratch]) -> Double {
        guard workers.count > 1, splitsPairs else { return energy(x, gradient: gradient, scratch: workers[0]) }
        let scratch = workers[0]
        DispatchQueue.concurrentPerform(iterations: 2) { t in
            if t == 0 {
                prepare(x, scratch, rows: false)
            } else {
                workers[1].termEnergy = bondedEnergy(x, gradient) + oneFourEnergy(x, gradient)
            }
        }
        var e = workers[1].termEnergy
        e += precision == .mixed ? mixedPairEnergy(workers: workers, gradients: gradient != nil)
            : simdPairEnergy(workers: workers, gradients: gradient != nil)
        if let g = gradient {
            for a in 0..<n { g[3 * a] += scratch.gx[a]; g[3 * a + 1] += scratch.gy[a]; g[3 * a + 2] += scratch.gz[a] }
        }
        return e
    }

    /// Loads one configuration into `scratch` (structure of arrays, zeroed accumulators) and,
    /// when the cutoff asks for neighbour rows, sorts the atoms into cells and (`rows`) builds
    /// every atom's row.
    private func prepare(_ x: UnsafePointer<Double>, _ scratch: Scratch, rows: Bool = true) {
        for a in 0..<n {
            scratch.x[a] = x[3 * a]; scratch.y[a] = x[3 * a + 1]; scratch.z[a] = x[3 * a + 2]
        }
        for a in n..<stride { scratch.x[a] = 0; scratch.y[a] = 0; scratch.z[a] = 0 }
        for a in 0..<stride {
            scratch.gx[a] = 0; scratch.gy[a] = 0; scratch.gz[a] = 0
            scratch.integral[a] = 0; scratch.bornForce[a] = 0; scratch.born[a] = 1
        }
        // Non-finite positions take the runs (no cell list to index), whose non-finite energy
        // the caller reports.
        var finite = true
        for a in 0..<n where !(scratch.x[a].isFinite && scratch.y[a].isFinite && scratch.z[a].isFinite) { finite = false }
        switch cutoff?.neighbourList {
        case nil, .no?: scratch.usesList = false
        case _ where !finite: scratch.usesList = false
        case .yes?: scratch.usesList = true
        case .auto?: scratch.usesList = usesNeighbourList(scratch, cutoff: cutoff!.distance)
        }
        if scratch.usesList, let cutoff {
            if rows { buildNeighbours(scratch, cutoff: cutoff.distance) } else { sortIntoCells(scratch, cutoff: cutoff.distance) }
        }
    }

    /// The 1-4 pairs: a/r¹² − b/r⁶ + qq/r, never cut off.
    private func oneFourEnergy(_ x: UnsafePointer<Double>, _ g: UnsafeMutablePointer<Double>?) -> Double {
        var e = 0.0
        oneFour.withUnsafeBufferPointer { pairs in
            for p in pairs {
                let i = 3 * Int(p.i), j = 3 * Int(p.j)
                let dx = x[i] - x[j], dy = x[i + 1] - x[j + 1], dz = x[i + 2] - x[j + 2]
                let inv2 = 1 / (dx * dx + dy * dy + dz * dz)
                let invr = inv2.squareRoot()
                let inv6 = inv2 * inv2 * inv2
                let lj12 = p.a * inv6 * inv6, lj6 = p.b * inv6, coul = p.qq * invr
                e += lj12 - lj6 + coul
                if let g {
                    let s = (-12 * lj12 + 6 * lj6 - coul) * inv2
                    g[i] += s * dx; g[i + 1] += s * dy; g[i + 2] += s * dz
                    g[j] -= s * dx; g[j + 1] -= s * dy; g[j + 2] -= s * dz
                }
            }
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



    /// One OBC Born integral term of atom i (offset radius ρ) from atom j (scaled radius s)
    /// at distance r, and its derivative in r.
    @inline(__always)
    static func born(_ r: Double, _ invr: Double, _ rho: Double, _ s: Double,
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

    // MARK: - Pair terms (LJ, Coulomb, GB): the scalar reference loops

    /// Visits every pair once (i < j without a cutoff; the neighbour rows with one) as
    /// body(i, j, keep), keep = 0 for excluded and 1-4 pairs, else 1.
    @inline(__always)
    private func forEachPair(_ s: Scratch, _ body: (Int, Int, Double) -> Void) {
        let rows = !s.usesList ? n : s.rowCount
        let limit2 = s.usesList ? .infinity : cutoff.map { $0.distance * $0.distance } ?? .infinity
        for r in 0..<rows {
            let i = !s.usesList ? r : Int(s.rowAtom[r])
            let skip = Int(partnerStart[i])..<Int(partnerStart[i + 1])
            for k in skip { s.keep[Int(partners[k])] = 0 }
            if !s.usesList {
                for j in (i + 1)..<max(i + 1, n) {
                    let dx = s.x[i] - s.x[j], dy = s.y[i] - s.y[j], dz = s.z[i] - s.z[j]
                    if dx * dx + dy * dy + dz * dz < limit2 { body(i, j, s.keep[j]) }
                }
            } else {
                for k in Int(s.rowStart[r])..<Int(s.rowStart[r + 1]) {
                    let j = Int(s.list[k])
                    if j < n { body(i, j, s.keep[j]) }
                }
            }
            for k in skip { s.keep[Int(partners[k])] = 1 }
        }
    }

    /// LJ + Coulomb (+ GB) over all pairs, or over the neighbour rows with a cutoff, in plain
    /// scalar loops; accumulates the gradient into the scratch's gx, gy, gz.
    func scalarPairEnergy(_ s: Scratch, gradients: Bool) -> Double {
        let gb = solvent != .vacuum
        let (krf, crf) = cutoff.map { ($0.kRF, $0.cRF) } ?? (0, 0)
        let gbShift = cutoff.map { 1 / $0.distance } ?? 0
        let engulf = engulfCorrection
        let nt = ljTypeCount
        var e = 0.0
        // Pass 1: LJ + Coulomb over non-skipped pairs, Born integrals over all pairs.
        forEachPair(s) { i, j, keep in
            let dx = s.x[i] - s.x[j], dy = s.y[i] - s.y[j], dz = s.z[i] - s.z[j]
            let r2 = dx * dx + dy * dy + dz * dz
            let inv2 = 1 / r2
            let invr = inv2.squareRoot()
            if keep != 0 {
                let t = Int(ljType[i]) * nt + Int(ljType[j])
                let inv6 = inv2 * inv2 * inv2
                let lj12 = ljA[t] * inv6 * inv6, lj6 = ljB[t] * inv6
                let qq = coulomb * charge[i] * charge[j]
                let rf = cutoff != nil
                e += lj12 - lj6 + qq * (rf ? invr + krf * r2 - crf : invr)
                let sc = (-12 * lj12 + 6 * lj6) * inv2 + qq * (rf ? 2 * krf - invr * inv2 : -invr * inv2)   // (∂E/∂r)/r
                s.gx[i] += sc * dx; s.gy[i] += sc * dy; s.gz[i] += sc * dz
                s.gx[j] -= sc * dx; s.gy[j] -= sc * dy; s.gz[j] -= sc * dz
            }
            if gb {
                let r = r2 * invr
                s.integral[i] += AmberEnergy.born(r, invr, rho[i], scaledRadius[j], engulf).0
                s.integral[j] += AmberEnergy.born(r, invr, rho[j], scaledRadius[i], engulf).0
            }
        }
        guard gb else { return e }
        e += bornRadii(integral: s.integral, rho: rho, radius: radius, charge: charge, ace: aceFactor,
                       born: s.born, dBorn: s.dBorn, bornForce: s.bornForce)
        // Pass 2: GB pair terms, ∂G/∂r = −G(1 − e/4) r/f², ∂G/∂P = −G e (1 + D)/(2f²), P = BᵢBⱼ.
        let pre = gbPrefactor
        forEachPair(s) { i, j, _ in
            let dx = s.x[i] - s.x[j], dy = s.y[i] - s.y[j], dz = s.z[i] - s.z[j]
            let r2 = dx * dx + dy * dy + dz * dz
            let p = s.born[i] * s.born[j]
            let d = r2 / (4 * p)
            let ex = exp(-d)
            let f2 = r2 + p * ex
            let invf2 = 1 / f2
            let qq = pre * charge[i] * charge[j]
            let gpol = qq * invf2.squareRoot()
            e += gpol - qq * gbShift
            let dGdr = -gpol * (1 - 0.25 * ex) * invf2          // (∂G/∂r)/r
            let dGdp = -0.5 * gpol * ex * (1 + d) * invf2
            s.bornForce[i] += dGdp * s.born[j]
            s.bornForce[j] += dGdp * s.born[i]
            s.gx[i] += dGdr * dx; s.gy[i] += dGdr * dy; s.gz[i] += dGdr * dz
            s.gx[j] -= dGdr * dx; s.gy[j] -= dGdr * dy; s.gz[j] -= dGdr * dz
        }
        guard gradients else { return e }
        // Pass 3: chain rule through the Born radii, ∂E/∂Bᵢ · ∂Bᵢ/∂Iᵢ · ∂Iᵢ/∂r.
        for i in 0..<n { s.bornForce[i] *= s.dBorn[i] }
        forEachPair(s) { i, j, _ in
            let dx = s.x[i] - s.x[j], dy = s.y[i] - s.y[j], dz = s.z[i] - s.z[j]
            let r2 = dx * dx + dy * dy + dz * dz
            let invr = 1 / r2.squareRoot()
            let r = r2 * invr
            let dij = AmberEnergy.born(r, invr, rho[i], scaledRadius[j], engulf).1
            let dji = AmberEnergy.born(r, invr, rho[j], scaledRadius[i], engulf).1
            let sc = (s.bornForce[i] * dij + s.bornForce[j] * dji) * invr
            s.gx[i] += sc * dx; s.gy[i] += sc * dy; s.gz[i] += sc * dz
            s.gx[j] -= sc * dx; s.gy[j] -= sc * dy; s.gz[j] -= sc * dz
        }
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
