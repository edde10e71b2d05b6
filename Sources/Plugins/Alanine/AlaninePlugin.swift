import EnsemblePluginABI
import Foundation

typealias ThisSystem = AlanineSystem

/// The `alanine` energy plugin: an AMBER force field read from a prmtop (by default the
/// shipped ff96 alanine dipeptide), in vacuum or GB-OBC implicit solvent, matching OpenMM.
/// Length unit Å; reduced energies u = U/kT. The C table, the parameter parser, batch
/// splitting over threads and the non-finite check come from PluginSupport.swift.
final class AlanineSystem: PluginSystem {
    static let name = "alanine"
    static let version = "1.0.0"
    static let summary = "AMBER force field from a prmtop (default: alanine dipeptide, ff96), vacuum or GB-OBC1/OBC2 "
        + "implicit solvent as OpenMM computes it; lengths in Å, u = U/kT"
    static let messagePrefix = "alanine: "
    static let defaultPrmtop = "alanine-dipeptide-ff96.prmtop"
    static let defaultStart = "alanine-dipeptide-ff96.inpcrd"
    static let keys = ["prmtop", "start", "solvent", "temperature", "solute_dielectric", "solvent_dielectric", "threads", "kernel",
                       "cutoff", "reaction_field_dielectric", "neighbour_list", "split_pairs_from", "precision"]

    static let parametersHelp = """
        prmtop=PATH              AMBER prmtop of a non-periodic molecule (default: data/\(defaultPrmtop),
                                 the ACE-ALA-NME dipeptide with ff96 and mbondi2 radii; searched in
                                 $ENSEMBLE_DATA_DIR, then data/ beside the plugin .so and up to 4 parents)
        start=PATH               start coordinates, AMBER inpcrd/rst7 in Å (default: the prmtop's path with
                                 .inpcrd, .rst7 or .crd instead of .prmtop, the first that exists; a
                                 prmtop=PATH with none of them beside it needs start=)
        solvent=obc1|obc2|vacuum implicit solvent (default obc1: OpenMM implicitSolvent=OBC1, AMBER igb=2,
                                 with the ACE surface term, as in the FAB/ASBS alanine benchmark)
        temperature=K            temperature for u = U/kT, kelvin (default 300)
        solute_dielectric=X      GB solute dielectric (default 1)
        solvent_dielectric=X     GB solvent dielectric (default 78.5)
        threads=N                threads inside one evaluate call (default 1: the host already splits
                                 batches over threads; 0 = all cores): batches >= 64 are split over them
                                 (>= 2 from 100 atoms); a batch smaller than N splits each
                                 configuration's pair rows over them from split_pairs_from atoms
        split_pairs_from=ATOMS   with threads=N >= 2 and fewer than N configurations in a call, split one
                                 configuration's pair rows over the N threads from this many atoms
                                 (default \(defaultSplitPairsFrom); the same bits for the same N, the
                                 one-thread numbers to rounding; kernel=simd only, 0 = any size)
        kernel=simd|scalar       pair-loop implementation (default simd; scalar is the plain reference loop,
                                 always one thread per configuration)
        precision=double|mixed   pair-term arithmetic (default double; mixed: LJ, Coulomb and GB pair terms
                                 in single precision on 8 lanes with each row's sums in double, as
                                 OpenMM's CPU platform: energies to ~1e-6 relative, forces to ~1e-6 of
                                 the largest; every solvent, without cutoff= and with kernel=simd only,
                                 refused otherwise)
        cutoff=Å                 non-bonded cutoff with neighbour lists, as OpenMM's CutoffNonPeriodic: LJ
                                 truncated, Coulomb with a reaction field, GB integrals and pair terms cut
                                 (default none: every pair, exact)
        reaction_field_dielectric=X  ε_rf of the cutoff's reaction field (default 78.3 in vacuum, 1 with
                                 GB, as OpenMM's createSystem sets them)
        neighbour_list=auto|yes|no   with a cutoff: neighbour rows from a cell list, or runs of all j > i
                                 cut per pair (default auto: rows when the molecule is large against the
                                 cutoff sphere); the same sum either way
        """

    /// Atoms from which a call with fewer configurations than threads splits each
    /// configuration's pair rows over the threads.
    static let defaultSplitPairsFrom = 300

    /// The prmtop's bonds (with and without hydrogen), 0-based.
    func bonds() -> [(Int, Int)]? {
        topology.bonds.isEmpty ? nil : topology.bonds.map { (Int($0.i), Int($0.j)) }
    }

