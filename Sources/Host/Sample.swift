import ArgumentParser
import Distributed
import Equivariant
import Foundation
import PluginHost
import Sampling

extension Ensemble {
    /// `ensemble sample`: MCMC samples of a plugin's Boltzmann distribution into AMBER NetCDF.
    struct Sample: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Draw equilibrium samples with MALA, parallel tempering or Langevin dynamics (REMD); write AMBER NetCDF + PDB.",
            discussion: """
                Chains start from the plugin's initial positions (plus 0.01 noise each). During --burn-in \
                the MALA step size adapts toward 0.574 acceptance, then it is frozen. With --sampler pt \
                each chain is a ladder of --replicas temperatures T_m = kT·max^(m/(R−1)), exchanging \
                neighbours every --exchange-every steps; the kT replica is recorded. Clusters whose energy \
                is translation invariant move in the zero-centre-of-mass subspace.

                Molecules (a plugin whose atom table has hydrogens, e.g. alanine) are sampled by default with \
                --sampler langevin: Langevin dynamics in OpenMM's LangevinMiddle (BAOAB) form with masses from \
                the atom table, X–H bonds held by SHAKE/RATTLE, hydrogen masses repartitioned to 3 amu and a \
                4 fs step, γ = 1/ps, in replica exchange over 4 temperatures 300–600 K (exchanges every 0.2 ps) \
                for 4 chains, a frame every 2 ps after 20 ps of burn-in. --sampler ghmc Metropolizes each \
                --trajectory-steps trajectory (exact: no time-step bias; 2 fs, natural masses by default). \
                Every run prints the energy's τ, ESS and split-R̂, and for a peptide the αR, β/PII and αL \
                basin populations with errors; "NOT CONVERGED" says which check failed.

                Frames are written chain-interleaved (step 1: chains 0..C−1, step 2: ...). The NetCDF \
                `time` is the MCMC step for mala/pt and the simulated time in ps for langevin/ghmc, `energy` \
                the reduced energy u = U/kT of each frame. The same --seed gives byte-identical coordinates.

                Many ranks (README, "Many ranks (MPI)"): under `mpirun -np R ensemble sample ...` each rank runs \
                its share of the chains (or, with --sampler pt, of every ladder's temperatures: --distribute) \
                with a seed derived from (--seed, rank); rank 0 gathers the frames into the one --out file, in \
                the order of a one-rank run, and counts energy evaluations over all ranks. With --model each \
                rank draws its share of --samples. Without mpirun the binary runs as one rank.

                Example:
                  ensemble sample --plugin alanine --samples 2000 --out ala.nc
                  ensemble sample --plugin double-well --sampler pt --samples 5000 --out dw4.nc
                  mpirun -np 2 ensemble sample --plugin double-well --samples 5000 \\
                    --threads 1 --out dw4.nc
                """)

        enum Sampler: String, ExpressibleByArgument, CaseIterable { case mala, pt, langevin, ghmc }
        enum CentreOfMass: String, ExpressibleByArgument, CaseIterable { case auto, on, off }

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
        @Option(help: ArgumentHelp("Draw from a trained diffusion sampler (ensemble train) instead of MCMC.",
                                   valueName: "model.ckpt"))
        var model: String?
        @Flag(help: "With --model: multinomial resampling by the importance weights (frames then carry log_weight = log Ẑ).")
        var resample = false
        enum Process: String, ExpressibleByArgument, CaseIterable { case sde, ode }
        enum CorrectionStepSize: String, ExpressibleByArgument, CaseIterable {
            case shared
            case perSample = "per-sample"
        }
        @Option(help: "With --model of a score method (idem, dsm): noise levels (steps) of the draw (default: 18 on the noise-level grid of an edm model or with --integrator, else the model's --time-steps).")
        var timeSteps: Int?
        @Option(help: ArgumentHelp("With --model of a score method (idem, dsm): ode — the deterministic probability flow; sde — the stochastic process. Default: ode for an edm model, else sde. On the model's own time grid (a noise model without --integrator): sde is the reverse SDE with path-measure weights (usually unusable), ode the probability flow with exact weights.", valueName: "sde|ode"))
        var process: Process?
        @Option(help: ArgumentHelp("With --model of a score method off the torus: draw on EDM's noise-level grid (σ_max → σ_min, ρ = 7, then the denoiser) with euler (first order; sde: reverse diffusion), heun (second order, EDM Algorithm 1; sde: Algorithm 2 with churn) or pc (reverse diffusion + one Langevin corrector per level). Default: heun for an edm model; a noise model without it keeps its own time grid.", valueName: "euler|heun|pc"))
        var integrator: Integrator?
        @Option(help: ArgumentHelp("With --model on the noise-level grid: exact — the deterministic draw's exact importance weights (the step maps' Jacobians: D backward passes of the network per call, ~D× the cost); none — no weights (the default: fast draws).", valueName: "exact|none"))
        var weights: WeightsOption = .none
        enum WeightsOption: String, ExpressibleByArgument, CaseIterable { case exact, none }
        @Option(help: ArgumentHelp("With --model: exact correction (SMC) — resample by the importance weights where usable, then K Metropolis-adjusted MALA steps at the target per sample (0: none). Metrics after K/2 and K steps go to the screen and to <out>.correction.json.", valueName: "K"))
        var correctSteps: Int = 0
        @Option(help: "With --correct-steps: 0 moves by MALA; L ≥ 1 by HMC with L leapfrog steps per Metropolis-adjusted step (L gradient evaluations each).")
        var correctLeapfrog: Int = 0
        @Option(help: ArgumentHelp("With --correct-steps: shared — one step size for all samples, adapted to the population's acceptance; per-sample — each sample adapts its own over the first quarter, never above the population's, then it is frozen (frees samples stuck where the shared step is far too long, such as an overlapping pair).", valueName: "shared|per-sample"))
        var correctStepSize: CorrectionStepSize = .shared
        @Option(help: "With --correct-steps: resample by the weights only when their ESS/N reaches this (below it the weights are unusable and every finite-energy sample is kept).")
        var correctThreshold: Double = 0.1
        @Option(help: ArgumentHelp("With --correct-steps and a score model (idem, dsm): G global moves per sample — independence Metropolis with the model's probability-flow ODE (exact density) as proposal, interleaved with the MALA steps after adaptation. Each costs a fresh ODE draw and the flow run backwards from the current sample.", valueName: "G"))
        var correctGlobal: Int = 0
        @Option(help: ArgumentHelp("With --correct-steps: start by adaptive tempering instead of one resampling — from the β at which the weights for exp(−βu) are best (the largest above it with ESS/N ≥ ½ where there is one), raise β to 1 in steps that keep the incremental ESS/N ≥ ½, resampling and running S MALA steps at every β (0: none). For samplers that come out too hot.", valueName: "S"))
        var correctAnneal: Int = 0
        @Option(help: ArgumentHelp("With --correct-steps: also write the draws before the correction (with their log_weight) here, so one run gives both.", valueName: "path.nc"))
        var rawOut: String?
        @Option(help: ArgumentHelp("With --model and --correct-steps: correct these draws of the same model (a --raw-out file, which carries log_weight) instead of drawing new ones, e.g. to try other correction settings on an expensive ODE draw. Takes the first --samples frames; energies are re-evaluated here and each log w moved by the change (the file stores single-precision coordinates).", valueName: "path.nc"))
        var draws: String?
        @Option(help: ArgumentHelp("With --model of a temperature-conditioned model (train --temperature-conditioning): draw at this temperature, a multiple of the plugin's kT (e.g. one of the data ladder's; default 1, the target). Importance weights are then for exp(−u/F).", valueName: "F"))
        var modelTemperature: Double?
        @Flag(help: "With --model of a molecule: keep drawn mirror images (by default each is inverted onto the start structure's handedness, its energy and weight updated; the network cannot tell enantiomers apart).")
        var keepMirrorImages = false

        @Option(help: ArgumentHelp(
            "mala, pt (MALA parallel tempering), langevin (BAOAB Langevin dynamics, as OpenMM's LangevinMiddleIntegrator) or ghmc (the same moves Metropolized: exact). langevin/ghmc with --replicas ≥ 2: replica exchange (REMD). Default: langevin with the molecular defaults below for a plugin whose atoms include hydrogen (a molecule), else mala.",
            valueName: "mala|pt|langevin|ghmc"))
        var sampler: Sampler?
        /// The sampler of an MCMC run on a non-molecular system (nil: MALA).
        var mcmcSampler: Sampler { sampler ?? .mala }
        @Option(help: "Frames to write, over all chains.")
        var samples: Int
        @Option(help: ArgumentHelp("Output trajectory (AMBER NetCDF); a .pdb topology is written beside it.",
                                   valueName: "path.nc"))
        var out: String
        @Option(help: "Random seed; the same seed reproduces the same file.")
        var seed: UInt64 = 1
        @Option(name: .customLong("thin"), help: "Record every K-th step of each chain (default 10; langevin/ghmc: MD steps, default \(DynamicsDefaults.thin)).")
        var thinOption: Int?
        var thin: Int { thinOption ?? 10 }
        @Option(name: .customLong("chains"), help: "Independent chains (PT: independent ladders; default 4, langevin/ghmc \(DynamicsDefaults.chains)).")
        var chainsOption: Int?
        var chains: Int { chainsOption ?? 4 }
        @Option(name: .customLong("burn-in"), help: "Steps per chain before recording; the MALA step size adapts during them (default 2000; langevin/ghmc: discarded MD steps, default \(DynamicsDefaults.burnIn)).")
        var burnInOption: Int?
        var burnIn: Int { burnInOption ?? 2000 }
        @Option(name: .customLong("replicas"), help: "PT/REMD: temperatures per ladder (default pt 8, langevin/ghmc \(DynamicsDefaults.replicas)).")
        var replicasOption: Int?
        var replicas: Int { replicasOption ?? 8 }
        @Option(name: .customLong("max-temperature"), help: "PT/REMD: highest temperature as a multiple of the plugin's kT (default pt 5, langevin/ghmc \(DynamicsDefaults.maxTemperature)).")
        var maxTemperatureOption: Double?
        var maxTemperature: Double { maxTemperatureOption ?? 5 }
        @Option(name: .customLong("exchange-every"), help: "PT/REMD: steps between exchange attempts (default 10; langevin/ghmc: MD steps, default \(DynamicsDefaults.exchangeEvery)).")
        var exchangeEveryOption: Int?
        var exchangeEvery: Int { exchangeEveryOption ?? 10 }
        @OptionGroup(title: "Molecular dynamics (--sampler langevin|ghmc)") var dynamicsOptions: DynamicsOptions
        @Option(help: ArgumentHelp("Initial MALA step size h, in (plugin length unit)², as in y = x − h∇u + √(2h)ξ (adapted during --burn-in).",
                                   valueName: "h"))
        var stepSize: Double = 1e-4
        @Option(help: "Zero-centre-of-mass moves: auto (detect translation invariance), on, off.")
        var centreOfMass: CentreOfMass = .auto
        @Flag(help: "Replace existing output files (--out and its .pdb, --json, --raw-out); never an input of this command.")
        var overwrite = false
        @Option(help: ArgumentHelp(
            "Under mpirun: split chains or replicas (PT temperatures) over the ranks (default: replicas for pt, chains for mala).",
            valueName: "chains|replicas"))
        var distribute: MCMCDistribution?
        @Option(help: ArgumentHelp("Also write everything the summary prints (and the convergence diagnostics) as JSON.",
                                   valueName: "path.json"))
        var json: String?

        /// How the MCMC walkers are split over ranks (MALA has one temperature: always chains).
        var distribution: MCMCDistribution { mcmcSampler == .pt ? distribute ?? .replicas : .chains }

        /// The plugin system (a `SystemOptions` whose --plugin may come from a checkpoint).
        func makeSystem(plugin name: String, parameters: [String]) throws -> EnergySystem {
            try SystemOptions.makeSystem(search: search, plugin: name, parameters: parameters, threads: threads)
        }

        func validate() throws {
            if model == nil && plugin == nil { throw ValidationError("give --plugin NAME (MCMC) or --model MODEL.ckpt") }
            if resample && model == nil { throw ValidationError("--resample needs --model") }
            if correctSteps != 0 && model == nil { throw ValidationError("--correct-steps needs --model") }
            if let timeSteps, model == nil || timeSteps < 2 { throw ValidationError("--time-steps needs --model and at least 2 steps, got \(timeSteps)") }
            guard correctLeapfrog >= 0 else { throw ValidationError("--correct-leapfrog must be ≥ 0, got \(correctLeapfrog)") }
            guard correctAnneal >= 0, correctAnneal == 0 || correctSteps > 0 else { throw ValidationError("--correct-anneal needs --correct-steps and must be ≥ 0, got \(correctAnneal)") }
            guard correctGlobal >= 0, correctGlobal == 0 || correctSteps > 0 else { throw ValidationError("--correct-global needs --correct-steps and must be ≥ 0, got \(correctGlobal)") }
            guard correctStepSize == .shared || correctSteps > 0 else { throw ValidationError("--correct-step-size needs --correct-steps") }
            if let t = modelTemperature {
                guard model != nil, t > 0 else { throw ValidationError("--model-temperature needs --model and a temperature > 0 (× kT), got \(t)") }
                if correctSteps > 0 && t != 1 { throw ValidationError("--correct-steps corrects towards the target (temperature 1): leave --model-temperature out") }
            }
            if draws != nil && correctSteps == 0 { throw ValidationError("--draws goes with --correct-steps (it corrects draws written by --raw-out)") }
            if draws != nil && rawOut != nil { throw ValidationError("--draws and --raw-out together would copy the draws: give one") }
            if draws != nil && Communicator.world.size > 1 { throw ValidationError("--draws runs on one rank") }
            if rawOut != nil && correctSteps == 0 { throw ValidationError("--raw-out goes with --correct-steps (without it --out holds the raw draws)") }
            guard correctSteps == 0 || correctSteps >= 2 else { throw ValidationError("--correct-steps must be 0 (none) or ≥ 2, got \(correctSteps)") }
            for parameter in parameters where !parameter.contains("=") || parameter.hasPrefix("=") {
                throw ValidationError("--param '\(parameter)' is not KEY=VALUE (e.g. --param particles=13)")
            }
            guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
            for (name, value) in [("--samples", samples), ("--thin", thin), ("--chains", chains),
                                  ("--exchange-every", exchangeEvery)] where value <= 0 {
                throw ValidationError("\(name) must be a positive integer, got \(value)")
            }
            guard burnIn >= 0 else { throw ValidationError("--burn-in must be ≥ 0, got \(burnIn)") }
            if mcmcSampler == .pt {
                guard replicas >= 2 else { throw ValidationError("--replicas must be ≥ 2 for pt, got \(replicas)") }
                guard maxTemperature > 1 else {
                    throw ValidationError("--max-temperature must be > 1, got \(maxTemperature)")
                }
            }
            guard stepSize > 0 else { throw ValidationError("--step-size must be > 0") }
            try validateDynamics()
            try validateOptionsAreUsed()
            let ranks = Communicator.world.size
            if model == nil && ranks > 1 {
                if distribution == .replicas {
                    guard replicas >= ranks else {
                        throw ValidationError("--replicas \(replicas) is fewer than the \(ranks) ranks; give at least one temperature per rank, or --distribute chains")
                    }
                } else if chains < ranks {
                    throw ValidationError("--chains \(chains) is fewer than the \(ranks) ranks; give at least one chain per rank")
                }
            }
            guard out.hasSuffix(".nc") else { throw ValidationError("--out must end in .nc (AMBER NetCDF), got \(out)") }
            if Communicator.world.isRoot {  // rank 0 writes them
                var files = OutputFiles()
                files.output("--out", out)
                files.output("the topology", topologyPath(of: out), note: "written beside --out")
                files.output("--json", json)
                files.output("--raw-out", rawOut)
                files.output("the topology", rawOut.map(topologyPath(of:)), note: "written beside --raw-out")
                files.output("the correction summary", correctSteps > 0 ? correctionSummaryPath : nil, note: "written beside --out")
                files.input("--model", model)
                files.input("--draws", draws)
                try files.check(overwrite: overwrite)
            }
        }

        /// Where --correct-steps writes its metrics: <out without .nc>.correction.json.
        var correctionSummaryPath: String { URL(fileURLWithPath: out).deletingPathExtension().path + ".correction.json" }

        /// Refuses a run whose walkers would not fit in memory, before any file is written: each of
        /// the chains × temperatures walkers keeps its positions, gradient, proposal and the proposal's
        /// gradient, noise and record copies (about 10 arrays of the system's coordinates).
        func checkMemory(system: EnergySystem, temperatures: Int) throws {
            let coordinates = Double(system.coordinateCount)
            try MemoryLimit.check("--chains", chains, bytesPerUnit: Double(temperatures) * coordinates * 8 * 10,
                                  detail: "\(temperatures) temperature(s) × \(system.coordinateCount) coordinates × 8 bytes × 10 arrays")
        }

        func run() throws {
            let world = Communicator.world
            Interrupt.install()
            try onEveryRank(world) {
                if let model { return try runModel(model, world: world) }
                try runMCMC(world: world)
            }
        }

        /// MCMC on every rank; rank 0 writes the gathered frames and the summary.
        func runMCMC(world: Communicator) throws {
            let energySystem = try makeSystem(plugin: plugin!, parameters: parameters + temperatureParameter())
            if sampler == .langevin || sampler == .ghmc || (sampler == nil && Self.isMolecule(energySystem)) {
                return try runDynamics(system: energySystem, world: world)
            }
            if sampler == nil { try checkDynamicsOptionsUnused(sampler: "mala (the default for a system without hydrogen)", validating: false) }
            try checkMemory(system: energySystem, temperatures: mcmcSampler == .pt ? replicas : 1)
            let start = try startPositions(energySystem)
            let fixed: Bool? = switch centreOfMass { case .on: true; case .off: false; case .auto: nil }
            let space = Space.forMCMC(energySystem, at: start, fixCentreOfMass: fixed)
            let pt = mcmcSampler == .pt
            let settings = MCMCSettings(chains: chains, burnIn: burnIn, thin: thin, samples: samples, seed: seed,
                                        replicas: pt ? replicas : nil, maxTemperature: pt ? maxTemperature : nil,
                                        exchangeEvery: pt ? exchangeEvery : nil, initialStepSize: stepSize)
            let output = !world.isRoot ? nil : try TrajectoryOutput(
                path: out, system: energySystem, variables: ["energy"], units: ["energy": "kT"],
                title: "ensemble sample \(mcmcSampler.rawValue) \(energySystem.plugin.name) \(energySystem.parameters)",
                overwrite: overwrite, sampler: mcmcSampler.rawValue, chains: chains)
            let progress = ProgressBar(label: "sampling", total: burnIn + settings.productionSteps)
            // One rank: Ctrl-C also ends burn-in, at the next energy evaluation (under mpirun the
            // ranks stop together at the next recorded step).
            if !world.isDistributed { energySystem.interruption = { Interrupt.isRequested } }
            var step = 0
            let series = ChainSeries(), angles = world.isRoot ? try? AngleSeries(system: energySystem) : nil
            let summary: MCMCSummary
            do {
                summary = try ChainRunner(settings: settings).run(
                    system: energySystem, space: space, start: start,
                    communicator: world, distribution: distribution,
                    record: { x, u in
                        step += 1
                        series.append(u)
                        angles?.append(x)
                        let stride = energySystem.coordinateCount
                        for c in 0..<u.count {
                            try output!.append(Array(x[(c * stride)..<((c + 1) * stride)]),
                                               time: Double(burnIn + step * thin), values: ["energy": u[c]])
                        }
                    },
                    stop: { Interrupt.isRequested },
                    progress: { done, total in progress.update(done) })
            } catch {
                progress.finish()
                try handleFailure(error, output: output)
                return
            }
            try output?.close()
            if world.isRoot {
                printSummary(summary, system: energySystem, project: space.fixesCentreOfMass, ranks: world.size)
                try reportMCMC(summary, series: series, angles: angles, system: energySystem, project: space.fixesCentreOfMass,
                               ranks: world.size, sampler: mcmcSampler, settings: settings, dynamics: nil)
            }
        }

        /// Closes the output of a run that stopped. An interrupt (any error once one was requested:
        /// the sampler may wrap it) exits cleanly with the frames written, or with no file when
        /// there were none. An error while replacing a file (--overwrite) leaves the old file as
        /// it was; otherwise it keeps the frames written (or removes an empty file). Either way the
        /// error is rethrown with what was kept.
        func handleFailure(_ error: Error, output: TrajectoryOutput?) throws {
            if error is CancellationError || Interrupt.isRequested {
                guard let output else { throw Interrupt.exitCode }
                if output.frames == 0 {  // an empty file would only block the rerun
                    output.discard()
                    print("interrupted (\(Interrupt.signalName)) before the first frame: " + (output.replacing
                        ? "\(out) was left as it was" : "no file was left at \(out), so the same command can run again"))
                } else {
                    try output.close()
                    print("interrupted: \(output.frames) frames written to \(out) (closed cleanly; \(Interrupt.signalName))")
                }
                throw Interrupt.exitCode
            }
            guard let output else { throw error }
            if output.replacing {
                output.discard()
                throw FailureMessage("\(error)\n\(out) was left as it was (the run was replacing it; its unfinished new frames were removed)")
            }
            if output.frames == 0 {  // an empty file would only block the rerun
                output.discard()
                throw FailureMessage("\(error)\nno frame was written; \(out) was removed")
            }
            // Count only what reached the disk: a close that fails (a full disk) keeps the frames
            // up to the last sync (issue 23 reported 369 frames where 360 were readable).
            let closed = (try? output.close()) != nil
            let kept = closed ? output.frames : output.writer.syncedFrameCount
            throw FailureMessage("\(error)\n\(kept) frames were written to \(out) before the error" + (kept < output.frames
                ? " (\(output.frames - kept) more were appended but could not be flushed to disk)" : ""))
        }

        func printSummary(_ s: MCMCSummary, system: EnergySystem, project: Bool, ranks: Int) {
            print("wrote \(s.frames) frames to \(out) (topology \(URL(fileURLWithPath: out).deletingPathExtension().path).pdb)")
            print(String(format: "energy u = U/kT: %.4f ± %.4f (batch-means standard error)", s.energyMean, s.energyError))
            print(String(format: "acceptance (target level): %.3f, step size %.3g%@", s.acceptance[0], s.stepSizes[0],
                         project ? ", zero-centre-of-mass moves" : ""))
            if mcmcSampler == .pt {
                let pairs = s.exchangeAcceptance.enumerated().map { String(format: "%d↔%d %.2f", $0, $0 + 1, $1) }
                print("replica exchange acceptance: \(pairs.joined(separator: ", "))")
                let ladder = MCMCSettings.ladder(replicas: replicas, maxTemperature: maxTemperature)
                print("temperatures (× kT): \(ladder.map { String(format: "%.3g", 1 / $0) }.joined(separator: ", "))")
            }
            print("energy evaluations: \(s.energyEvaluations), gradient evaluations: \(s.gradientEvaluations)\(ranks > 1 ? " (all ranks)" : "")")
            print(String(format: "wall time: %.2f s (%d threads%@)", s.seconds, system.threads,
                         ranks > 1 ? " per rank, \(ranks) ranks, \(distribution.rawValue) split" : ""))
        }
    }
}

