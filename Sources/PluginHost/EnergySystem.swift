import Dispatch
import EnsemblePluginABI
import Foundation

/// Topology of one particle, as a plugin describes it.
public struct PluginAtom: Equatable, Sendable {
    public var name: String
    public var element: String
    public var residue: String
    public var residueNumber: Int
    /// Mass in g/mol.
    public var mass: Double

    public init(name: String, element: String, residue: String, residueNumber: Int, mass: Double) {
        self.name = name
        self.element = element
        self.residue = residue
        self.residueNumber = residueNumber
        self.mass = mass
    }
}

/// An evaluation failed inside the plugin, or returned a non-finite number.
public enum EnergyError: Error, CustomStringConvertible {
    case pluginFailed(plugin: String, message: String)
    case nonFinite(plugin: String, configuration: Int, value: Double)
    case shapeMismatch(expected: Int, got: Int)

    public var description: String {
        switch self {
        case let .pluginFailed(plugin, message): return "\(plugin): evaluate failed: \(message)"
        case let .nonFinite(plugin, configuration, value):
            return "\(plugin): non-finite energy or gradient (\(value)) for configuration \(configuration) of the batch"
        case let .shapeMismatch(expected, got):
            return "positions array has \(got) values, expected \(expected) (batch × particles × dimension)"
        }
    }
}

extension EnergyError: LocalizedError {
    public var errorDescription: String? { description }
}

/// Thrown by `EnergySystem.evaluate` instead of calling the plugin once the system's
/// `interruption` check says so (the user pressed Ctrl-C): every loop that evaluates energies,
/// burn-in included, ends at its next evaluation. Not an `EnergyError`, so samplers that treat
/// a plugin's refusal as a rejected move do not swallow it.
public struct EvaluationInterrupted: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "interrupted before the next energy evaluation" }
}

