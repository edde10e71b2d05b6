import ArgumentParser
import Foundation
import Sampling

/// An option of `ensemble train` that sets a field of the `DiffusionConfiguration`: its name,
/// the methods it applies to, how its value decodes into the configuration, and how the field
/// reads back (for the resume check). One table, `Ensemble.Train.configurationOptions`, both
/// builds the configuration and compares it with a checkpoint: no field is copied by hand twice.
struct ConfigurationOption {
    let name: String
    /// The methods the option applies to (nil: every method); given for another method, it is an error.
    let methods: Set<DiffusionMethod>?
    let apply: (Ensemble.Train, inout DiffusionConfiguration) -> Void
    let text: (DiffusionConfiguration) -> String

    /// `field = decode(train[keyPath: value])`; `show` reads the field back (default: its value, nil as "none").
    init<T, F>(_ name: String, _ value: KeyPath<Ensemble.Train, T>, _ field: WritableKeyPath<DiffusionConfiguration, F>,
               methods: Set<DiffusionMethod>? = nil, show: ((F) -> String)? = nil,
               decode: @escaping (T, DiffusionMethod) -> F) {
        self.name = name
        self.methods = methods
        apply = { train, c in c[keyPath: field] = decode(train[keyPath: value], c.method) }
        text = { c in show?(c[keyPath: field]) ?? Self.describe(c[keyPath: field]) }
    }

