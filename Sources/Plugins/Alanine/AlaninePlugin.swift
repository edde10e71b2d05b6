import EnsemblePluginABI
import Foundation

/// The `alanine` energy plugin: an AMBER force field read from a prmtop (by default the
/// shipped ff96 alanine dipeptide), in vacuum or GB-OBC implicit solvent, matching OpenMM.
/// Length unit Å; reduced energies u = U/kT.
struct AlanineParameters {
    var prmtop: String?
    var start: String?
    var solvent: Solvent = .obc1
    var temperature: Double = 300
    var soluteDielectric: Double = 1
    var solventDielectric: Double = 78.5
    /// Threads per evaluate call (the host already splits batches over threads); 0 = all cores.
    var threads: Int = 1
    var kernel: AmberEnergy.Kernel = .simd

    static let defaultPrmtop = "alanine-dipeptide-ff96.prmtop"
    static let defaultStart = "alanine-dipeptide-ff96.inpcrd"
    static let keys = ["prmtop", "start", "solvent", "temperature", "solute_dielectric", "solvent_dielectric", "threads", "kernel"]

    static let help = """
        prmtop=PATH              AMBER prmtop of a non-periodic molecule (default: data/\(defaultPrmtop),
                                 the ACE-ALA-NME dipeptide with ff96 and mbondi2 radii; searched in
                                 $ENSEMBLE_DATA_DIR, then data/ beside the plugin .so and up to 4 parents)
        start=PATH               start coordinates, AMBER inpcrd/rst7 in Å (default: the prmtop's path with
                                 .inpcrd instead of .prmtop, when that file exists)
        solvent=obc1|obc2|vacuum implicit solvent (default obc1: OpenMM implicitSolvent=OBC1, AMBER igb=2,
                                 with the ACE surface term, as in the FAB/ASBS alanine benchmark)
        temperature=K            temperature for u = U/kT, kelvin (default 300)
        solute_dielectric=X      GB solute dielectric (default 1)
        solvent_dielectric=X     GB solvent dielectric (default 78.5)
        threads=N                threads inside one evaluate call, for batches >= 64 (default 1: the host
                                 already splits batches over threads; 0 = all cores)
        kernel=simd|scalar       pair-loop implementation (default simd; scalar is the plain reference loop)
        """