extension Ensemble.Sample {
    /// Samples from a trained diffusion sampler, with importance weights. With many ranks each
    /// draws its block of the samples (seed from (seed, rank)); rank 0 gathers them in rank
    /// order, reweights, resamples and writes.
    /// The checkpoint at `path` (with --time-steps applied), its plugin's system, checked against
    /// --plugin / --param, and the model.
    func loadModel(_ path: String, world: Communicator) throws
        -> (checkpoint: DiffusionCheckpoint, system: EnergySystem, model: DiffusionModel) {
        var checkpoint: DiffusionCheckpoint
        do { checkpoint = try DiffusionCheckpoint.read(from: path) } catch { throw FailureMessage("\(error)") }
        try checkDrawOptions(method: checkpoint.configuration.method)
        if let timeSteps, !usesNoiseLevelGrid(checkpoint.configuration) {
            guard checkpoint.configuration.method.usesVEProcess else {
                throw FailureMessage("--time-steps applies to score models (idem, dsm); a \(checkpoint.configuration.method.rawValue) model's drift is tied to its \(checkpoint.configuration.timeSteps) training steps")
            }
            checkpoint.configuration.timeSteps = timeSteps  // the score is a function of t: any grid
            checkpoint.state.scalars = [checkpoint.state.scalars[0]] + [Double](repeating: 0, count: timeSteps)
        }
        if let plugin, plugin != checkpoint.plugin {
            throw FailureMessage("--plugin \(plugin) differs from the checkpoint's plugin '\(checkpoint.plugin)'")
        }
        let stored = checkpoint.pluginParameters
        if !parameters.isEmpty && parameters.joined(separator: ";") != stored {
            throw FailureMessage("--param \(parameters.joined(separator: ";")) differs from the checkpoint's parameters '\(stored)'")
        }
        let storedParameters = stored.isEmpty ? [] : stored.split(separator: ";").map(String.init)
        let energySystem: EnergySystem
        do {
            energySystem = try makeSystem(plugin: checkpoint.plugin, parameters: storedParameters)
        } catch {
            throw FailureMessage("the checkpoint's plugin '\(checkpoint.plugin)' cannot be loaded: \(error)")
        }
        let diffusion: DiffusionModel
        do {
            try checkpoint.check(system: energySystem)
            diffusion = try checkpoint.makeModel(threads: world.networkThreads(threads))
        } catch { throw FailureMessage("\(error)") }
        return (checkpoint, energySystem, diffusion)
    }

