import ArgumentParser
import Foundation
import Sampling

/// An option of `ensemble train` that sets a field of the `DiffusionConfiguration`: its name,
/// how its value decodes into the configuration, and how the field reads back (for the resume
/// check). One table, `Ensemble.Train.configurationOptions`, both builds the configuration and
/// compares it with a checkpoint: no field is copied by hand twice. Which methods read an option
/// is theirs to say (`TrainingMethodRegistration.options`, in each method's file): an option no
/// method lists is read by every method.
struct ConfigurationOption {
    let name: String
    /// The methods that read the option (nil: every method); given for another method, it is an error.
    var methods: Set<DiffusionMethod>? { TrainingMethodRegistry.methods(reading: name) }
    let apply: (Ensemble.Train, inout DiffusionConfiguration) -> Void
    let text: (DiffusionConfiguration) -> String

    /// `field = decode(train[keyPath: value])`; `show` reads the field back (default: its value, nil as "none").
    init<T, F>(_ name: String, _ value: KeyPath<Ensemble.Train, T>, _ field: WritableKeyPath<DiffusionConfiguration, F>,
               show: ((F) -> String)? = nil, decode: @escaping (T, DiffusionMethod) -> F) {
        self.name = name
        apply = { train, c in c[keyPath: field] = decode(train[keyPath: value], c.method) }
        text = { c in show?(c[keyPath: field]) ?? Self.describe(c[keyPath: field]) }
    }

    /// The option's value is the field's.
    init<T>(_ name: String, _ value: KeyPath<Ensemble.Train, T>, _ field: WritableKeyPath<DiffusionConfiguration, T>) {
        self.init(name, value, field) { v, _ in v }
    }

    static func describe<F>(_ value: F) -> String {
        if let optional = value as? OptionalDescribing { return optional.describedOrNone }
        return "\(value)"
    }
}

private protocol OptionalDescribing { var describedOrNone: String { get } }
extension Optional: OptionalDescribing {
    fileprivate var describedOrNone: String { map { "\($0)" } ?? "none" }
}

extension Ensemble.Train {
    /// The library's recommended configuration of a method (`DiffusionConfiguration.defaults(for:)`):
    /// the one source of every option's default.
    static func defaults(_ method: DiffusionMethod) -> DiffusionConfiguration { DiffusionConfiguration.defaults(for: method) }
    /// The defaults that every method shares (the first method's; the σ range is the absolute one of the options).
    static let sharedDefaults = DiffusionConfiguration.defaults(for: TrainingMethodRegistry.all[0].method)

    /// "0 means none" options.
    private static func positive(_ v: Double, _ method: DiffusionMethod) -> Double? { v > 0 ? v : nil }

    /// Every option that shapes the model or its training, in the order of `--help`.
    static let configurationOptions: [ConfigurationOption] = [
        .init("--langevin-preconditioning", \.langevinPreconditioning, \.langevinPreconditioning),
        .init("--seed", \.seed, \.seed),
        // Checkpoints written before the field existed hold nil: the double engine.
        .init("--precision", \.precision, \.precision, show: { ($0 ?? .double).rawValue }) { v, _ in v },
        .init("--hidden", \.hidden, \.hidden),
        .init("--layers", \.layers, \.layers),
        .init("--batch", \.batch, \.batch),
        .init("--time-steps", \.timeSteps, \.timeSteps),
        .init("--learning-rate", \.learningRate, \.learningRate),
        .init("--buffer-capacity", \.bufferCapacity, \.bufferCapacity),
        .init("--noise-scale", \.noiseScale, \.noiseScale),
        .init("--exploration", \.exploration, \.exploration),
        .init("--no-replay", \.noReplay, \.useBuffer) { v, _ in !v },
        .init("--local-search-every", \.localSearchEvery, \.localSearchEvery),
        .init("--energy-clip", \.energyClip, \.energyClip, decode: positive),
        .init("--langevin-clip", \.langevinClip, \.langevinClip),
        .init("--langevin-init", \.langevinInit, \.langevinInitialScale, decode: positive),
        .init("--sigma-min", \.sigmaMin, \.sigmaMin),
        .init("--sigma-max", \.sigmaMax, \.sigmaMax),
        .init("--force-blend", \.forceBlend, \.forceBlendSigma),
        .init("--predict-score", \.predictScore, \.predictsNoise) { v, _ in v ? false : nil },
        .init("--data-samples", \.self, \.data) { train, method in train.dataSettings(method) },
        .init("--parameterization", \.parameterization, \.parameterization) { v, method in
            v ?? defaults(method).parameterization  // Train+Molecule turns the default off on a torus
        },
        .init("--noise-levels", \.noiseLevels, \.noiseLevels) { v, method in
            v.value != .logUniform ? v.value : nil
        },
        .init("--average-half-life", \.averageHalfLife, \.averageHalfLife) { v, method in
            v.map { positive($0, method) } ?? defaults(method).averageHalfLife
        },
        .init("--warmup-steps", \.warmupSteps, \.warmupSteps) { v, method in
            v.map { $0 > 0 ? $0 : nil } ?? defaults(method).warmupSteps
        },
        .init("--decay-start", \.decayStart, \.decayStart) { v, method in
            v.map { $0 > 0 ? $0 : nil } ?? defaults(method).decayStart
        },
        .init("--validation-fraction", \.validationFraction, \.validationFraction) { v, method in
            positive(v, method)
        },
        .init("--time-features", \.timeFeatures, \.timeEmbedding) { v, _ in v > 0 ? .sinusoidal(frequencies: v) : nil },
        .init("--validation-every", \.validationEvery, \.validationEvery),
        .init("--tanh-range", \.tanhRange, \.tanhRange) { v, method in
            v.map { positive($0, method) } ?? defaults(method).tanhRange
        },
        .init("--graph-cutoff", \.graphCutoff, \.graphCutoff),
        .init("--smooth-cutoff", \.smoothCutoff, \.smoothCutoff) { v, _ in v ? true : nil },
        .init("--temperature-conditioning", \.temperatureConditioning, \.temperatureConditioned) { v, _ in v ? true : nil },
    ]

