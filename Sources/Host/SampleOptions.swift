import ArgumentParser
import Distributed
import Foundation
import PluginHost
import Sampling

// The option groups of `ensemble sample`, one per mode (docs/architecture.md, "The sample command"):
// every run reads `SampleCommonOptions`; an MCMC or dynamics run (`--plugin`, `MCMCSampling`) also
// reads `MCMCOptions` and `DynamicsOptions`; a draw from a trained model (`--model`, `ModelSampling`)
// reads `ModelOptions` and `CorrectionOptions`. A group's flag given in the other mode is an error
// (Sample+Checks.swift). The flag names and defaults are those of the one flat command they replace.

/// What every `sample` run reads: the plugin, how many frames, where they go.
struct SampleCommonOptions: ParsableArguments {
    @OptionGroup var search: PluginSearchOptions
    @Option(help: ArgumentHelp("The energy plugin's name (see `ensemble plugins`); with --model, taken from the checkpoint.",
                               valueName: "name"))
    var plugin: String?
    @Option(name: .customLong("param"), help: ArgumentHelp(
        "A plugin parameter KEY=VALUE (repeatable), e.g. --param preset=lj13.", valueName: "key=value"))
    var parameters: [String] = []
    @Option(name: .customLong("threads"), help: ArgumentHelp(
        "Threads that evaluate energies; without it, every core of this machine.", valueName: "n"))
    var threadCount: Int?
    var threads: Int { threadCount ?? ProcessInfo.processInfo.activeProcessorCount }
    @Option(help: "Frames to write, over all chains.")
    var samples: Int
    @Option(help: ArgumentHelp("Output trajectory (AMBER NetCDF); a .pdb topology is written beside it.",
                               valueName: "path.nc"))
    var out: String
    @Option(help: "Random seed; the same seed reproduces the same file.")
    var seed: UInt64 = 1
    @Flag(help: "Replace existing output files (--out and its .pdb, --json, --raw-out); never an input of this command.")
    var overwrite = false
    @Option(help: ArgumentHelp("Also write everything the summary prints (and the convergence diagnostics) as JSON.",
                               valueName: "path.json"))
    var json: String?

    /// The plugin system of `name` with `parameters` on --threads threads.
    func makeSystem(plugin name: String, parameters: [String]) throws -> EnergySystem {
        try SystemOptions.makeSystem(search: search, plugin: name, parameters: parameters, threads: threads)
    }
}

/// `sample --model`: which trained sampler, and how it draws.
struct ModelOptions: ParsableArguments {
    enum Process: String, ExpressibleByArgument, CaseIterable { case sde, ode }
    enum Weights: String, ExpressibleByArgument, CaseIterable { case exact, none }

    @Option(help: ArgumentHelp("Draw from a trained diffusion sampler (ensemble train) instead of MCMC.",
                               valueName: "model.ckpt"))
    var model: String?
    @Flag(help: "With --model: multinomial resampling by the importance weights (frames then carry log_weight = log Ẑ).")
    var resample = false
    @Option(help: "With --model of a score method (idem, dsm): noise levels (steps) of the draw (default: 18 on the noise-level grid of an edm model or with --integrator, else the model's --time-steps).")
    var timeSteps: Int?
    @Option(help: ArgumentHelp("With --model of a score method (idem, dsm): ode — the deterministic probability flow; sde — the stochastic process. Default: ode for an edm model (sde for one with a bond graph, a molecule, unless --weights exact), else sde. On the model's own time grid (a noise model without --integrator): sde is the reverse SDE with path-measure weights (usually unusable), ode the probability flow with exact weights.", valueName: "sde|ode"))
    var process: Process?
    @Option(help: ArgumentHelp("With --model of a score method off the torus: draw on EDM's noise-level grid (σ_max → σ_min, ρ = 7, then the denoiser) with euler (first order; sde: reverse diffusion), heun (second order, EDM Algorithm 1; sde: Algorithm 2 with churn) or pc (reverse diffusion + one Langevin corrector per level). Default: heun for an edm model; a noise model without it keeps its own time grid.", valueName: "euler|heun|pc"))
    var integrator: Integrator?
    @Option(help: ArgumentHelp("With --model on the noise-level grid: exact — the deterministic draw's exact importance weights (the step maps' Jacobians: D backward passes of the network per call, ~D× the cost); none — no weights (the default: fast draws).", valueName: "exact|none"))
    var weights: Weights = .none
    @Option(help: ArgumentHelp("With --correct-steps: also write the draws before the correction (with their log_weight) here, so one run gives both.", valueName: "path.nc"))
    var rawOut: String?
    @Option(help: ArgumentHelp("With --model and --correct-steps: correct these draws of the same model (a --raw-out file, which carries log_weight) instead of drawing new ones, e.g. to try other correction settings on an expensive ODE draw. Takes the first --samples frames; energies are re-evaluated here and each log w moved by the change (the file stores single-precision coordinates).", valueName: "path.nc"))
    var draws: String?
    @Option(help: ArgumentHelp("With --model of a temperature-conditioned model (train --temperature-conditioning): draw at this temperature, a multiple of the plugin's kT (e.g. one of the data ladder's; default 1, the target). Importance weights are then for exp(−u/F).", valueName: "F"))
    var modelTemperature: Double?
    @Flag(help: "With --model of a molecule: keep drawn mirror images (by default each is inverted onto the start structure's handedness, its energy and weight updated; the network cannot tell enantiomers apart).")
    var keepMirrorImages = false