    /// Parse `key=value` pairs separated by ';' or whitespace.
    /// - Throws: `AmberFileError` naming an unknown key (with the valid ones) or a bad value.
    init(_ text: String) throws {
        let items = text.split(whereSeparator: { $0 == ";" || $0.isWhitespace })
        for item in items {
            guard let eq = item.firstIndex(of: "=") else {
                throw AmberFileError(description:
                    "parameter '\(item)' is not key=value; valid keys: \(AlanineParameters.keys.joined(separator: ", "))")
            }
            let key = item[..<eq].lowercased(), value = String(item[item.index(after: eq)...])
            func number() throws -> Double {
                guard let v = Double(value), v.isFinite else {
                    throw AmberFileError(description: "parameter \(key)=\(value): not a finite number")
                }
                return v
            }
            switch key {
            case "prmtop": prmtop = value
            case "start": start = value
            case "solvent":
                guard let s = Solvent(rawValue: value.lowercased()) else {
                    throw AmberFileError(description:
                        "parameter solvent=\(value): valid values are \(Solvent.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                solvent = s
            case "temperature":
                temperature = try number()
                guard temperature > 0 else { throw AmberFileError(description: "parameter temperature=\(value): must be > 0 K") }
            case "solute_dielectric":
                soluteDielectric = try number()
                guard soluteDielectric > 0 else { throw AmberFileError(description: "parameter solute_dielectric=\(value): must be > 0") }
            case "solvent_dielectric":
                solventDielectric = try number()
                guard solventDielectric > 0 else { throw AmberFileError(description: "parameter solvent_dielectric=\(value): must be > 0") }
            case "threads":
                guard let t = Int(value), t >= 0 else {
                    throw AmberFileError(description: "parameter threads=\(value): must be an integer >= 0")
                }
                threads = t
            case "kernel":
                guard let k = AmberEnergy.Kernel(rawValue: value.lowercased()) else {
                    throw AmberFileError(description: "parameter kernel=\(value): valid values are simd, scalar")
                }
                kernel = k
            default:
                throw AmberFileError(description:
                    "unknown parameter '\(key)'; valid keys: \(AlanineParameters.keys.joined(separator: ", "))")
            }
        }
    }
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

/// One created system: the energy, the topology and the start structure.
final class AlanineSystem {
    let topology: AmberTopology
    let energy: AmberEnergy
    /// Start positions [n][3] in Å, when a start file was given or found.
    let start: [Double]?
    let threads: Int

    init(parameters text: String) throws {
        let p = try AlanineParameters(text)
        let prmtopPath = try p.prmtop ?? DataFiles.find(AlanineParameters.defaultPrmtop)
        topology = try AmberTopology(prmtopPath: prmtopPath)
        energy = try AmberEnergy(topology: topology, solvent: p.solvent, temperature: p.temperature,
                                 soluteDielectric: p.soluteDielectric, solventDielectric: p.solventDielectric,
                                 kernel: p.kernel)
        // Start structure: start=PATH, else the prmtop's .inpcrd, else (default prmtop only)
        // the shipped one; a user prmtop without an .inpcrd beside it simply has none.
        let guess = (prmtopPath as NSString).deletingPathExtension + ".inpcrd"
        if let s = p.start {
            start = try Inpcrd.read(path: s, atoms: topology.count)
        } else if FileManager.default.isReadableFile(atPath: guess) {
            start = try Inpcrd.read(path: guess, atoms: topology.count)
        } else if p.prmtop == nil {
            start = try Inpcrd.read(path: DataFiles.find(AlanineParameters.defaultStart), atoms: topology.count)
        } else {
            start = nil
        }
        threads = p.threads == 0 ? ProcessInfo.processInfo.activeProcessorCount : p.threads
    }

    /// Reduced energies (and gradients) of `batch` configurations.
    /// - Returns: nil on success, else an error message.
    func evaluate(batch: Int, positions: UnsafePointer<Double>, energies: UnsafeMutablePointer<Double>,
                  gradients: UnsafeMutablePointer<Double>?) -> String? {
        let n3 = 3 * topology.count
        let beta = 1 / energy.kT
        let chunks = batch >= 64 ? max(1, min(threads, batch / 32)) : 1
        // Run chunk c of the batch; each chunk has its own scratch.
        let run: (Int) -> Void = { c in
            let lo = batch * c / chunks, hi = batch * (c + 1) / chunks
            let scratch = AmberEnergy.Scratch(n: self.topology.count)
            for b in lo..<hi {
                let x = positions + b * n3
                let g = gradients.map { $0 + b * n3 }
                if let g { g.update(repeating: 0, count: n3) }
                let u = self.energy.energy(x, gradient: g, scratch: scratch) * beta
                energies[b] = u
                if let g { for k in 0..<n3 { g[k] *= beta } }
            }
        }
        if chunks == 1 { run(0) } else { DispatchQueue.concurrentPerform(iterations: chunks, execute: run) }
        for b in 0..<batch where !energies[b].isFinite {
            return "non-finite energy \(energies[b]) for configuration \(b) (overlapping atoms or non-finite positions?)"
        }
        if let gradients {
            for k in 0..<(batch * n3) where !gradients[k].isFinite {
                return "non-finite gradient for configuration \(k / n3), atom \(k % n3 / 3)"
            }
        }
        return nil
    }
}

// MARK: - C table

private func writeError(_ message: String, _ error: UnsafeMutablePointer<CChar>?, _ capacity: Int) {
    guard let error, capacity > 0 else { return }
    let bytes = Array(message.utf8.prefix(capacity - 1))
    bytes.withUnsafeBufferPointer { buf in
        buf.withMemoryRebound(to: CChar.self) { error.update(from: $0.baseAddress!, count: bytes.count) }
    }
    error[bytes.count] = 0
}

private func system(_ p: OpaquePointer?) -> AlanineSystem {
    Unmanaged<AlanineSystem>.fromOpaque(UnsafeRawPointer(p!)).takeUnretainedValue()
}

private func copyName(_ s: String, into tuple: UnsafeMutableRawPointer, capacity: Int) {
    let bytes = Array(s.utf8.prefix(capacity - 1))
    let out = tuple.assumingMemoryBound(to: CChar.self)
    for (k, b) in bytes.enumerated() { out[k] = CChar(bitPattern: b) }
    for k in bytes.count..<capacity { out[k] = 0 }
}

/// The static plugin table, allocated once and never freed.
let alaninePluginTable: UnsafeMutablePointer<ensemble_plugin> = {
    let table = UnsafeMutablePointer<ensemble_plugin>.allocate(capacity: 1)
    table.initialize(to: ensemble_plugin(
        abi_version: UInt32(ENSEMBLE_PLUGIN_ABI_VERSION),
        struct_size: UInt32(MemoryLayout<ensemble_plugin>.size),
        name: UnsafePointer(strdup("alanine")),
        version: UnsafePointer(strdup("1.0.0")),
        description: UnsafePointer(strdup(
            "AMBER force field from a prmtop (default: alanine dipeptide, ff96), vacuum or GB-OBC1/OBC2 "
            + "implicit solvent as OpenMM computes it; lengths in Å, u = U/kT")),
        parameters_help: UnsafePointer(strdup(AlanineParameters.help)),
        create: { parameters, error, capacity in
            do {
                let text = parameters.map { String(cString: $0) } ?? ""
                let s = try AlanineSystem(parameters: text)
                return OpaquePointer(Unmanaged.passRetained(s).toOpaque())
            } catch let failure {
                writeError("alanine: \(failure)", error, capacity)
                return nil
            }
        },
        destroy: { p in
            guard let p else { return }
            Unmanaged<AlanineSystem>.fromOpaque(UnsafeRawPointer(p)).release()
        },
        particle_count: { p in Int32(system(p).topology.count) },
        dimension: { _ in 3 },
        box: { _, _ in 0 },
        length_unit_angstrom: { _ in 1.0 },
        evaluate: { p, batch, positions, energies, gradients, error, capacity in
            guard let p, let positions, let energies, batch >= 0 else {
                writeError("alanine: evaluate needs a system, positions and energies", error, capacity)
                return 1
            }
            if let message = system(p).evaluate(batch: Int(batch), positions: positions,
                                                energies: energies, gradients: gradients) {
                writeError("alanine: \(message)", error, capacity)
                return 1
            }
            return 0
        },
        atom: { p, index, out in
            let s = system(p)
            guard index >= 0, Int(index) < s.topology.count, let out else { return 1 }
            let a = s.topology.atoms[Int(index)]
            withUnsafeMutablePointer(to: &out.pointee.name) { copyName(a.name, into: $0, capacity: 8) }
            withUnsafeMutablePointer(to: &out.pointee.element) { copyName(a.element, into: $0, capacity: 4) }
            withUnsafeMutablePointer(to: &out.pointee.residue) { copyName(a.residue, into: $0, capacity: 8) }
            out.pointee.residue_number = Int32(a.residueNumber)
            out.pointee.mass = a.mass
            return 0
        },
        initial_positions: { p, out in
            guard let out else { return 1 }
            let s = system(p)
            guard let start = s.start else { return 1 }
            for (k, v) in start.enumerated() { out[k] = v }
            return 0
        }))
    return table
}()

/// The one exported symbol: the plugin table.
@_cdecl("ensemble_plugin_entry")
public func ensemblePluginEntry() -> UnsafePointer<ensemble_plugin> {
    UnsafePointer(alaninePluginTable)
}