    /// The option's value is the field's.
    init<T>(_ name: String, _ value: KeyPath<Ensemble.Train, T>, _ field: WritableKeyPath<DiffusionConfiguration, T>,
            methods: Set<DiffusionMethod>? = nil) {
        self.init(name, value, field, methods: methods) { v, _ in v }
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
    private static let paths: Set<DiffusionMethod> = [.tb, .logvar]
    private static let scores: Set<DiffusionMethod> = [.idem, .dsm]

    /// The library's recommended configuration of a method (`DiffusionConfiguration.defaults(for:)`):
    /// the one source of every option's default.
    static func defaults(_ method: DiffusionMethod) -> DiffusionConfiguration { DiffusionConfiguration.defaults(for: method) }
    /// The defaults that every method shares (idem's: it uses the absolute σ range of the options).
    static let sharedDefaults = DiffusionConfiguration.defaults(for: .idem)

    /// "0 means none" options.
    private static func positive(_ v: Double, _ method: DiffusionMethod) -> Double? { v > 0 ? v : nil }

    /// Every option that shapes the model or its training, in the order of `--help`.
    static let configurationOptions: [ConfigurationOption] = [
        .init("--langevin-preconditioning", \.langevinPreconditioning, \.langevinPreconditioning, methods: paths),
        .init("--seed", \.seed, \.seed),
        // Checkpoints written before the field existed hold nil: the double engine.
        .init("--precision", \.precision, \.precision, show: { ($0 ?? .double).rawValue }) { v, _ in v },
        .init("--hidden", \.hidden, \.hidden),
        .init("--layers", \.layers, \.layers),
        .init("--batch", \.batch, \.batch),
        .init("--time-steps", \.timeSteps, \.timeSteps),
        .init("--learning-rate", \.learningRate, \.learningRate),
        .init("--buffer-capacity", \.bufferCapacity, \.bufferCapacity),
        .init("--noise-scale", \.noiseScale, \.noiseScale, methods: paths),
        .init("--exploration", \.exploration, \.exploration, methods: paths),
        .init("--no-replay", \.noReplay, \.useBuffer, methods: paths) { v, _ in !v },
        .init("--local-search-every", \.localSearchEvery, \.localSearchEvery, methods: paths),
        .init("--energy-clip", \.energyClip, \.energyClip, methods: paths, decode: positive),
        .init("--langevin-clip", \.langevinClip, \.langevinClip, methods: paths),
        .init("--langevin-init", \.langevinInit, \.langevinInitialScale, methods: paths, decode: positive),
        .init("--sigma-min", \.sigmaMin, \.sigmaMin, methods: scores),
        .init("--sigma-max", \.sigmaMax, \.sigmaMax, methods: scores),
        .init("--monte-carlo-samples", \.monteCarloSamples, \.monteCarloSamples, methods: [.idem]),
        .init("--refill-every", \.refillEvery, \.refillEvery, methods: [.idem]),
        .init("--refill-samples", \.refillSamples, \.refillSamples, methods: [.idem]),
        .init("--initial-buffer", \.initialBuffer, \.initialBuffer, methods: [.idem]),
        .init("--force-blend", \.forceBlend, \.forceBlendSigma, methods: [.dsm]),
        .init("--predict-score", \.predictScore, \.predictsNoise, methods: [.dsm]) { v, _ in v ? false : nil },
        .init("--data-samples", \.self, \.data, methods: [.dsm]) { train, method in train.dataSettings(method) },
        .init("--parameterization", \.parameterization, \.parameterization, methods: [.dsm]) { v, method in
            method == .dsm ? v ?? defaults(method).parameterization : nil  // Train+Molecule turns the default off on a torus
        },
        .init("--noise-levels", \.noiseLevels, \.noiseLevels, methods: [.dsm]) { v, method in
            method == .dsm && v.value != .logUniform ? v.value : nil
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
        .init("--validation-fraction", \.validationFraction, \.validationFraction, methods: [.dsm]) { v, method in
            method == .dsm ? positive(v, method) : nil
        },
        .init("--time-features", \.timeFeatures, \.timeEmbedding) { v, _ in v > 0 ? .sinusoidal(frequencies: v) : nil },
        .init("--validation-every", \.validationEvery, \.validationEvery, methods: [.dsm]),
        .init("--tanh-range", \.tanhRange, \.tanhRange) { v, method in
            v.map { positive($0, method) } ?? defaults(method).tanhRange
        },
        .init("--graph-cutoff", \.graphCutoff, \.graphCutoff),
        .init("--smooth-cutoff", \.smoothCutoff, \.smoothCutoff) { v, _ in v ? true : nil },
        .init("--temperature-conditioning", \.temperatureConditioning, \.temperatureConditioned, methods: [.dsm]) { v, _ in v ? true : nil },
    ]

    /// The parallel-tempering data of dsm (nil for the other methods); its seed is derived from --seed.
    func dataSettings(_ method: DiffusionMethod) -> MCMCSettings? {
        guard method == .dsm, dataTrajectory == nil else { return nil }
        return MCMCSettings(chains: dataChains, burnIn: dataBurnIn, thin: dataThin, samples: dataSamples,
                            seed: SeededGenerator.derivedSeed(seed, 0x4453_4D),  // "DSM"
                            replicas: dataReplicas, maxTemperature: dataMaxTemperature)
    }

    /// Options of other methods than --method: an error naming the option and its methods.
    static let methodOptions: [(name: String, methods: Set<DiffusionMethod>)] =
        configurationOptions.compactMap { o in o.methods.map { (o.name, $0) } }
        + (ptDataOptions + ["--data", "--data-json"]).map { ($0, [.dsm]) }
        + [("--exploration-steps", paths)]

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
    /// with every option applied (each option's default is that configuration's value).
    func makeConfiguration(given: Set<String> = givenOptions()) -> DiffusionConfiguration {
        let recommended = Self.defaults(method)
        var c = recommended
        for option in Self.configurationOptions { option.apply(self, &c) }
        c.scalesFromData = nil
        if method == .dsm && given.isDisjoint(with: Self.absoluteScaleOptions) {
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
        return c
    }
    /// Options that set absolute scales: given any of them, dsm's σ range and force blend are the options' own.
    static let absoluteScaleOptions: Set<String> = ["--sigma-min", "--sigma-max", "--force-blend"]
}
