import Equivariant
import Foundation
import PluginHost

/// A diffusion sampler's checkpoint: the plugin (name and parameters), the configuration,
/// the space, and the trainer's whole state — the network's parameters, log Z and the
/// Langevin table, RNG, optimisers, replay buffer, step, budget. JSON (Swift writes doubles
/// with round-trip precision, so a resume is bit-identical), versioned.
public struct DiffusionCheckpoint: Codable {
    /// 2: iDEM's buffer schedule and per-particle clips, the dsm method and its data settings.
    /// 3: the parameters live in the trainer's state (`state.parameters`, `state.scalars`),
    ///    which `DiffusionTrainer.step(state)` maps to the next state.
    /// 4: a method's own settings live in `configuration.methodSettings` (iDEM's were fields of the
    ///    configuration in 3; a version-3 checkpoint still reads, its fields as iDEM's settings).
    public static let currentVersion = 4
    /// The versions this build reads.
    public static let readableVersions = [3, 4]
    public var format = "ensemble-diffusion-checkpoint"
    public var version = DiffusionCheckpoint.currentVersion
    public var plugin: String
    public var pluginParameters: String
    public var configuration: DiffusionConfiguration
    public var space: DiffusionSpace
    public var state: TrainerState

    /// Snapshot of a trainer.
    public init(trainer: DiffusionTrainer) {
        plugin = trainer.system.plugin.name
        pluginParameters = trainer.system.parameters
        configuration = trainer.model.configuration
        space = trainer.model.space
        state = trainer.state
    }

