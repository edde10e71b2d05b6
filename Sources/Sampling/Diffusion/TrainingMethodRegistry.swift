import Foundation

/// The name of a training method (`ensemble train --method NAME`, the checkpoint's `method`):
/// one of `TrainingMethodRegistry.all`. Coded as its name, a string, as the checkpoints of every
/// version hold it. Each method's file declares its own name (`extension DiffusionMethod`).
public struct DiffusionMethod: RawRepresentable, Codable, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    public let rawValue: String

    /// The registered method called `rawValue` (nil: no such method).
    public init?(rawValue: String) {
        guard TrainingMethodRegistry.all.contains(where: { $0.method.name == rawValue }) else { return nil }
        self.rawValue = rawValue
    }

    /// A method's name, declared once in the method's own file.
    init(declaring name: String) { rawValue = name }

    var name: String { rawValue }
    public var description: String { rawValue }
    public static var allCases: [DiffusionMethod] { TrainingMethodRegistry.all.map(\.method) }

    /// The method's registration: its training value, options and defaults.
    public var registration: TrainingMethodRegistration { TrainingMethodRegistry.all.first { $0.method == self }! }
    /// The method's training value.
    public var training: any TrainingMethod { registration.training }
    /// Sampled by the VE reverse SDE (score models) rather than the PIS forward policy: the
    /// method's own `process`.
    public var usesVEProcess: Bool { training.process == .varianceExploding }
    /// Trained on path log-ratios (trajectory balance, log-variance).
    public var usesPaths: Bool { training.process == .pinnedBrownian }
}

/// Everything the library and the command line know of a training method, declared in the
/// method's own file: its name, a line of help, its training value, the options of
/// `ensemble train` it reads, its own settings and its recommended configuration.
public struct TrainingMethodRegistration {
    public let method: DiffusionMethod
    /// One line for `ensemble train --help`.
    public let summary: String
    public let training: any TrainingMethod
    /// The options of `ensemble train`'s shared table (Sources/Host/TrainOptions.swift) that this
    /// method reads beyond those every method reads; given to another method, each is an error
    /// that names the methods it applies to.
    public let options: Set<String>
    /// The options of the method's own settings (`settingsOptions`) with their defaults, for help and checks.
    public let ownOptions: [(name: String, valueName: String, help: String, defaultValue: String)]
    /// The method's recommended values beyond the defaults every method shares: with them,
    /// `DiffusionConfiguration.defaults(for:)`, the one source of defaults for the library and
    /// the command line.
    let recommend: (inout DiffusionConfiguration) -> Void
    /// Its own settings from `--name value` pairs of `ownOptions`, applied to a configuration.
    let parse: ([(name: String, value: String)], inout DiffusionConfiguration) throws -> Void
    /// Its own settings read from the fields of a whole configuration as coded (an older
    /// checkpoint's, where they were fields of the configuration under the same names); nil
    /// when they are not all there.
    let legacySettings: (SettingsValue) -> SettingsValue?

    /// A method whose settings are fields of the shared configuration (the first four methods).
    public init(method: DiffusionMethod, summary: String, training: any TrainingMethod, options: Set<String>,
                recommend: @escaping (inout DiffusionConfiguration) -> Void = { _ in }) {
        self.method = method
        self.summary = summary
        self.training = training
        self.options = options
        ownOptions = []
        self.recommend = recommend
        parse = { _, _ in }
        legacySettings = { _ in nil }
    }

    /// A method with a settings value of its own (`DiffusionConfiguration.methodSettings`),
    /// recommended as `Settings()` and set by its own options.
    public init<Settings: MethodSettings>(method: DiffusionMethod, summary: String, training: any TrainingMethod,
                                          options: Set<String>, settings: Settings.Type,
                                          settingsOptions: [SettingsOption<Settings>],
                                          recommend: @escaping (inout DiffusionConfiguration) -> Void = { _ in }) {
        self.method = method
        self.summary = summary
        self.training = training
        self.options = options
        ownOptions = settingsOptions.map { ($0.name, $0.valueName, $0.help, $0.show(Settings())) }
        self.recommend = { c in
            c.setSettings(Settings())
            recommend(&c)
        }
        parse = { pairs, c in
            var s: Settings = c.settings()
            for (name, value) in pairs {
                guard let option = settingsOptions.first(where: { $0.name == name }) else { continue }
                guard option.set(&s, value) else {
                    throw DiffusionError.invalidConfiguration("\(name) \(value): expected \(option.expected)")
                }
            }
            c.setSettings(s)
        }
        legacySettings = { coded in (try? coded.decoded(as: Settings.self)).map { SettingsValue($0) } }
    }

    /// The configuration of an older checkpoint (`coded`: its configuration as written), with
    /// the method's own settings read from the fields that held them before they were the
    /// method's (unchanged when it has its settings, or they were never fields).
    public func migratingSettings(of configuration: DiffusionConfiguration, coded: SettingsValue) -> DiffusionConfiguration {
        guard configuration.methodSettings == nil, let settings = legacySettings(coded) else { return configuration }
        var c = configuration
        c.methodSettings = settings
        return c
    }

    /// The configuration with the method's own options (`--name value` pairs) applied.
    /// - Throws: `DiffusionError.invalidConfiguration` for a value that does not parse.
    public func applyingOwnOptions(_ pairs: [(name: String, value: String)],
                                   to configuration: DiffusionConfiguration) throws -> DiffusionConfiguration {
        var c = configuration
        try parse(pairs, &c)
        return c
    }
}

