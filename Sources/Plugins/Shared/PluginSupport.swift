// PluginSupport.swift — the C-table plumbing every shipped Swift plugin shares.
//
// This one file is compiled into each plugin target (through a symlink), so
// each plugin gets its own copy inside its own module: no Swift type ever
// crosses between two loaded images. A plugin provides a final class
// conforming to `PluginSystem` and names it with `typealias ThisSystem = …`;
// this file builds the `ensemble_plugin` table and exports the entry symbol.
// It also holds what more than one plugin needs around `evaluate`: the
// `key=value` parser, batch splitting over threads and the non-finite check.
import EnsemblePluginABI
import Foundation

/// A failure with a message for the host (parameter errors, bad input).
struct PluginFailure: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

/// What a Swift plugin implements. Units are the plugin's own; energies reduced (÷kT).
protocol PluginSystem: AnyObject {
    static var name: String { get }
    static var version: String { get }
    static var summary: String { get }
    static var parametersHelp: String { get }
    /// Put before every message written to the host (create and evaluate errors); default none.
    static var messagePrefix: String { get }
    init(parameters: Parameters) throws
    var particleCount: Int { get }
    var dimension: Int { get }
    /// Periodic edge lengths, or nil.
    var box: [Double]? { get }
    var lengthUnitAngstrom: Double { get }
    /// u and (if `gradients` is non-nil) ∇u for `batch` configurations laid out [batch][n][d].
    func evaluate(batch: Int, positions: UnsafePointer<Double>, energies: UnsafeMutablePointer<Double>,
                  gradients: UnsafeMutablePointer<Double>?) throws
    func atom(_ index: Int) -> (name: String, element: String, residue: String, residueNumber: Int, mass: Double)?
    func initialPositions() -> [Double]?
    /// Covalent bonds as 0-based index pairs, or nil (no bond graph).
    func bonds() -> [(Int, Int)]?
}

extension PluginSystem {
    static var messagePrefix: String { "" }
    func bonds() -> [(Int, Int)]? { nil }
}

/// `key=value` pairs separated by ';' or whitespace, checked against a list of valid keys.
struct Parameters {
    private(set) var values: [String: String] = [:]
    private var used = Set<String>()

    /// - Throws: `PluginFailure` for a token without '=', an empty key or value, or a repeated key.
    init(_ text: String) throws {
        let tokens = text.split(whereSeparator: { $0 == ";" || $0.isWhitespace })
        for token in tokens {
            guard let eq = token.firstIndex(of: "=") else {
                throw PluginFailure("malformed parameter '\(token)': expected key=value")
            }
            let key = token[..<eq].lowercased()
            let value = String(token[token.index(after: eq)...])
            guard !key.isEmpty, !value.isEmpty else {
                throw PluginFailure("malformed parameter '\(token)': expected key=value")
            }
            guard values[key] == nil else { throw PluginFailure("parameter '\(key)' given twice") }
            values[key] = value
        }
    }

    /// Reject keys outside `valid`, naming the key and listing the valid ones.
    func requireKnown(_ valid: [String]) throws {
        for key in values.keys.sorted() where !valid.contains(key) {
            throw PluginFailure("unknown parameter '\(key)' (valid: \(valid.joined(separator: ", ")))")
        }
    }

    func has(_ key: String) -> Bool { values[key] != nil }

    func string(_ key: String, default fallback: String) -> String { values[key] ?? fallback }

    /// A string value (a file path, say) as given, or nil when the key is absent.
    func string(_ key: String) -> String? { values[key] }

    /// One of an enumeration's raw values, compared in lower case.
    func choice<T: CaseIterable & RawRepresentable>(_ key: String, default fallback: T) throws -> T
        where T.RawValue == String
    {
        guard let text = values[key] else { return fallback }
        guard let value = T(rawValue: text.lowercased()) else {
            let valid = T.allCases.map(\.rawValue).joined(separator: ", ")
            throw PluginFailure("parameter '\(key)': unknown value '\(text)' (valid: \(valid))")
        }
        return value
    }

    /// A thread count ≥ 0, where 0 means every active core.
    func threads(_ key: String = "threads", default fallback: Int) throws -> Int {
        guard let text = values[key] else { return fallback }
        guard let value = Int(text) else { throw PluginFailure("parameter '\(key)': '\(text)' is not an integer") }
        guard value >= 0 else { throw PluginFailure("parameter '\(key)' must be ≥ 0 (0 = all cores), got \(value)") }
        return value == 0 ? ProcessInfo.processInfo.activeProcessorCount : value
    }