    /// The options of this group given without --model (those that have no other check first).
    var given: [String] {
        [("--process", process != nil), ("--integrator", integrator != nil), ("--weights", weights != .none),
         ("--keep-mirror-images", keepMirrorImages)].filter(\.1).map(\.0)
    }
}

/// `sample --model ... --correct-steps K`: the exact (SMC) correction of the draws.
struct CorrectionOptions: ParsableArguments {
    enum StepSize: String, ExpressibleByArgument, CaseIterable {
        case shared
        case perSample = "per-sample"
    }
    static let defaultThreshold = 0.1

    @Option(name: .customLong("correct-steps"), help: ArgumentHelp("With --model: exact correction (SMC) — resample by the importance weights where usable, then K Metropolis-adjusted steps at the target per sample (MALA; for a molecule HMC, see --correct-leapfrog; 0: none). Metrics after K/2 and K steps go to the screen and to <out>.correction.json.", valueName: "K"))
    var steps: Int = 0
    @Option(name: .customLong("correct-leapfrog"), help: "With --correct-steps: 0 moves by MALA; L ≥ 1 by HMC with L leapfrog steps per Metropolis-adjusted step (L gradient evaluations each). Default: 0 for a cluster; for a molecule, HMC with \(CorrectionOptions.moleculeLeapfrog) leapfrog steps on hydrogen-repartitioned masses (hydrogens at 3 amu), so light atoms take proportionally longer steps.")
    var leapfrog: Int?

    /// Leapfrog steps of a molecule's default correction move (mass-weighted HMC).
    static let moleculeLeapfrog = 10
    @Option(name: .customLong("correct-step-size"), help: ArgumentHelp("With --correct-steps: shared — one step size for all samples, adapted to the population's acceptance; per-sample — each sample adapts its own over the first quarter, never above the population's, then it is frozen (frees samples stuck where the shared step is far too long, such as an overlapping pair). Default: shared for a cluster, per-sample for a molecule (a draw with one broken bond needs a far shorter step than the rest).", valueName: "shared|per-sample"))
    var stepSize: StepSize?
    @Option(name: .customLong("correct-threshold"), help: "With --correct-steps: resample by the weights only when their ESS/N reaches this (below it the weights are unusable and every finite-energy sample is kept).")
    var threshold: Double = CorrectionOptions.defaultThreshold
    @Option(name: .customLong("correct-global"), help: ArgumentHelp("With --correct-steps and a score model (idem, dsm): G global moves per sample — independence Metropolis with the model's probability-flow ODE (exact density) as proposal, interleaved with the MALA steps after adaptation. Each costs a fresh ODE draw and the flow run backwards from the current sample.", valueName: "G"))
    var global: Int = 0
    @Option(name: .customLong("correct-anneal"), help: ArgumentHelp("With --correct-steps: start by adaptive tempering instead of one resampling — from the β at which the weights for exp(−βu) are best (the largest above it with ESS/N ≥ ½ where there is one), raise β to 1 in steps that keep the incremental ESS/N ≥ ½, resampling and running S MALA steps at every β (0: none). For samplers that come out too hot.", valueName: "S"))
    var anneal: Int = 0

    /// Whether the draws are corrected.
    var isOn: Bool { steps > 0 }
}

/// `sample --plugin`: the MCMC chains (MALA, PT) and the ladder and chain settings that the
/// dynamics samplers share (their own defaults: `DynamicsDefaults`).
struct MCMCOptions: ParsableArguments {
    typealias Sampler = Ensemble.Sample.Sampler
    typealias CentreOfMass = Ensemble.Sample.CentreOfMass
    static let defaultStepSize = 1e-4