/// Every training method, in the order of `--help`. A new method is its own file (a
/// `TrainingMethod`, its name and its `TrainingMethodRegistration`) plus one line here.
public enum TrainingMethodRegistry {
    public static let all: [TrainingMethodRegistration] = [
        .energyMatching,
        .trajectoryBalance,
        .logVariance,
        .denoisingScoreMatching,
        .targetScoreMatching,
    ]

    /// The method that reads each option of the shared table, by option name (an option no
    /// method lists is read by every method).
    public static func methods(reading option: String) -> Set<DiffusionMethod>? {
        let readers = Set(all.filter { $0.options.contains(option) }.map(\.method))
        return readers.isEmpty ? nil : readers
    }

    /// The methods whose own settings have an option of this name (empty: none).
    public static func methods(owning option: String) -> [DiffusionMethod] {
        all.filter { $0.ownOptions.contains { $0.name == option } }.map(\.method)
    }
}

// MARK: - A method's own settings

/// The settings of a method that keeps its own (typed, Codable) value: `init()` gives its
/// defaults. Stored in the configuration's `methodSettings`, so a checkpoint carries them.
public protocol MethodSettings: Codable, Equatable {
    init()
}

/// A command-line option of a method's own settings: `--name VALUE` sets one field.
public struct SettingsOption<Settings: MethodSettings> {
    public let name: String
    public let valueName: String
    public let help: String
    /// What a valid value is, for the message when one does not parse ("a positive integer").
    public let expected: String
    /// Sets the field from the text of the value; false when it does not parse.
    public let set: (inout Settings, String) -> Bool
    /// The field's value as text (the default shown by `--help`).
    public let show: (Settings) -> String

    public init(_ name: String, valueName: String, help: String, expected: String,
                set: @escaping (inout Settings, String) -> Bool, show: @escaping (Settings) -> String) {
        self.name = name
        self.valueName = valueName
        self.help = help
        self.expected = expected
        self.set = set
        self.show = show
    }

    /// An option of a positive integer field.
    public static func positive(_ name: String, _ field: WritableKeyPath<Settings, Int>, help: String) -> SettingsOption {
        SettingsOption(name, valueName: "n", help: help, expected: "a positive integer", set: { s, text in
            guard let v = Int(text), v > 0 else { return false }
            s[keyPath: field] = v
            return true
        }, show: { "\($0[keyPath: field])" })
    }

    /// An option of a non-negative integer field.
    public static func count(_ name: String, _ field: WritableKeyPath<Settings, Int>, help: String) -> SettingsOption {
        SettingsOption(name, valueName: "n", help: help, expected: "an integer ≥ 0", set: { s, text in
            guard let v = Int(text), v >= 0 else { return false }
            s[keyPath: field] = v
            return true
        }, show: { "\($0[keyPath: field])" })
    }
}

/// A method's own settings as coded data (a JSON value), so that the configuration holds any
/// method's settings without knowing their type.
public indirect enum SettingsValue: Codable, Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([SettingsValue])
    case object([String: SettingsValue])

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: Decoder) throws {
        if let keyed = try? decoder.container(keyedBy: Key.self) {
            var object: [String: SettingsValue] = [:]
            for key in keyed.allKeys { object[key.stringValue] = try keyed.decode(SettingsValue.self, forKey: key) }
            self = .object(object)
            return
        }
        if var list = try? decoder.unkeyedContainer() {
            var array: [SettingsValue] = []
            while !list.isAtEnd { array.append(try list.decode(SettingsValue.self)) }
            self = .array(array)
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() { self = .null }
        else if let b = try? single.decode(Bool.self) { self = .bool(b) }
        else if let d = try? single.decode(Double.self) { self = .number(d) }
        else { self = .string(try single.decode(String.self)) }
    }

    public func encode(to encoder: Encoder) throws {
        switch self {
        case .object(let object):
            var keyed = encoder.container(keyedBy: Key.self)
            for key in object.keys.sorted() { try keyed.encode(object[key]!, forKey: Key(stringValue: key)) }
        case .array(let array):
            var list = encoder.unkeyedContainer()
            for v in array { try list.encode(v) }
        case .null:
            var single = encoder.singleValueContainer()
            try single.encodeNil()
        case .bool(let b):
            var single = encoder.singleValueContainer()
            try single.encode(b)
        case .number(let d):
            var single = encoder.singleValueContainer()
            try single.encode(d)
        case .string(let s):
            var single = encoder.singleValueContainer()
            try single.encode(s)
        }
    }

    /// The coded form of a settings value.
    init<T: Encodable>(_ value: T) {
        let data = try! JSONEncoder().encode(value)
        self = try! JSONDecoder().decode(SettingsValue.self, from: data)
    }

    /// The settings value of this coded form.
    func decoded<T: Decodable>(as type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: JSONEncoder().encode(self))
    }
}

extension DiffusionConfiguration {
    /// The method's own settings: `methodSettings` decoded, or the settings' defaults where there are none.
    public func settings<Settings: MethodSettings>(_ type: Settings.Type = Settings.self) -> Settings {
        guard let stored = methodSettings else { return Settings() }
        do { return try stored.decoded(as: Settings.self) } catch {
            preconditionFailure("the configuration's method settings are not \(Settings.self): \(error)")
        }
    }

    /// Stores the method's own settings.
    public mutating func setSettings<Settings: MethodSettings>(_ settings: Settings) {
        methodSettings = SettingsValue(settings)
    }

    /// Changes the method's own settings (from their current values, or their defaults).
    public mutating func updateSettings<Settings: MethodSettings>(_ type: Settings.Type, _ change: (inout Settings) -> Void) {
        var s: Settings = settings()
        change(&s)
        setSettings(s)
    }
}
