import Foundation

/// Physical constants, chosen to agree with OpenMM 8 (which the tests compare against).
enum Constants {
    /// kJ per kcal (thermochemical calorie), as OpenMM converts AMBER parameters.
    static let kJPerKcal = 4.184
    /// Coulomb's constant 1/(4πε₀) in kJ·nm/(mol·e²): OpenMM 8's ONE_4PI_EPS0 (CODATA 2018),
    /// used by NonbondedForce and GBSAOBCForce (OBC2).
    static let coulombOpenMM = 138.93545764438198
    /// The literal OpenMM's CustomGBForce models (app/internal/customgbforces.py) use; OBC1.
    static let coulombCustomGB = 138.935485
    /// AMBER stores charges multiplied by 18.2223 (√332.0522); OpenMM divides by it.
    static let amberChargeScale = 18.2223
    /// Molar gas constant R in kJ/(mol·K), OpenMM's MOLAR_GAS_CONSTANT_R.
    static let gasConstantKJ = 8.31446261815324e-3
    /// Boltzmann's constant in kcal/(mol·K) consistent with the above: R / 4.184.
    static let boltzmannKcal = gasConstantKJ / kJPerKcal

    /// 1/(4πε₀) in kcal·Å/(mol·e²) for a given kJ·nm value.
    static func coulombKcalAngstrom(_ kJnm: Double) -> Double { kJnm * 10 / kJPerKcal }
}

/// One AMBER topology in the plugin's working units: Å, kcal/mol, elementary charges.
///
/// Built from a prmtop exactly as OpenMM's `AmberPrmtopFile.createSystem` interprets it:
/// bonds and angles k(x − x₀)², torsions k(1 + cos(nφ − γ)) (propers and impropers alike),
/// Lennard-Jones A/r¹² − B/r⁶ from `LENNARD_JONES_ACOEF/BCOEF` via
/// `NONBONDED_PARM_INDEX`, Coulomb between charges `CHARGE`/18.2223, exclusions from
/// `NUMBER_EXCLUDED_ATOMS`/`EXCLUDED_ATOMS_LIST`, and 1-4 pairs (dihedrals whose third
/// index is non-negative and fourth positive) scaled by 1/SCEE and 1/SCNB of their
/// dihedral type (1.2 and 2.0 when those sections are absent).
struct AmberTopology {
    struct Atom {
        var name: String
        var element: String
        var residue: String
        var residueNumber: Int
        var mass: Double
    }
    struct Bond { var i: Int32; var j: Int32; var k: Double; var r0: Double }
    struct Angle { var i: Int32; var j: Int32; var l: Int32; var k: Double; var theta0: Double }
    struct Torsion {
        var i: Int32; var j: Int32; var k: Int32; var l: Int32
        var barrier: Double; var periodicity: Double; var phase: Double
    }
    /// One i<j 1-4 pair: E = a/r¹² − b/r⁶ + qq/r (kcal/mol, Å), parameters already scaled.
    struct Pair { var i: Int32; var j: Int32; var a: Double; var b: Double; var qq: Double }

    var atoms: [Atom] = []
    /// Charges in e.
    var charges: [Double] = []
    var bonds: [Bond] = []
    var angles: [Angle] = []
    var torsions: [Torsion] = []
    /// 1-4 pairs with their scaled parameters (qq includes Coulomb's constant).
    var oneFour: [Pair] = []
    /// Lennard-Jones type of each atom (0-based) and the full ntypes × ntypes A and B tables
    /// (kcal/mol·Å¹², kcal/mol·Å⁶): every pair that is neither excluded nor 1-4 uses
    /// A[tᵢ·ntypes + tⱼ], B[…].
    var ljType: [Int32] = []
    var ljTypeCount = 0
    var ljA: [Double] = [], ljB: [Double] = []
    /// For each atom i, the sorted partners j > i that the plain LJ + Coulomb sum skips:
    /// the prmtop's exclusions and the 1-4 pairs (computed apart, from `oneFour`).
    var skipped: [[Int32]] = []
    /// GB intrinsic radii (Å, `RADII`) and screening factors (`SCREEN`).
    var radii: [Double] = []
    var screen: [Double] = []
    var radiusSet: String = ""