/// A system created by a plugin: reduced energies u = U/kT and gradients ∇u.
///
/// This is the one place energy and gradient evaluations are counted, so no
/// sampler can forget to report its budget. Batches are split across
/// `threads` threads (the plugin's `evaluate` is reentrant by contract).
public final class EnergySystem: @unchecked Sendable {
    public let plugin: Plugin
    /// The `key=value` parameter string the system was created from.
    public let parameters: String
    public let particleCount: Int
    /// Spatial dimension d (2 or 3).
    public let dimension: Int
    /// Periodic edge lengths (plugin length units), or nil for free space.
    public let box: [Double]?
    /// One plugin length unit in Å.
    public let lengthUnitAngstrom: Double
    /// Threads used to evaluate a batch (1 = the calling thread only).
    public var threads: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)
    /// Asked before every evaluation: when it answers true, `evaluate` throws
    /// `EvaluationInterrupted` instead of calling the plugin (nil: never). A host that handles
    /// SIGINT sets it so that long loops it cannot see into stop within one step.
    public var interruption: (@Sendable () -> Bool)?

    let handle: OpaquePointer
    private let lock = NSLock()
    private var _energyEvaluations = 0
    private var _gradientEvaluations = 0

    /// Configurations whose energy was computed so far.
    public var energyEvaluations: Int { lock.withLock { _energyEvaluations } }
    /// Configurations whose gradient was computed so far.
    public var gradientEvaluations: Int { lock.withLock { _gradientEvaluations } }

    /// Coordinates per configuration: particles × dimension.
    public var coordinateCount: Int { particleCount * dimension }

    /// Takes ownership of `handle`: on success `deinit` destroys it; when the plugin's answers
    /// are refused, `init` destroys it once and throws. The checks run before any stored
    /// property is set, so a throwing `init` never reaches `deinit` (which, once the object is
    /// fully initialised, Swift runs even when `init` throws — the double `destroy()` of issue 23).
    init(plugin: Plugin, handle: OpaquePointer, parameters: String) throws {
        let table = plugin.table.pointee
        let particleCount = Int(table.particle_count(handle))
        let dimension = Int(table.dimension(handle))
        let lengthUnitAngstrom = table.length_unit_angstrom.map { $0(handle) } ?? 1
        var box: [Double]? = nil
        if (1...3).contains(dimension) {
            var edges = [Double](repeating: 0, count: dimension)
            if let boxFunction = table.box, boxFunction(handle, &edges) == 1 { box = edges }
        }
        func refuse(_ message: String) -> PluginError {
            table.destroy(handle)
            return PluginError.invalidSystem(plugin: plugin.name, message: message)
        }
        guard particleCount > 0 else { throw refuse("particle_count is \(particleCount)") }
        guard (1...3).contains(dimension) else { throw refuse("dimension is \(dimension), expected 1, 2 or 3") }
        guard lengthUnitAngstrom.isFinite, lengthUnitAngstrom > 0 else {
            throw refuse("length_unit_angstrom is \(lengthUnitAngstrom)")
        }
        if let box, box.contains(where: { !($0 > 0) || !$0.isFinite }) {
            throw refuse("box edges \(box) must be positive")
        }
        self.plugin = plugin
        self.handle = handle
        self.parameters = parameters
        self.particleCount = particleCount
        self.dimension = dimension
        self.lengthUnitAngstrom = lengthUnitAngstrom
        self.box = box
    }

    deinit { plugin.table.pointee.destroy(handle) }

    /// Topology of every particle, or nil when the plugin gives none.
    public func atoms() -> [PluginAtom]? {
        guard let atomFunction = plugin.table.pointee.atom else { return nil }
        var result: [PluginAtom] = []
        for index in 0..<particleCount {
            var raw = ensemble_atom()
            guard atomFunction(handle, Int32(index), &raw) == 0 else { return nil }
            result.append(PluginAtom(
                name: fixedString(&raw.name), element: fixedString(&raw.element),
                residue: fixedString(&raw.residue), residueNumber: Int(raw.residue_number), mass: raw.mass))
        }
        return result
    }

    /// The molecule's covalent bonds as 0-based index pairs (i < j, sorted), or nil when the plugin
    /// reports none (no `bonds` function, an older table, or an error).
    public func bonds() -> [(Int, Int)]? {
        let end = MemoryLayout<ensemble_plugin>.offset(of: \ensemble_plugin.bonds)! + MemoryLayout<Int>.size
        guard plugin.tableSize >= end, let function = plugin.table.pointee.bonds else { return nil }
        let count = function(handle, nil, 0)
        guard count > 0 else { return nil }
        var pairs = [Int32](repeating: -1, count: 2 * Int(count))
        guard function(handle, &pairs, count) == count else { return nil }
        var result: [(Int, Int)] = []
        for k in 0..<Int(count) {
            let i = Int(pairs[2 * k]), j = Int(pairs[2 * k + 1])
            guard i >= 0, j >= 0, i < particleCount, j < particleCount, i != j else { return nil }
            result.append((min(i, j), max(i, j)))
        }
        return result.sorted { $0 < $1 }
    }

    /// The plugin's start configuration [n·d], or nil.
    public func initialPositions() -> [Double]? {
        guard let function = plugin.table.pointee.initial_positions else { return nil }
        var positions = [Double](repeating: 0, count: coordinateCount)
        return function(handle, &positions) == 0 ? positions : nil
    }

    /// Reduced energies (and gradients) of `batch` configurations.
    /// - Parameters:
    ///   - positions: [batch, particles, dimension], row-major.
    ///   - withGradients: also compute ∇u, same layout as `positions`.
    /// - Returns: energies [batch] and gradients [batch·n·d] (empty when not requested).
    /// - Throws: `EnergyError` when the plugin fails or returns a non-finite number.
    public func evaluate(_ positions: [Double], batch: Int, withGradients: Bool = true) throws
        -> (energies: [Double], gradients: [Double])
    {
        var energies = [Double](repeating: 0, count: batch)
        var gradients = [Double](repeating: 0, count: withGradients ? positions.count : 0)
        try positions.withUnsafeBufferPointer { p in
            try energies.withUnsafeMutableBufferPointer { e in
                try gradients.withUnsafeMutableBufferPointer { g in
                    try evaluate(positions: p, batch: batch, energies: e, gradients: withGradients ? g : nil)
                }
            }
        }
        return (energies, gradients)
    }

    /// Reduced energy of one configuration.
    public func energy(_ positions: [Double]) throws -> Double {
        try evaluate(positions, batch: 1, withGradients: false).energies[0]
    }

    /// In-place form of `evaluate`: no allocation besides the per-thread error buffers.
    public func evaluate(positions: UnsafeBufferPointer<Double>, batch: Int,
                         energies: UnsafeMutableBufferPointer<Double>,
                         gradients: UnsafeMutableBufferPointer<Double>?) throws {
        let stride = coordinateCount
        guard positions.count == batch * stride else {
            throw EnergyError.shapeMismatch(expected: batch * stride, got: positions.count)
        }
        guard batch > 0 else { return }
        if let interruption, interruption() { throw EvaluationInterrupted() }
        let evaluateFunction = plugin.table.pointee.evaluate!
        let chunks = min(threads, batch)
        let perChunk = (batch + chunks - 1) / chunks
        var failures = [String?](repeating: nil, count: chunks)
        let handle = self.handle
        failures.withUnsafeMutableBufferPointer { slots in
            let failureSlots = slots
            let work = { (chunk: Int) in
                let start = chunk * perChunk
                let count = min(perChunk, batch - start)
                guard count > 0 else { return }
                var error = [CChar](repeating: 0, count: 1024)
                let status = evaluateFunction(
                    handle, Int64(count), positions.baseAddress! + start * stride,
                    energies.baseAddress! + start,
                    gradients.map { $0.baseAddress! + start * stride },
                    &error, error.count)
                if status != 0 {
                    let text = String(cString: error)
                    failureSlots[chunk] = text.isEmpty ? "status \(status)" : text
                }
            }
            if chunks == 1 { work(0) } else { DispatchQueue.concurrentPerform(iterations: chunks, execute: work) }
        }
        lock.withLock {
            _energyEvaluations += batch
            if gradients != nil { _gradientEvaluations += batch }
        }
        if let message = failures.compactMap({ $0 }).first {
            throw EnergyError.pluginFailed(plugin: plugin.name, message: message)
        }
        for b in 0..<batch where !energies[b].isFinite {
            throw EnergyError.nonFinite(plugin: plugin.name, configuration: b, value: energies[b])
        }
        if let gradients {
            for i in 0..<gradients.count where !gradients[i].isFinite {
                throw EnergyError.nonFinite(plugin: plugin.name, configuration: i / stride, value: gradients[i])
            }
        }
    }

    /// Whether u is invariant under a common translation of all particles: free
    /// space, at least two particles, u(x′ + c) = u(x′) for a shift c and
    /// Σ_i ∇_i u(x′) = 0, tested at x′ = `positions` plus a small fixed perturbation
    /// (so a point where ∇u vanishes cannot pass trivially). Then samplers move in
    /// the zero-centre-of-mass subspace.
    public func isTranslationInvariant(at positions: [Double]) throws -> Bool {
        guard box == nil, particleCount >= 2 else { return false }
        var state: UInt64 = 0x5EED
        let perturbed = positions.map { value -> Double in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return value + 0.01 * (Double(state >> 11) * 0x1.0p-53 - 0.5)
        }
        let shifted = perturbed.enumerated().map { $0.element + [0.37, -0.81, 0.53][$0.offset % dimension] }
        let (u, gradient) = try evaluate(perturbed + shifted, batch: 2)
        guard abs(u[0] - u[1]) <= 1e-9 * max(1, abs(u[0])) else { return false }
        var norm = 0.0
        var total = [Double](repeating: 0, count: dimension)
        for i in 0..<particleCount {
            for k in 0..<dimension {
                let g = gradient[i * dimension + k]
                total[k] += g
                norm += g * g
            }
        }
        let net = total.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return norm > 0 && net <= 1e-8 * norm.squareRoot() * Double(particleCount)
    }
}

/// Read a fixed-size C char array (a tuple) as a Swift string.
private func fixedString<T>(_ tuple: inout T) -> String {
    withUnsafeBytes(of: &tuple) { raw in
        let bytes = raw.bindMemory(to: UInt8.self)
        let end = bytes.firstIndex(of: 0) ?? bytes.count
        return String(decoding: bytes[..<end], as: UTF8.self)
    }
}