    let topology: AmberTopology
    let energy: AmberEnergy
    /// Start positions [n][3] in Å (start=, a file beside the prmtop, or the shipped one).
    let start: [Double]
    /// Threads per evaluate call (the host already splits batches over threads).
    let threads: Int
    /// Atoms from which a batch smaller than `threads` splits pair rows over the threads.
    let splitPairsFrom: Int
    var particleCount: Int { topology.count }
    let dimension = 3
    var box: [Double]? { nil }
    let lengthUnitAngstrom = 1.0

    /// - Throws: `PluginFailure` for a bad parameter, `AmberFileError` for a missing or bad file.
    init(parameters: Parameters) throws {
        try parameters.requireKnown(Self.keys)
        let solvent: Solvent = try parameters.choice("solvent", default: .obc1)
        let temperature = try parameters.double("temperature", default: 300, positive: true)
        let soluteDielectric = try parameters.double("solute_dielectric", default: 1, positive: true)
        let solventDielectric = try parameters.double("solvent_dielectric", default: 78.5, positive: true)
        let kernel: AmberEnergy.Kernel = try parameters.choice("kernel", default: .simd)
        let precision: AmberEnergy.Precision = try parameters.choice("precision", default: .double)
        var cutoff: AmberEnergy.Cutoff?
        if parameters.has("cutoff") {
            cutoff = .init(distance: try parameters.double("cutoff", default: 0, positive: true),
                           reactionFieldDielectric: try parameters.double(
                               "reaction_field_dielectric", default: solvent == .vacuum ? 78.3 : 1, positive: true))
            cutoff?.neighbourList = try parameters.choice("neighbour_list", default: .auto)
        } else if parameters.has("reaction_field_dielectric") {
            throw PluginFailure("reaction_field_dielectric= needs cutoff=: without a cutoff there is no reaction field")
        } else if parameters.has("neighbour_list") {
            throw PluginFailure("neighbour_list= needs cutoff=: without a cutoff every pair is summed")
        }
        threads = try parameters.threads(default: 1)
        if precision == .mixed, let reason = AmberEnergy.mixedUnsupported(solvent: solvent, cutoff: cutoff, kernel: kernel) {
            throw PluginFailure(reason)
        }
        splitPairsFrom = try parameters.int("split_pairs_from", default: Self.defaultSplitPairsFrom, in: 0...Int(Int32.max))
        let prmtop = parameters.string("prmtop")
        let prmtopPath = try prmtop ?? DataFiles.find(Self.defaultPrmtop)
        topology = try AmberTopology(prmtopPath: prmtopPath)
        energy = try AmberEnergy(topology: topology, solvent: solvent, temperature: temperature,
                                 soluteDielectric: soluteDielectric, solventDielectric: solventDielectric,
                                 kernel: kernel, cutoff: cutoff, precision: precision)
        start = try Self.startPositions(given: parameters.string("start"), prmtopPath: prmtopPath,
                                        defaultPrmtop: prmtop == nil, atoms: topology.count)
    }

    /// Extensions of start-coordinate files looked for beside a prmtop, in this order.
    static let startExtensions = ["inpcrd", "rst7", "crd"]

    /// Start structure: start=PATH, else the prmtop's .inpcrd, .rst7 or .crd (the first that
    /// exists), else (default prmtop only) the shipped one.
    /// - Throws: `AmberFileError` when a user prmtop has none of them (issue 23: every atom used to
    ///   start at the origin, and MALA/PT exited 0 with u ≈ 10³³), naming the files looked for and
    ///   the start= parameter; or when the file found cannot be read.
    static func startPositions(given: String?, prmtopPath: String, defaultPrmtop: Bool,
                               atoms: Int) throws -> [Double] {
        if let given { return try Inpcrd.read(path: given, atoms: atoms) }
        let base = (prmtopPath as NSString).deletingPathExtension
        let guesses = startExtensions.map { "\(base).\($0)" }
        if let found = guesses.first(where: { FileManager.default.isReadableFile(atPath: $0) }) {
            return try Inpcrd.read(path: found, atoms: atoms)
        }
        if defaultPrmtop { return try Inpcrd.read(path: DataFiles.find(defaultStart), atoms: atoms) }
        throw AmberFileError(description:
            "no start coordinates for prmtop=\(prmtopPath): none of \(guesses.joined(separator: ", ")) exists. "
            + "Give start=PATH (an AMBER inpcrd/rst7 with the \(atoms) atoms' positions in Å), or put one of those files beside the prmtop")
    }