    var count: Int { atoms.count }

    /// Read a prmtop.
    /// - Throws: `AmberFileError` naming the section and line for malformed numbers,
    ///   missing sections, out-of-range indices and unsupported features (periodic box,
    ///   CMAP, LES, polarisability, perturbation, extra points, CHAMBER, 10-12 H-bond terms).
    init(prmtopPath path: String) throws {
        let r = try PrmtopReader(path: path)
        try r.checkSupported()
        atoms = try r.atoms()
        charges = try r.top.doubles("CHARGE", count: r.n).map { $0 / Constants.amberChargeScale }
        radii = r.top.has("RADII") ? try r.top.doubles("RADII", count: r.n) : []
        screen = r.top.has("SCREEN") ? try r.top.doubles("SCREEN", count: r.n) : []
        radiusSet = r.top.has("RADIUS_SET") ? (try r.top.strings("RADIUS_SET").first ?? "") : ""
        bonds = try r.bonds()
        angles = try r.angles()
        let oneFourByKey: [Int: Pair]
        (torsions, oneFourByKey) = try r.torsions(charges: charges)
        let ke = Constants.coulombKcalAngstrom(Constants.coulombOpenMM)
        oneFour = oneFourByKey.keys.sorted().map { var p = oneFourByKey[$0]!; p.qq *= ke; return p }
        (ljType, ljTypeCount, ljA, ljB) = try r.lennardJonesTables()
        var skip = [Set<Int32>](repeating: [], count: r.n)
        for key in try r.exclusions() { skip[key / r.n].insert(Int32(key % r.n)) }
        for p in oneFour { skip[Int(p.i)].insert(p.j) }
        skipped = skip.map { $0.sorted() }
    }
}

/// The sections of one prmtop read into the topology's terms, each step checking the indices
/// it follows and naming the file, line and section of anything malformed.
private struct PrmtopReader {
    // POINTERS indices (AMBER file format specification).
    enum Pointer: Int {
        case natom = 0, ntypes = 1, nbonh = 2, mbona = 3, ntheth = 4, mtheta = 5, nphih = 6, mphia = 7
        case nparm = 9, nres = 11, numbnd = 15, numang = 16, nptra = 17, ifpert = 20
        case ifbox = 27, ifcap = 29, numextra = 30
    }

    let path: String
    let top: Prmtop
    let pointers: [Int]
    let n: Int, ntypes: Int, nres: Int
    let types: [Int]
    /// NONBONDED_PARM_INDEX and the LJ A/B tables it points into.
    let nbIndex: [Int], acoef: [Double], bcoef: [Double]

    init(path: String) throws {
        self.path = path
        top = try Prmtop(path: path)
        pointers = try top.integers("POINTERS", count: 31)
        n = pointers[Pointer.natom.rawValue]
        ntypes = pointers[Pointer.ntypes.rawValue]
        nres = pointers[Pointer.nres.rawValue]
        guard n > 0, ntypes > 0, nres > 0 else {
            throw AmberFileError(description: "\(path):\(top.line("POINTERS", entry: 0)): section %FLAG POINTERS: NATOM, NTYPES and NRES must be positive")
        }
        types = try top.integers("ATOM_TYPE_INDEX", count: n)
        nbIndex = try top.integers("NONBONDED_PARM_INDEX", count: ntypes * ntypes)
        let typePairs = ntypes * (ntypes + 1) / 2
        acoef = try top.doubles("LENNARD_JONES_ACOEF", count: typePairs)
        bcoef = try top.doubles("LENNARD_JONES_BCOEF", count: typePairs)
        for (k, t) in types.prefix(n).enumerated() { try checkIndex(t, 1...ntypes, "ATOM_TYPE_INDEX", k) }
    }

    func ptr(_ q: Pointer) -> Int { pointers[q.rawValue] }
    var typePairs: Int { ntypes * (ntypes + 1) / 2 }

    func unsupported(_ flag: String, _ what: String, entry: Int = 0) -> AmberFileError {
        AmberFileError(description:
            "\(path):\(top.line(flag, entry: entry)): unsupported in section %FLAG \(flag): \(what); "
            + "this plugin handles non-periodic small molecules with a fixed-charge AMBER force field")
    }