    /// A finite number, optionally restricted to (0, ∞).
    func double(_ key: String, default fallback: Double, positive: Bool = false) throws -> Double {
        guard let text = values[key] else { return fallback }
        guard let value = Double(text), value.isFinite else {
            throw PluginFailure("parameter '\(key)': '\(text)' is not a finite number")
        }
        if positive && !(value > 0) { throw PluginFailure("parameter '\(key)' must be > 0, got \(text)") }
        return value
    }

    /// An integer within `range`.
    func int(_ key: String, default fallback: Int, in range: ClosedRange<Int>) throws -> Int {
        guard let text = values[key] else { return fallback }
        guard let value = Int(text) else { throw PluginFailure("parameter '\(key)': '\(text)' is not an integer") }
        guard range.contains(value) else {
            throw PluginFailure("parameter '\(key)' must be in \(range.lowerBound)...\(range.upperBound), got \(value)")
        }
        return value
    }

    /// A comma-separated list of finite numbers.
    func doubles(_ key: String) throws -> [Double]? {
        guard let text = values[key] else { return nil }
        let parts = text.split(separator: ",").map { Double($0) }
        guard !parts.isEmpty, parts.allSatisfy({ $0?.isFinite == true }) else {
            throw PluginFailure("parameter '\(key)': '\(text)' is not a comma-separated list of numbers")
        }
        return parts.map { $0! }
    }
}

/// Run `body` over the configurations 0..<batch, split into contiguous chunks run
/// concurrently: one chunk below `minimumBatch`, else up to `threads` chunks of at least
/// `perChunk` configurations each. `body` must be safe to run concurrently (own scratch).
func splitBatch(_ batch: Int, threads: Int, minimumBatch: Int = 64, perChunk: Int = 32,
                _ body: (Range<Int>) -> Void) {
    let chunks = batch >= minimumBatch ? max(1, min(threads, batch / perChunk)) : 1
    if chunks == 1 { body(0..<batch); return }
    DispatchQueue.concurrentPerform(iterations: chunks) { c in
        body(batch * c / chunks ..< batch * (c + 1) / chunks)
    }
}

/// Throw for the first non-finite energy, then the first non-finite gradient component, of
/// `batch` configurations of `particles` × `dimension` coordinates.
func requireFinite(batch: Int, particles: Int, dimension: Int, energies: UnsafePointer<Double>,
                   gradients: UnsafePointer<Double>?) throws {
    for b in 0..<batch where !energies[b].isFinite {
        throw PluginFailure(
            "non-finite energy \(energies[b]) for configuration \(b) (overlapping atoms or non-finite positions?)")
    }
    guard let gradients else { return }
    let stride = particles * dimension
    for k in 0..<(batch * stride) where !gradients[k].isFinite {
        throw PluginFailure("non-finite gradient for configuration \(k / stride), atom \(k % stride / dimension)")
    }
}

/// Copy `message` into a C buffer of `capacity` bytes, always NUL-terminated.
func writeMessage(_ message: String, to buffer: UnsafeMutablePointer<CChar>?, capacity: Int) {
    guard let buffer, capacity > 0 else { return }
    let bytes = Array(message.utf8.prefix(capacity - 1))
    for (i, byte) in bytes.enumerated() { buffer[i] = CChar(bitPattern: byte) }
    buffer[bytes.count] = 0
}

/// Copy `text` into a fixed-size C char array (a tuple), truncating, NUL-terminated.
func writeFixed<T>(_ text: String, into field: inout T) {
    withUnsafeMutableBytes(of: &field) { raw in
        raw.initializeMemory(as: UInt8.self, repeating: 0)
        for (i, byte) in text.utf8.prefix(raw.count - 1).enumerated() { raw[i] = byte }
    }
}

private func describe(_ error: Error) -> String {
    ThisSystem.messagePrefix + ((error as? PluginFailure)?.message ?? "\(error)")
}

private func system(_ pointer: OpaquePointer?) -> ThisSystem {
    Unmanaged<ThisSystem>.fromOpaque(UnsafeRawPointer(pointer!)).takeUnretainedValue()
}

/// Strings handed to C must outlive the table: keep them in static storage.
private let staticStrings: [UnsafePointer<CChar>] = {
    let texts: [String] = [ThisSystem.name, ThisSystem.version, ThisSystem.summary, ThisSystem.parametersHelp]
    return texts.map { UnsafePointer(strdup($0)!) }
}()