    /// Reduced energies (and gradients) of `batch` configurations [batch][n][3].
    /// - Throws: `PluginFailure` naming the first non-finite energy or gradient.
    func evaluate(batch: Int, positions: UnsafePointer<Double>, energies: UnsafeMutablePointer<Double>,
                  gradients: UnsafeMutablePointer<Double>?) throws {
        let n3 = 3 * topology.count
        let beta = 1 / energy.kT
        /// Configuration b through `compute` (positions, zeroed gradient or nil → kcal/mol), reduced.
        func evaluateOne(_ b: Int, _ compute: (UnsafePointer<Double>, UnsafeMutablePointer<Double>?) -> Double) {
            let x = positions + b * n3
            let g = gradients.map { $0 + b * n3 }
            if let g { g.update(repeating: 0, count: n3) }
            energies[b] = compute(x, g) * beta
            if let g { for k in 0..<n3 { g[k] *= beta } }
        }
        if batch < threads && topology.count >= splitPairsFrom && energy.splitsPairs {
            // Fewer configurations than threads: each configuration's pair rows over all of them.
            energy.withScratches(threads) { workers in
                for b in 0..<batch { evaluateOne(b) { energy.energy($0, gradient: $1, workers: workers) } }
            }
        } else {
            // Small molecules split only batches ≥ 64 (32 per thread); from ~100 atoms one
            // configuration is work enough to give each thread its own.
            let large = topology.count >= 100
            splitBatch(batch, threads: threads, minimumBatch: large ? 2 : 64, perChunk: large ? 1 : 32) { range in
                energy.withScratch { scratch in
                    for b in range { evaluateOne(b) { energy.energy($0, gradient: $1, scratch: scratch) } }
                }
            }
        }
        try requireFinite(batch: batch, particles: topology.count, dimension: 3,
                          energies: energies, gradients: gradients)
    }

    func atom(_ index: Int) -> (name: String, element: String, residue: String, residueNumber: Int, mass: Double)? {
        let a = topology.atoms[index]
        return (a.name, a.element, a.residue, a.residueNumber, a.mass)
    }

    func initialPositions() -> [Double]? { start }
}

/// Finds the shipped data files: `$ENSEMBLE_DATA_DIR`, then `data/` in the directory of the
/// plugin .so and its parents up to 4 levels (the .so lives in <repo>/.build/release/).
enum DataFiles {
    static func candidates(_ name: String) -> [String] {
        var dirs: [String] = []
        if let env = ProcessInfo.processInfo.environment["ENSEMBLE_DATA_DIR"], !env.isEmpty {
            dirs.append(env)
        }
        if let so = pluginPath() {
            var dir = URL(fileURLWithPath: so).resolvingSymlinksInPath().deletingLastPathComponent()
            for _ in 0...4 {
                dirs.append(dir.appendingPathComponent("data").path)
                dir = dir.deletingLastPathComponent()
            }
        }
        return dirs.map { ($0 as NSString).appendingPathComponent(name) }
    }

    /// - Throws: `AmberFileError` listing every place it looked.
    static func find(_ name: String) throws -> String {
        let places = candidates(name)
        if let hit = places.first(where: { FileManager.default.isReadableFile(atPath: $0) }) { return hit }
        throw AmberFileError(description:
            "cannot find \(name); looked in: \(places.joined(separator: ", ")). Set ENSEMBLE_DATA_DIR to the "
            + "repository's data/ folder or pass prmtop=PATH (run data/make-alanine.sh to rebuild it)")
    }

    /// Path of the shared library holding this code: the mapping in /proc/self/maps that
    /// contains the plugin table's code (dladdr is not exposed by Swift's Glibc module).
    static func pluginPath() -> String? {
        let address = UInt(bitPattern: unsafeBitCast(ensemblePluginEntry as @convention(c) () -> UnsafePointer<ensemble_plugin>,
                                                     to: UnsafeRawPointer.self))
        // /proc files report size 0, so read them to the end rather than by their size.
        guard let handle = FileHandle(forReadingAtPath: "/proc/self/maps") else { return nil }
        defer { try? handle.close() }
        let maps = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[5].hasPrefix("/") else { continue }
            let range = fields[0].split(separator: "-")
            guard range.count == 2, let lo = UInt(range[0], radix: 16), let hi = UInt(range[1], radix: 16) else { continue }
            if lo <= address && address < hi { return fields[5...].joined(separator: " ") }
        }
        return nil
    }
}