    /// Refuses the features the plugin does not model.
    func checkSupported() throws {
        for (pointer, what) in [(Pointer.ifbox, "IFBOX", "periodic box"), (.nparm, "NPARM", "LES"),
                                (.ifpert, "IFPERT", "perturbation"), (.ifcap, "IFCAP", "solvent cap"),
                                (.numextra, "NUMEXTRA", "extra points")].map({ ($0.0, "\($0.1) = \(pointers[$0.0.rawValue]) (\($0.2))") })
        where ptr(pointer) != 0 {
            throw unsupported("POINTERS", what, entry: pointer.rawValue)
        }
        for flag in ["CHARMM_CMAP_COUNT", "CMAP_COUNT", "CTITLE", "LES_NTYP", "POLARIZABILITY",
                     "LENNARD_JONES_CCOEF", "BOX_DIMENSIONS", "SOLVENT_POINTERS"] where top.has(flag) {
            throw unsupported(flag, "section present")
        }
        if top.has("IPOL") {
            let ipol = try top.integers("IPOL")
            if ipol.contains(where: { $0 != 0 }) { throw unsupported("IPOL", "IPOL ≠ 0 (polarisable force field)") }
        }
    }

    func checkIndex(_ v: Int, _ range: ClosedRange<Int>, _ flag: String, _ k: Int) throws {
        guard range.contains(v) else {
            throw AmberFileError(description:
                "\(path):\(top.line(flag, entry: k)): index \(v) out of range \(range) in section %FLAG \(flag) (entry \(k + 1))")
        }
    }

    /// Rows of `width` integers (atom pointers 3·index, then a type).
    func rows(_ flag: String, count: Int, width: Int) throws -> [[Int]] {
        let v = try top.integers(flag, count: count * width)
        return (0..<count).map { Array(v[($0 * width)..<($0 * width + width)]) }
    }

    /// The atom index of a coordinate-array pointer (3·index, sign ignored).
    func atomIndex(_ raw: Int, _ flag: String, _ k: Int) throws -> Int32 {
        let a = abs(raw)
        guard a % 3 == 0, a / 3 < n else {
            throw AmberFileError(description:
                "\(path):\(top.line(flag, entry: k)): atom pointer \(raw) is not 3·index for \(n) atoms in section %FLAG \(flag)")
        }
        return Int32(a / 3)
    }

    /// Names, elements (from ATOMIC_NUMBER, else the nearest standard mass), residues, masses.
    func atoms() throws -> [AmberTopology.Atom] {
        let names = try top.strings("ATOM_NAME", count: n)
        let masses = try top.doubles("MASS", count: n)
        let residueLabels = try top.strings("RESIDUE_LABEL", count: nres)
        let residuePointers = try top.integers("RESIDUE_POINTER", count: nres)
        for (k, r) in residuePointers.prefix(nres).enumerated() { try checkIndex(r, 1...n, "RESIDUE_POINTER", k) }
        let atomicNumbers = top.has("ATOMIC_NUMBER") ? try top.integers("ATOMIC_NUMBER", count: n) : nil
        var residue = 0
        return (0..<n).map { a in
            while residue + 1 < nres && residuePointers[residue + 1] - 1 <= a { residue += 1 }
            let element = atomicNumbers.map { Elements.symbol($0[a]) } ?? Elements.symbol(mass: masses[a])
            return AmberTopology.Atom(name: names[a], element: element, residue: residueLabels[residue],
                                      residueNumber: residue + 1, mass: masses[a])
        }
    }

    func bonds() throws -> [AmberTopology.Bond] {
        let bondK = try top.doubles("BOND_FORCE_CONSTANT", count: ptr(.numbnd))
        let bondR = try top.doubles("BOND_EQUIL_VALUE", count: ptr(.numbnd))
        var bonds: [AmberTopology.Bond] = []
        for (flag, count) in [("BONDS_INC_HYDROGEN", ptr(.nbonh)), ("BONDS_WITHOUT_HYDROGEN", ptr(.mbona))] {
            for (k, t) in try rows(flag, count: count, width: 3).enumerated() {
                try checkIndex(t[2], 1...max(1, bondK.count), flag, 3 * k + 2)
                bonds.append(.init(i: try atomIndex(t[0], flag, 3 * k), j: try atomIndex(t[1], flag, 3 * k + 1),
                                   k: bondK[t[2] - 1], r0: bondR[t[2] - 1]))
            }
        }
        return bonds
    }