    /// The first --samples draws of a --raw-out file: positions, energies evaluated here, and
    /// log w = −u − log q moved by the energy's change from the stored one (the coordinates were
    /// rounded to single precision on writing; log q is the model's and unchanged).
    func readDraws(_ path: String, system: EnergySystem) throws -> (x: [Double], u: [Double], logW: [Double]) {
        let set = try SampleSet(path: path, system: system)
        guard let weights = set.logWeights, let stored = set.energies else {
            throw FailureMessage("\(path) has no log_weight and energy per frame: --draws reads a file written by --raw-out")
        }
        guard set.count >= samples else {
            throw FailureMessage("\(path) holds \(set.count) draws, fewer than --samples \(samples)")
        }
        let x = Array(set.positions.prefix(samples * system.coordinateCount))
        let u = try system.evaluate(x, batch: samples, withGradients: false).energies
        let logW = (0..<samples).map { u[$0].isFinite && stored[$0].isFinite ? weights[$0] + stored[$0] - u[$0] : -.infinity }
        print("read \(samples) draws from \(path) (largest |Δu| from re-evaluation: \(String(format: "%.2e", zip(stored, u).map { abs($0 - $1) }.filter(\.isFinite).max() ?? 0)))")
        return (x, u, logW)
    }

    /// Whether a score model draws on the noise-level grid (`sampleNoiseLevels`): an edm model,
    /// or any score model off the torus with --integrator.
    func usesNoiseLevelGrid(_ c: DiffusionConfiguration) -> Bool {
        c.method.usesVEProcess && (c.parameterization == .edm || integrator != nil)
    }