    /// The parallel-tempering data of dsm (nil with --data); its seed is derived from --seed.
    func dataSettings(_ method: DiffusionMethod) -> MCMCSettings? {
        guard dataTrajectory == nil else { return nil }
        return MCMCSettings(chains: dataChains, burnIn: dataBurnIn, thin: dataThin, samples: dataSamples,
                            seed: SeededGenerator.derivedSeed(seed, 0x4453_4D),  // "DSM"
                            replicas: dataReplicas, maxTemperature: dataMaxTemperature)
    }

    /// Options of other methods than --method: an error naming the option and its methods.
    static var methodOptions: [(name: String, methods: Set<DiffusionMethod>)] {
        Set(TrainingMethodRegistry.all.flatMap(\.options)).sorted().map { ($0, TrainingMethodRegistry.methods(reading: $0)!) }
    }

    /// dsm's parallel-tempering data options (besides --data-samples, in the table).
    static let ptDataOptions = ["--data-replicas", "--data-max-temperature", "--data-chains", "--data-burn-in", "--data-thin"]

    /// --data replaces the parallel-tempering data; with --resume the data are the checkpoint's.
    func checkDataOptions(given: Set<String> = givenOptions()) throws {
        if dataTrajectory != nil, let pt = (Self.ptDataOptions + ["--data-samples"]).first(where: given.contains) {
            throw ValidationError("\(pt) sets parallel-tempering data; --data gives the data instead: leave one out")
        }
        if dataJSON != nil && dataTrajectory == nil { throw ValidationError("--data-json goes with --data FILE.nc") }
        if resume, let option = ["--data", "--data-json", "--atom-types", "--no-bond-graph"].first(where: given.contains) {
            throw ValidationError("--resume continues with the checkpoint's data, node types and bond graph: leave \(option) out")
        }
    }

    func checkMethodOptions(given: Set<String> = givenOptions()) throws {
        for (name, methods) in Self.methodOptions where given.contains(name) && !methods.contains(method) {
            let names = methods.map(\.rawValue).sorted().joined(separator: ", ")
            throw ValidationError("\(name) applies to --method \(names), not \(method.rawValue): leave it out")
        }
    }

    /// The configuration the options decode into: `DiffusionConfiguration.defaults(for: method)`
    /// with every option the method reads applied (each option's default is that configuration's
    /// value), then the method's own options (`methodArguments`, checked by `checkOwnOptions`).
    func makeConfiguration(given: Set<String> = givenOptions()) -> DiffusionConfiguration {
        let recommended = Self.defaults(method)
        var c = recommended
        for option in Self.configurationOptions where option.methods?.contains(method) ?? true { option.apply(self, &c) }
        c.scalesFromData = nil
        if recommended.scalesFromData == true && given.isDisjoint(with: Self.absoluteScaleOptions) {
            // The default dsm recipe, in units of the data's rms coordinate σ_d (docs/samplers.md),
            // made absolute when the data are made; given any absolute scale, the options' own.
            c.scalesFromData = recommended.scalesFromData
            c.sigmaMin = recommended.sigmaMin
            c.sigmaMax = recommended.sigmaMax
            c.forceBlendSigma = recommended.forceBlendSigma
            if c.parameterization == .edm && !given.contains("--noise-levels") {
                c.noiseLevels = recommended.noiseLevels
            }
        }
        return (try? method.registration.applyingOwnOptions(ownOptionPairs(), to: c)) ?? c
    }

    /// Refuses own options of another method or none, and values that do not parse.
    func checkOwnOptions() throws {
        do { _ = try method.registration.applyingOwnOptions(try ownOptionPairs(), to: Self.defaults(method)) } catch let error as DiffusionError {
            throw ValidationError("\(error)")
        }
    }

    /// The `--name value` (or `--name=value`) pairs of the arguments no shared option took: the
    /// options of a method's own settings.
    /// - Throws: `ValidationError` for an option no method has, one of another method (naming
    ///   the methods it belongs to) or one without its value.
    func ownOptionPairs() throws -> [(name: String, value: String)] {
        var pairs: [(name: String, value: String)] = [], i = 0
        while i < methodArguments.count {
            let argument = methodArguments[i]
            guard argument.hasPrefix("--") else { throw ValidationError("unexpected argument '\(argument)'") }
            var name = argument, value: String?
            if let eq = argument.firstIndex(of: "=") {
                name = String(argument[..<eq])
                value = String(argument[argument.index(after: eq)...])
            }
            let owners = TrainingMethodRegistry.methods(owning: name)
            if owners.isEmpty { throw ValidationError("unknown option '\(name)' (see ensemble train --help)") }
            if !owners.contains(method) {
                throw ValidationError("\(name) applies to --method \(owners.map(\.rawValue).joined(separator: ", ")), not \(method.rawValue): leave it out")
            }
            if value == nil {
                guard i + 1 < methodArguments.count else { throw ValidationError("\(name) needs a value") }
                i += 1
                value = methodArguments[i]
            }
            pairs.append((name, value!))
            i += 1
        }
        return pairs
    }
    /// Options that set absolute scales: given any of them, dsm's σ range and force blend are the options' own.
    static let absoluteScaleOptions: Set<String> = ["--sigma-min", "--sigma-max", "--force-blend"]
}