    func angles() throws -> [AmberTopology.Angle] {
        let angleK = try top.doubles("ANGLE_FORCE_CONSTANT", count: ptr(.numang))
        let angleT = try top.doubles("ANGLE_EQUIL_VALUE", count: ptr(.numang))
        var angles: [AmberTopology.Angle] = []
        for (flag, count) in [("ANGLES_INC_HYDROGEN", ptr(.ntheth)), ("ANGLES_WITHOUT_HYDROGEN", ptr(.mtheta))] {
            for (k, t) in try rows(flag, count: count, width: 4).enumerated() {
                try checkIndex(t[3], 1...max(1, angleK.count), flag, 4 * k + 3)
                angles.append(.init(i: try atomIndex(t[0], flag, 4 * k), j: try atomIndex(t[1], flag, 4 * k + 1),
                                    l: try atomIndex(t[2], flag, 4 * k + 2),
                                    k: angleK[t[3] - 1], theta0: angleT[t[3] - 1]))
            }
        }
        return angles
    }

    /// The key of the unordered pair {i, j}.
    func key(_ i: Int, _ j: Int) -> Int { min(i, j) * n + max(i, j) }

    /// Excluded pairs (1-based partner lists, 0 = none).
    func exclusions() throws -> Set<Int> {
        let numberExcluded = try top.integers("NUMBER_EXCLUDED_ATOMS", count: n)
        let excludedList = try top.integers("EXCLUDED_ATOMS_LIST", count: numberExcluded.reduce(0, +))
        var excluded = Set<Int>()
        var offset = 0
        for i in 0..<n {
            guard numberExcluded[i] >= 0 else {
                throw AmberFileError(description:
                    "\(path):\(top.line("NUMBER_EXCLUDED_ATOMS", entry: i)): negative count in section %FLAG NUMBER_EXCLUDED_ATOMS")
            }
            for k in offset..<(offset + numberExcluded[i]) {
                let j = excludedList[k]
                if j == 0 { continue }
                try checkIndex(j, 1...n, "EXCLUDED_ATOMS_LIST", k)
                if j - 1 != i { excluded.insert(key(i, j - 1)) }
            }
            offset += numberExcluded[i]
        }
        return excluded
    }

    /// Lennard-Jones A and B of the type pair of atoms i and j.
    func lennardJones(_ i: Int, _ j: Int) throws -> (Double, Double) {
        let entry = ntypes * (types[i] - 1) + types[j] - 1
        let index = nbIndex[entry]
        if index < 0 {
            throw AmberFileError(description:
                "\(path):\(top.line("NONBONDED_PARM_INDEX", entry: entry)): "
                + "unsupported in section %FLAG NONBONDED_PARM_INDEX: 10-12 hydrogen-bond term for atoms \(i + 1), \(j + 1)")
        }
        try checkIndex(index, 1...typePairs, "NONBONDED_PARM_INDEX", entry)
        return (acoef[index - 1], bcoef[index - 1])
    }