    /// The draw settings on the noise-level grid (nil: the model's own process and time grid).
    func drawSettings(_ model: DiffusionModel) throws -> DrawSettings? {
        guard usesNoiseLevelGrid(model.configuration) else {
            if weights == .exact { throw FailureMessage("--weights exact is for draws on the noise-level grid (an edm model or --integrator); on the model's own grid --process ode gives exact weights") }
            return nil
        }
        if model.space.isPeriodic { throw FailureMessage("--integrator draws off the torus only: a periodic model draws on its own time grid (leave --integrator out)") }
        let integrator = integrator ?? .heun
        let stochastic = (process ?? (integrator == .pc ? .sde : .ode)) == .sde
        if integrator == .pc && !stochastic { throw FailureMessage("--integrator pc is stochastic: leave --process ode out") }
        if weights == .exact && stochastic { throw FailureMessage("--weights exact needs a deterministic draw (--process ode, euler or heun)") }
        if resample && weights != .exact { throw FailureMessage("--resample needs importance weights: add --weights exact (a deterministic draw)") }
        return DrawSettings(integrator: integrator, steps: timeSteps ?? 18, stochastic: stochastic, exactWeights: weights == .exact)
    }

    func runModel(_ path: String, world: Communicator) throws {
        let clock = ContinuousClock.now
        let (checkpoint, energySystem, diffusion) = try loadModel(path, world: world)
        var rng = SeededGenerator(seed: SeededGenerator.rankSeed(seed, rank: world.rank), stream: 7)
        let stride = energySystem.coordinateCount
        let share = ChainRunner.block(samples, parts: world.size, part: world.rank).count
        // Rank 0 gathers every draw: positions, copies for the gather, the correction and the file.
        try MemoryLimit.check("--samples", samples, bytesPerUnit: Double(stride) * 8 * 4,
                              detail: "\(stride) coordinates × 8 bytes × 4 copies")
        let progress = ProgressBar(label: "sampling", total: share)
        var x: [Double] = [], u: [Double] = [], logW: [Double] = []
        var mirrored: Int? = nil
        let grid = try drawSettings(diffusion)
        if let t = modelTemperature {
            let beta = 1 / t
            guard diffusion.isTemperatureConditioned else {
                throw FailureMessage("--model-temperature needs a temperature-conditioned model (train --temperature-conditioning); \(path) draws at the target only")
            }
            diffusion.logBeta = log(beta)
            print(String(format: "drawing at temperature %.4g × kT (β = %.4g)", t, beta))
        }
        if let draws {
            (x, u, logW) = try readDraws(draws, system: energySystem)
        } else {
            if let grid { print("drawing on \(grid.steps) noise levels with \(grid.integrator.rawValue) (\(grid.stochastic ? "sde" : "ode"), \(grid.networkEvaluations) network evaluations per sample\(grid.exactWeights ? ", exact weights" : ""))") }
            while u.count < share && !Interrupt.isRequested {
                let chunk = min(grid?.exactWeights == true ? 64 : 500, share - u.count)
                if let grid {
                    let paths = try diffusion.sampleNoiseLevels(batch: chunk, system: energySystem, settings: grid, rng: &rng)
                    x += paths.samples
                    u += paths.sampleEnergies
                    logW += paths.logWeights
                } else {
                    let drawn = try diffusion.generate(count: chunk, system: energySystem, rng: &rng, chunk: chunk,
                                                       probabilityFlow: process == .ode)
                    x += drawn.samples
                    u += drawn.energies
                    logW += drawn.logWeights
                }
                progress.update(u.count)
            }
            progress.finish()
            mirrored = try foldMirrorImages(&x, &u, &logW, system: energySystem, beta: diffusion.drawBeta)
        }
        var evaluations = [energySystem.energyEvaluations, energySystem.gradientEvaluations]
        if world.isDistributed {
            let all = try SampleBatch(stride: stride, positions: x, energies: u, logWeights: logW).gathered(on: world)
            evaluations = try world.sum(evaluations)
            guard let all else { return }
            (x, u, logW) = (all.positions, all.energies, all.logWeights)
        }
        // Draws without weights (stochastic integrators, or --weights none on the grid) carry nan:
        // the correction then keeps every sample, and the files record log w = 0 (equal weights).
        let weighted = !logW.contains { $0.isNaN }
        let weights = ImportanceWeights(logWeights: weighted ? logW : [Double](repeating: 0, count: logW.count))
        let logZ = weights.logZ, logZError = weights.logZError()
        var order = Array(0..<u.count)
        let rawEnergies = u
        if let rawOut {
            let frames = try writeModelFrames(to: rawOut, x, u, order: Array(u.indices), system: energySystem,
                                              method: checkpoint.configuration.method.rawValue,
                                              titleSuffix: " (raw draws)") { weighted ? logW[$0] : 0 }
            print("wrote the \(frames) raw draws to \(rawOut)")
        }
        var bondCheck: BondCheck? = nil
        if let bonds = energySystem.bonds(), let start = energySystem.initialPositions() {
            let check = BondCheck(graph: BondGraph(particles: energySystem.particleCount, bonds: bonds), positions: x,
                                  reference: start, dimension: energySystem.dimension)
            print(String(format: "bonds of the drawn samples: rms deviation %.4f (length units) from the start structure's lengths; whole molecules (every bond within ±25 %%): %.1f %%",
                         check.rmsDeviation, 100 * check.wholeFraction))
            bondCheck = check
        }
        let correction = correctSteps > 0 ? try correct(&x, &u, logWeights: logW, model: diffusion,
                                                         system: energySystem, rng: &rng) : nil
        if resample && correction == nil { order = weights.resample(count: u.count, rng: &rng) }
        let frames = try writeModelFrames(to: out, x, u, order: order, system: energySystem,
                                          method: checkpoint.configuration.method.rawValue) { i in
            correction != nil || !weighted ? 0 : resample ? logZ : logW[i]
        }
        let elapsed = ContinuousClock.now - clock
        let seconds = elapsed.inSeconds
        print("wrote \(frames) frames to \(out)\(resample ? " (multinomially resampled)" : "")\(Interrupt.isRequested ? " (interrupted by \(Interrupt.signalName))" : "")")
        if weighted {
            print(String(format: "ESS: %.1f, ESS/N: %.4f", weights.effectiveSampleSize, weights.effectiveSampleFraction))
            print(String(format: "log Ẑ: %.4f ± %.4f (bootstrap), mean log w (ELBO): %.4f", logZ, logZError, weights.meanLogWeight))
        } else {
            print("importance weights: none (fast draws; --weights exact with a deterministic draw gives them)")
        }
        print(String(format: "energy u (as drawn): mean %.4f, self-normalised reweighted mean %.4f, u > 0: %.2f %%",
                     rawEnergies.reduce(0, +) / Double(max(1, rawEnergies.count)), weights.reweightedMean(rawEnergies),
                     100 * Double(rawEnergies.filter { !($0 <= 0) }.count) / Double(max(1, rawEnergies.count))))
        print("energy evaluations: \(evaluations[0]), gradient evaluations: \(evaluations[1])\(world.isDistributed ? " (all \(world.size) ranks)" : "")")
        if let warning = brokenDrawsWarning(energies: rawEnergies, essFraction: weighted ? weights.effectiveSampleFraction : nil,
                                            system: energySystem) {
            FileHandle.standardError.write(Data("warning: \(warning)\n".utf8))
        }
        if let correction { try report(correction) }
        print(String(format: "training budget of the model: %d energy, %d gradient evaluations, %.1f s",
                     checkpoint.state.energyEvaluations, checkpoint.state.gradientEvaluations, checkpoint.state.trainingSeconds))
        print(String(format: "wall time: %.2f s (%d threads)", seconds, energySystem.threads))
        if let json {
            try writeJSON(ModelSampleReport(
                model: path, method: checkpoint.configuration.method.rawValue, plugin: energySystem.plugin.name,
                pluginParameters: energySystem.parameters, out: out, frames: frames, resampled: resample,
                interrupted: Interrupt.isRequested, ess: weighted ? weights.effectiveSampleSize : .nan,
                essFraction: weighted ? weights.effectiveSampleFraction : .nan,
                logZ: weighted ? logZ : .nan, logZError: weighted ? logZError : .nan, elbo: weighted ? weights.meanLogWeight : .nan,
                energyMean: rawEnergies.reduce(0, +) / Double(max(1, rawEnergies.count)),
                reweightedEnergyMean: weights.reweightedMean(rawEnergies),
                energyEvaluations: evaluations[0], gradientEvaluations: evaluations[1],
                trainingEnergyEvaluations: checkpoint.state.energyEvaluations,
                trainingGradientEvaluations: checkpoint.state.gradientEvaluations,
                trainingSeconds: checkpoint.state.trainingSeconds, wallSeconds: seconds, threads: energySystem.threads,
                correction: correction, mirrored: mirrored, bonds: bondCheck, weighted: weighted,
                integrator: grid?.integrator.rawValue, process: grid.map { $0.stochastic ? "sde" : "ode" },
                noiseLevels: grid?.steps, networkEvaluationsPerSample: grid?.networkEvaluations,
                temperature: modelTemperature), to: json)
            print("wrote \(json)")
        }
        if Interrupt.isRequested { throw Interrupt.exitCode }
    }
}
extension MCMCDistribution: ExpressibleByArgument {}
extension Integrator: ExpressibleByArgument {}