    /// Writes atomically: a temporary file beside `path`, then a rename.
    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let data = try encoder.encode(self)
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)")
        try data.write(to: temporary)
        if rename(temporary.path, url.path) != 0 {
            try? FileManager.default.removeItem(at: temporary)
            throw DiffusionError.checkpoint("cannot rename \(temporary.path) to \(path): errno \(errno)")
        }
    }

    /// - Throws: `DiffusionError.checkpoint` when the file is missing, corrupt, or of another version.
    public static func read(from path: String) throws -> DiffusionCheckpoint {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw DiffusionError.checkpoint("\(path) is a directory, not a checkpoint (a file written by `ensemble train --out`)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DiffusionError.checkpoint(FileManager.default.fileExists(atPath: path)
                ? "cannot read \(path) (permissions?)" : "\(path) does not exist")
        }
        try checkReadableJSON(data, path: path)
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        struct Header: Decodable { var format: String?; var version: Int? }
        if let header = try? decoder.decode(Header.self, from: data), let version = header.version,
           header.format == "ensemble-diffusion-checkpoint", !readableVersions.contains(version) {
            throw DiffusionError.checkpoint("\(path) has checkpoint version \(version); this build reads version \(currentVersion) (and 3) only (retrain the model with this build, or use the build that wrote it)")
        }
        var checkpoint: DiffusionCheckpoint
        do {
            checkpoint = try decoder.decode(DiffusionCheckpoint.self, from: data)
            // A method's settings that an older checkpoint holds as fields of the configuration.
            struct Coded: Decodable { var configuration: SettingsValue }
            let coded = try decoder.decode(Coded.self, from: data).configuration
            checkpoint.configuration = checkpoint.configuration.method.registration
                .migratingSettings(of: checkpoint.configuration, coded: coded)
        } catch let error as DecodingError {
            throw DiffusionError.checkpoint("\(path) is not a valid checkpoint: it is JSON but not an ensemble diffusion checkpoint (\(Self.describe(error)))")
        } catch {
            throw DiffusionError.checkpoint("\(path) is not a valid checkpoint (\(error))")
        }
        guard checkpoint.format == "ensemble-diffusion-checkpoint" else {
            throw DiffusionError.checkpoint("\(path) is not an ensemble diffusion checkpoint")
        }
        guard readableVersions.contains(checkpoint.version) else {
            throw DiffusionError.checkpoint("\(path) has version \(checkpoint.version); this build reads \(currentVersion)")
        }
        return checkpoint
    }

    /// Refuses, in words, an empty file, one that is not JSON, and truncated JSON (issue 23: these
    /// gave "DecodingError.dataCorrupted …").
    static func checkReadableJSON(_ data: Data, path: String) throws {
        guard !data.isEmpty else {
            throw DiffusionError.checkpoint("\(path) is empty (0 bytes), not a checkpoint: a copy or a save that did not finish? `ensemble train` writes a complete checkpoint every --checkpoint-every steps")
        }
        guard (try? JSONSerialization.jsonObject(with: data)) == nil else { return }
        let first = data.first { !" \n\r\t".utf8.contains($0) }
        if first == UInt8(ascii: "{") {
            let ends = data.last { !" \n\r\t".utf8.contains($0) } == UInt8(ascii: "}")
            throw DiffusionError.checkpoint("\(path) is \(ends ? "damaged" : "truncated"): its JSON \(ends ? "does not parse" : "stops after \(data.count) bytes without its end") (an interrupted copy or a full disk?); use another checkpoint, or retrain")
        }
        throw DiffusionError.checkpoint("\(path) is not a checkpoint: ensemble checkpoints are JSON files written by `ensemble train --out`, this one is not JSON")
    }

    /// A decoding error in words: which key is missing or which value has the wrong type, and where.
    static func describe(_ error: DecodingError) -> String {
        func at(_ path: [CodingKey]) -> String { path.isEmpty ? "the top level" : path.map(\.stringValue).joined(separator: ".") }
        switch error {
        case let .keyNotFound(key, context): return "'\(key.stringValue)' is missing at \(at(context.codingPath))"
        case let .typeMismatch(_, context), let .valueNotFound(_, context), let .dataCorrupted(context):
            return "\(at(context.codingPath)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }

    /// The checkpoint of a score model (idem, dsm) drawn on `steps` time steps instead of its
    /// training grid: its score is a function of t, so any grid serves. The Langevin scale table
    /// (one entry per step, unused by score models) is resized with zeros; log Z is kept.
    /// - Throws: `DiffusionError.checkpoint` for a path model, whose drift is tied to its steps.
    public func drawing(timeSteps steps: Int) throws -> DiffusionCheckpoint {
        guard configuration.method.usesVEProcess else {
            throw DiffusionError.checkpoint("--time-steps applies to score models (idem, dsm); a \(configuration.method.rawValue) model's drift is tied to its \(configuration.timeSteps) training steps")
        }
        var c = self
        c.configuration.timeSteps = steps
        c.state.scalars = [state.scalars[0]] + [Double](repeating: 0, count: steps)
        return c
    }

    /// Rebuilds the model (parameters restored).
    public func makeModel(threads: Int = 2) throws -> DiffusionModel {
        let model = try DiffusionModel(configuration: configuration, space: space, threads: threads)
        guard state.parameters.count == model.network.parameterCount, state.scalars.count == model.scalars.count else {
            throw DiffusionError.checkpoint("parameter count \(state.parameters.count) does not match the configuration's network (\(model.network.parameterCount))")
        }
        model.loadForSampling(state)  // a trainer made from it takes the state's own parameters
        return model
    }

    /// Checks that `system` is the checkpoint's plugin with the same parameters.
    public func check(system: EnergySystem) throws {
        guard system.plugin.name == plugin else {
            throw DiffusionError.checkpoint("the model was trained on plugin '\(plugin)', not '\(system.plugin.name)'")
        }
        guard system.parameters == pluginParameters else {
            throw DiffusionError.checkpoint("the model was trained with parameters '\(pluginParameters)', not '\(system.parameters)'")
        }
        guard system.coordinateCount == space.coordinateCount else {
            throw DiffusionError.checkpoint("the system has \(system.coordinateCount) coordinates, the model \(space.coordinateCount)")
        }
        guard system.box == space.box else {
            throw DiffusionError.checkpoint("the system's box \(system.box.map { "\($0)" } ?? "none") differs from the model's \(space.box.map { "\($0)" } ?? "none")")
        }
    }

    /// Model and trainer, ready to continue.
    public func makeTrainer(system: EnergySystem, threads: Int = 2) throws -> DiffusionTrainer {
        try check(system: system)
        return DiffusionTrainer(model: try makeModel(threads: threads), system: system, state: state)
    }
}