    /// Torsions, and the 1-4 pairs of dihedrals whose third and fourth pointers are positive
    /// (OpenMM's rule) with LJ scaled by 1/SCNB and Coulomb by 1/SCEE of their type (1.2 and
    /// 2.0 when those sections are absent); charge products without Coulomb's constant.
    func torsions(charges: [Double]) throws -> ([AmberTopology.Torsion], [Int: AmberTopology.Pair]) {
        let count = ptr(.nptra)
        let dihK = try top.doubles("DIHEDRAL_FORCE_CONSTANT", count: count)
        let dihN = try top.doubles("DIHEDRAL_PERIODICITY", count: count)
        let dihP = try top.doubles("DIHEDRAL_PHASE", count: count)
        let scee = top.has("SCEE_SCALE_FACTOR") ? try top.doubles("SCEE_SCALE_FACTOR", count: count)
            : [Double](repeating: 1.2, count: count)
        let scnb = top.has("SCNB_SCALE_FACTOR") ? try top.doubles("SCNB_SCALE_FACTOR", count: count)
            : [Double](repeating: 2.0, count: count)
        var torsions: [AmberTopology.Torsion] = []
        var oneFour: [Int: AmberTopology.Pair] = [:]
        for (flag, rowCount) in [("DIHEDRALS_INC_HYDROGEN", ptr(.nphih)), ("DIHEDRALS_WITHOUT_HYDROGEN", ptr(.mphia))] {
            for (k, t) in try rows(flag, count: rowCount, width: 5).enumerated() {
                try checkIndex(t[4], 1...max(1, dihK.count), flag, 5 * k + 4)
                let type = t[4] - 1
                let i = try atomIndex(t[0], flag, 5 * k), j = try atomIndex(t[1], flag, 5 * k + 1)
                let kk = try atomIndex(t[2], flag, 5 * k + 2), l = try atomIndex(t[3], flag, 5 * k + 3)
                torsions.append(.init(i: i, j: j, k: kk, l: l, barrier: dihK[type],
                                      periodicity: abs(dihN[type]), phase: dihP[type]))
                let pairKey = key(Int(i), Int(l))
                guard t[2] > 0 && t[3] > 0, oneFour[pairKey] == nil else { continue }
                guard scee[type] != 0, scnb[type] != 0 else {
                    throw AmberFileError(description:
                        "\(path):\(top.line(flag, entry: 5 * k + 4)): dihedral type \(type + 1) has a 1-4 pair but SCEE or SCNB is 0 (section %FLAG \(flag))")
                }
                let (a, b) = try lennardJones(Int(i), Int(l))
                oneFour[pairKey] = .init(i: min(i, l), j: max(i, l), a: a / scnb[type], b: b / scnb[type],
                                         qq: charges[Int(i)] * charges[Int(l)] / scee[type])
            }
        }
        return (torsions, oneFour)
    }

    /// Atom types (0-based) and the full symmetric A and B tables over type pairs.
    /// - Throws: when a type pair that two atoms of the molecule could form has a 10-12
    ///   hydrogen-bond term (negative NONBONDED_PARM_INDEX), which this plugin does not handle.
    func lennardJonesTables() throws -> ([Int32], Int, [Double], [Double]) {
        var a = [Double](repeating: 0, count: ntypes * ntypes), b = a
        var present = [Int](repeating: 0, count: ntypes)
        for t in types.prefix(n) { present[t - 1] += 1 }
        for ti in 0..<ntypes {
            for tj in 0..<ntypes {
                let entry = ntypes * ti + tj
                let index = nbIndex[entry]
                if index < 0 {
                    let used = present[ti] > 0 && present[tj] > 0 && (ti != tj || present[ti] > 1)
                    guard !used else {
                        throw AmberFileError(description:
                            "\(path):\(top.line("NONBONDED_PARM_INDEX", entry: entry)): "
                            + "unsupported in section %FLAG NONBONDED_PARM_INDEX: 10-12 hydrogen-bond term for atom types \(ti + 1), \(tj + 1)")
                    }
                    continue
                }
                try checkIndex(index, 1...typePairs, "NONBONDED_PARM_INDEX", entry)
                a[entry] = acoef[index - 1]; b[entry] = bcoef[index - 1]
            }
        }
        return (types.prefix(n).map { Int32($0 - 1) }, ntypes, a, b)
    }
}

/// Element symbols by atomic number (for topology output).
enum Elements {
    static let symbols = ["X", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P",
                          "S", "Cl", "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn",
                          "Ga", "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru",
                          "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I", "Xe"]
    static func symbol(_ z: Int) -> String { z > 0 && z < symbols.count ? symbols[z] : "X" }
    /// Nearest standard atomic mass, for prmtops without ATOMIC_NUMBER.
    static func symbol(mass: Double) -> String {
        let table: [(Double, String)] = [(1.008, "H"), (12.01, "C"), (14.01, "N"), (16.0, "O"), (19.0, "F"),
                                         (30.97, "P"), (32.06, "S"), (35.45, "Cl"), (79.9, "Br"), (126.9, "I")]
        let best = table.min { abs($0.0 - mass) < abs($1.0 - mass) }!
        return abs(best.0 - mass) < 0.6 ? best.1 : "X"
    }
}