private let pluginTable: UnsafeMutablePointer<ensemble_plugin> = {
    let table = UnsafeMutablePointer<ensemble_plugin>.allocate(capacity: 1)
    table.initialize(to: ensemble_plugin(
        abi_version: UInt32(ENSEMBLE_PLUGIN_ABI_VERSION),
        struct_size: UInt32(MemoryLayout<ensemble_plugin>.size),
        name: staticStrings[0], version: staticStrings[1],
        description: staticStrings[2], parameters_help: staticStrings[3],
        create: { parameters, errorBuffer, capacity in
            do {
                let made = try ThisSystem(parameters: Parameters(parameters.map { String(cString: $0) } ?? ""))
                return OpaquePointer(Unmanaged.passRetained(made).toOpaque())
            } catch {
                writeMessage(describe(error), to: errorBuffer, capacity: capacity)
            }
            return nil
        },
        destroy: { pointer in
            guard let pointer else { return }
            Unmanaged<ThisSystem>.fromOpaque(UnsafeRawPointer(pointer)).release()
        },
        particle_count: { Int32(system($0).particleCount) },
        dimension: { Int32(system($0).dimension) },
        box: { pointer, edges in
            guard let box = system(pointer).box else { return 0 }
            for (i, edge) in box.enumerated() { edges?[i] = edge }
            return 1
        },
        length_unit_angstrom: { system($0).lengthUnitAngstrom },
        evaluate: { pointer, batch, positions, energies, gradients, errorBuffer, capacity in
            guard pointer != nil else {
                writeMessage(describe(PluginFailure("NULL system")), to: errorBuffer, capacity: capacity)
                return 1
            }
            guard batch >= 0, let positions, let energies else {
                writeMessage(describe(PluginFailure("NULL positions or energies")), to: errorBuffer, capacity: capacity)
                return 1
            }
            do {
                try system(pointer).evaluate(batch: Int(batch), positions: positions, energies: energies,
                                             gradients: gradients)
                return 0
            } catch {
                writeMessage(describe(error), to: errorBuffer, capacity: capacity)
            }
            return 1
        },
        atom: { pointer, index, out in
            let s = system(pointer)
            guard let out, index >= 0, Int(index) < s.particleCount, let atom = s.atom(Int(index)) else { return 1 }
            writeFixed(atom.name, into: &out.pointee.name)
            writeFixed(atom.element, into: &out.pointee.element)
            writeFixed(atom.residue, into: &out.pointee.residue)
            out.pointee.residue_number = Int32(atom.residueNumber)
            out.pointee.mass = atom.mass
            return 0
        },
        initial_positions: { pointer, positions in
            guard let positions, let start = system(pointer).initialPositions() else { return 1 }
            for (i, value) in start.enumerated() { positions[i] = value }
            return 0
        },
        bonds: { pointer, pairs, capacity in
            guard pointer != nil, let bonds = system(pointer).bonds() else { return 0 }
            for (k, bond) in bonds.prefix(Int(max(0, capacity))).enumerated() {
                pairs?[2 * k] = Int32(bond.0)
                pairs?[2 * k + 1] = Int32(bond.1)
            }
            return Int32(bonds.count)
        }))
    return table
}()

/// The one exported symbol.
@_cdecl("ensemble_plugin_entry")
public func ensemblePluginEntry() -> UnsafePointer<ensemble_plugin> {
    UnsafePointer(pluginTable)
}

/// An overlap-free start: the n grid points nearest the centre of a square or
/// cubic lattice with the given spacing, then centred on the origin.
func latticeStart(particles: Int, dimension: Int, spacing: Double) -> [Double] {
    let side = Int((Double(particles).squareRoot() * 2).rounded(.up)) + 1
    var points: [[Double]] = []
    func visit(_ prefix: [Double]) {
        if prefix.count == dimension { points.append(prefix); return }
        for i in 0..<side { visit(prefix + [(Double(i) - Double(side - 1) / 2) * spacing]) }
    }
    visit([])
    points.sort { a, b in
        let ra = a.reduce(0) { $0 + $1 * $1 }, rb = b.reduce(0) { $0 + $1 * $1 }
        return ra != rb ? ra < rb : a.lexicographicallyPrecedes(b)
    }
    var chosen = Array(points.prefix(particles))
    for k in 0..<dimension {
        let mean = chosen.reduce(0) { $0 + $1[k] } / Double(particles)
        for i in chosen.indices { chosen[i][k] -= mean }
    }
    return chosen.flatMap { $0 }
}