    @Option(help: ArgumentHelp(
        KernelRegistry.all.map { "\($0.name): \($0.summary); " }.joined() + "langevin: BAOAB Langevin dynamics, as OpenMM's LangevinMiddleIntegrator; ghmc: the same moves Metropolized (exact). langevin/ghmc with --replicas ≥ 2: replica exchange (REMD). Default: langevin with the molecular defaults below for a plugin whose atoms include hydrogen (a molecule), else mala.",
        valueName: Sampler.allCases.map(\.rawValue).joined(separator: "|")))
    var sampler: Sampler?
    @Option(name: .customLong("thin"), help: "Record every K-th step of each chain (default 10; langevin/ghmc: MD steps, default \(DynamicsDefaults.thin)).")
    var thinOption: Int?
    @Option(name: .customLong("chains"), help: "Independent chains (PT: independent ladders; default 4, langevin/ghmc \(DynamicsDefaults.chains)).")
    var chainsOption: Int?
    @Option(name: .customLong("burn-in"), help: "Steps per chain before recording; the MALA step size adapts during them (default 2000; langevin/ghmc: discarded MD steps, default \(DynamicsDefaults.burnIn)).")
    var burnInOption: Int?
    @Option(name: .customLong("replicas"), help: "PT/REMD: temperatures per ladder (default pt 8; langevin/ghmc: at least \(DynamicsDefaults.replicas), sized to the molecule's degrees of freedom, interior temperatures adapted during burn-in).")
    var replicasOption: Int?
    @Option(name: .customLong("max-temperature"), help: "PT/REMD: highest temperature as a multiple of the plugin's kT (default pt 5, langevin/ghmc \(DynamicsDefaults.maxTemperature)).")
    var maxTemperatureOption: Double?
    @Option(name: .customLong("exchange-every"), help: "PT/REMD: steps between exchange attempts (default 10; langevin/ghmc: MD steps, default \(DynamicsDefaults.exchangeEvery)).")
    var exchangeEveryOption: Int?
    @Option(help: ArgumentHelp("Initial MALA step size h, in (plugin length unit)², as in y = x − h∇u + √(2h)ξ (adapted during --burn-in).",
                               valueName: "h"))
    var stepSize: Double = MCMCOptions.defaultStepSize
    @Option(help: "Zero-centre-of-mass moves: auto (detect translation invariance), on, off.")
    var centreOfMass: CentreOfMass = .auto
    @Option(help: ArgumentHelp(
        "Under mpirun: split chains or replicas (PT temperatures) over the ranks (default: replicas for pt, chains for mala).",
        valueName: "chains|replicas"))
    var distribute: MCMCDistribution?

    /// The sampler of an MCMC run on a non-molecular system (nil: MALA).
    var mcmcSampler: Sampler { sampler ?? .mala }
    var thin: Int { thinOption ?? 10 }
    var chains: Int { chainsOption ?? 4 }
    var burnIn: Int { burnInOption ?? 2000 }
    var replicas: Int { replicasOption ?? 8 }
    var maxTemperature: Double { maxTemperatureOption ?? 5 }
    var exchangeEvery: Int { exchangeEveryOption ?? 10 }
    /// How the MCMC walkers are split over ranks (MALA has one temperature: always chains).
    var distribution: MCMCDistribution { mcmcSampler.isTempered ? distribute ?? .replicas : .chains }

    /// The options of this group given on the command line (those without a fixed default value).
    var given: [String] {
        [("--sampler", sampler != nil), ("--thin", thinOption != nil), ("--chains", chainsOption != nil),
         ("--burn-in", burnInOption != nil), ("--replicas", replicasOption != nil),
         ("--max-temperature", maxTemperatureOption != nil), ("--exchange-every", exchangeEveryOption != nil),
         ("--distribute", distribute != nil), ("--centre-of-mass", centreOfMass != .auto)]
            .filter(\.1).map(\.0)
    }

    /// The options that only MALA and PT use (the dynamics samplers move by their own time step, on one rank).
    var mcmcOnlyGiven: [String] {
        [("--step-size", stepSize != Self.defaultStepSize), ("--centre-of-mass", centreOfMass != .auto),
         ("--distribute", distribute != nil)].filter(\.1).map(\.0)
    }
}

/// What a `sample` run of each mode reads besides its own group.
protocol SampleRun {
    var common: SampleCommonOptions { get }
}

extension SampleRun {
    var samples: Int { common.samples }
    var out: String { common.out }
    var seed: UInt64 { common.seed }
    var overwrite: Bool { common.overwrite }
    var json: String? { common.json }
    var parameters: [String] { common.parameters }
    var threads: Int { common.threads }
}

/// `sample --plugin`: MCMC (mala, pt) or molecular dynamics (langevin, ghmc) of a plugin's system.
struct MCMCSampling: SampleRun {
    let common: SampleCommonOptions
    let plugin: String
    let mcmc: MCMCOptions
    let dynamicsOptions: DynamicsOptions

    typealias Sampler = Ensemble.Sample.Sampler
    var sampler: Sampler? { mcmc.sampler }
    var mcmcSampler: Sampler { mcmc.mcmcSampler }
}

/// `sample --model`: draws from a trained sampler, optionally corrected.
struct ModelSampling: SampleRun {
    let common: SampleCommonOptions
    /// The checkpoint.
    let path: String
    let options: ModelOptions
    let correction: CorrectionOptions
}

extension Ensemble.Sample {
    /// What this command line runs: its mode, with the options of that mode only.
    enum Mode {
        case mcmc(MCMCSampling)
        case model(ModelSampling)
    }

    var mode: Mode {
        if let path = modelOptions.model {
            return .model(ModelSampling(common: common, path: path, options: modelOptions, correction: correction))
        }
        return .mcmc(MCMCSampling(common: common, plugin: common.plugin!, mcmc: mcmc, dynamicsOptions: dynamicsOptions))
    }
}

extension MCMCDistribution: ExpressibleByArgument {}
extension Integrator: ExpressibleByArgument {}
