import ArgumentParser
import Distributed
import Foundation
import PluginHost
import Sampling

extension Ensemble {
    /// `ensemble train`: trains a diffusion sampler (EGNN drift) and checkpoints it.
    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a neural diffusion sampler (one of the methods of --method) on a plugin's energy.",
            discussion: """
                Methods (docs/samplers.md): idem — VE noising, Monte-Carlo score target, regression, buffer from \
                the reverse SDE; tb — off-policy trajectory balance with a learned log Z and a pinned-Brownian \
                reference; logvar — the batch variance of the same path log-ratio. tb/logvar alternate on-policy \
                trajectories (with exploration noise) and backward trajectories from a rank-prioritised replay \
                buffer refined by MALA local search. --langevin-preconditioning adds c(t)·clip(∇log π) to the drift.

                The checkpoint (--out) holds the plugin name and parameters, the configuration, the network, both \
                optimisers, the RNG and the buffer; it is rewritten every --checkpoint-every steps (temp file + \
                rename), on Ctrl-C, and at the end. --resume continues from it bit for bit; --steps and \
                --energy-budget count the whole run, resumed steps included. A non-finite loss or gradient stops \
                training and keeps the last good checkpoint.

                Data-parallel under `mpirun -np R ensemble train ...` (README, "Many ranks (MPI)"): the global \
                --batch is cut into --shards shards (default R) spread over the ranks; shard k of step s draws \
                its on-policy trajectories from stream (seed, s, k), gradients are summed over ranks in rank \
                order and every rank takes the same Adam step. Replay buffers and local search are per rank. \
                Rank 0 writes the checkpoint; --resume works with any rank count. --threads sets each rank's \
                energy and network threads.

                Options of a method's own settings:
                \(TrainingMethodRegistry.all.flatMap { r in r.ownOptions.map { "  \($0.name) <\($0.valueName)>  (--method \(r.method.rawValue); default \($0.defaultValue))\n      \($0.help)." } }.joined(separator: "\n"))

                Example:
                  ensemble train --plugin double-well --method tb --steps 2000 --out dw4.ckpt
                  ensemble sample --model dw4.ckpt --samples 2000 --out dw4.nc
                  mpirun -np 2 ensemble train --plugin double-well --method tb \\
                    --steps 2000 --threads 1 --out dw4.ckpt
                """)

        @OptionGroup var system: SystemOptions
        @Option(help: ArgumentHelp("Objective: " + TrainingMethodRegistry.all.map { "\($0.method.rawValue) — \($0.summary)" }.joined(separator: "; ") + ".",
                                   valueName: DiffusionMethod.allCases.map(\.rawValue).joined(separator: "|")))
        var method: DiffusionMethod
        /// The options of a method's own settings (`TrainingMethodRegistration.ownOptions`, listed
        /// in the discussion above), e.g. `--tsm-samples 4000`.
        @Argument(parsing: .allUnrecognized, help: ArgumentHelp(visibility: .hidden))
        var methodArguments: [String] = []
        @Flag(help: "Drift = NN(x,t) + c(t)·clip(∇log π(x)) (tb, logvar).")
        var langevinPreconditioning = false
        @Option(help: "Total training steps of the run (resumed steps included).")
        var steps: Int?
        @Option(help: "Stop once this many energy evaluations were spent (whole run).")
        var energyBudget: Int?
        @Option(help: ArgumentHelp("Checkpoint file.", valueName: "model.ckpt"))
        var out: String
        @Flag(help: "Continue from the checkpoint at --out.")
        var resume = false
        @Flag(help: "Replace an existing checkpoint and its training log when not resuming, and an existing --json.")
        var overwrite = false
        @Option(help: "Seed (network initialisation and all sampling).")
        var seed: UInt64 = Ensemble.Train.sharedDefaults.seed
        @Option(help: "Network engine: float (EGNN<Float> with the SIMD kernels) or double.")
        var precision: NetworkPrecision = Ensemble.Train.sharedDefaults.precision ?? .float
        @Option(help: "EGNN hidden width.")
        var hidden: Int = Ensemble.Train.sharedDefaults.hidden
        @Option(help: "EGNN layers.")
        var layers: Int = Ensemble.Train.sharedDefaults.layers
        @Option(help: "Trajectories (tb, logvar) or regression points (idem) per step.")
        var batch: Int = Ensemble.Train.sharedDefaults.batch
        @Option(help: "Time steps of the discretised process.")
        var timeSteps: Int = Ensemble.Train.sharedDefaults.timeSteps
        @Option(help: "Adam learning rate of the network.")
        var learningRate: Double = Ensemble.Train.sharedDefaults.learningRate
        @Option(help: "Replay buffer capacity (samples; at least --batch, and for dsm at least --data-samples).")
        var bufferCapacity: Int = Ensemble.Train.sharedDefaults.bufferCapacity
        @Option(help: "tb/logvar: σ of the pinned-Brownian reference.")
        var noiseScale: Double = Ensemble.Train.sharedDefaults.noiseScale
        @Option(help: "tb/logvar: exploration noise (decays linearly to 0 over the run).")
        var exploration: Double = Ensemble.Train.sharedDefaults.exploration
        @Option(help: "tb/logvar: steps over which the exploration noise decays to 0.")
        var explorationSteps: Int = 1000
        @Flag(help: "tb/logvar: train on on-policy trajectories only (no replay buffer steps).")
        var noReplay = false
        @Option(help: "tb/logvar: MALA local search every this many steps (0: off).")
        var localSearchEvery: Int = Ensemble.Train.sharedDefaults.localSearchEvery
        @Option(help: "idem: σ_min of the VE noise.")
        var sigmaMin: Double = Ensemble.Train.sharedDefaults.sigmaMin
        @Option(help: "idem: σ_max of the VE noise.")
        var sigmaMax: Double = Ensemble.Train.sharedDefaults.sigmaMax
        @Option(help: ArgumentHelp("dsm: blend the force at the data point into the target below the noise level σ* (weight σ*²/(h+σ*²); one gradient evaluation per regression point).", valueName: "σ*"))
        var forceBlend: Double?
        @Flag(help: "dsm: the network outputs the score itself (loss h|s + ε/√h|²) instead of predicting the noise ε.")
        var predictScore = false
        @Option(help: ArgumentHelp("dsm: edm — EDM's preconditioned denoiser (inputs, skip and output scaled by σ and the data's rms coordinate σ_d; every noise level weighs O(1)); noise — the network predicts the noise. Default: edm, noise on a periodic box.", valueName: "edm|noise"))
        var parameterization: ScoreParameterization?
        @Option(help: ArgumentHelp("dsm with edm: training noise levels, log-uniform over [σ_min, σ_max], log-normal:MEAN,STD of ln σ (truncated to the range), or mixture:MEAN,STD,U (log-uniform with probability U, else the log-normal). Default: log-normal:-5.1,1.5 relative to ln σ_d; log-uniform for a molecule with a bond graph.", valueName: "log-uniform|log-normal:M,S|mixture:M,S,U"))
        var noiseLevels: NoiseLevelOption = .init(value: .logUniform)
        @Option(help: ArgumentHelp("Half-life in steps of the parameters' moving average, which sampling uses (0: none; default 500 for dsm, none otherwise).", valueName: "steps"))
        var averageHalfLife: Double?
        @Option(help: "Learning-rate warm-up steps (linear; default 200 for dsm, none otherwise).")
        var warmupSteps: Int?
        @Option(help: "After this step the learning rate decays as √(start/step) (0: constant; default 2000 for dsm).")
        var decayStart: Int?
        @Option(help: "dsm: fraction of the data (whole PT chains) held out for the validation loss (0: none; default 0.1).")
        var validationFraction: Double = Ensemble.Train.defaults(.dsm).validationFraction ?? 0
        @Option(help: "EGNN time/noise-level features: 0 — the scalar itself; K — sin and cos at K frequencies π·2^k.")
        var timeFeatures: Int = 0
        @Option(help: "dsm: validation loss every this many steps (log and plot-training).")
        var validationEvery: Int = Ensemble.Train.sharedDefaults.validationEvery
        @Option(help: "dsm: parallel-tempering configurations at the target to learn from (their evaluations count in the budget).")
        var dataSamples: Int = 2000
        @Option(help: "dsm: PT temperatures per ladder for the data.")
        var dataReplicas: Int = 8
        @Option(help: "dsm: highest PT temperature (× kT) for the data.")
        var dataMaxTemperature: Double = 5
        @Option(help: "dsm: PT ladders (independent chains) for the data.")
        var dataChains: Int = 8
        @Option(help: "dsm: PT steps per chain before recording (step sizes adapt).")
        var dataBurnIn: Int = 20000
        @Option(help: "dsm: record every K-th PT step of each chain.")
        var dataThin: Int = 100
        @Option(name: .customLong("data"), help: ArgumentHelp("dsm: learn from this trajectory of `ensemble sample` (e.g. a molecule's Langevin replica exchange) instead of parallel tempering; the evaluations in its --json summary count in the budget.", valueName: "FILE.nc"))
        var dataTrajectory: String?
        @Option(name: .customLong("data-json"), help: ArgumentHelp("dsm with --data: the trajectory's `sample --json` summary (default: beside it, .json).", valueName: "FILE.json"))
        var dataJSON: String?
        @Option(help: ArgumentHelp("EGNN node types: atom (one per atom: residue and name), element, or none (default: atom for a molecule, none otherwise).", valueName: "atom|element|none"))
        var atomTypes: AtomTyping?
        @Option(help: "EGNN coordinate bound range·tanh (0: none; default 15 for idem, none otherwise).")
        var tanhRange: Double?
        @Option(help: "Periodic boxes: EGNN graph cutoff (minimum-image distance, below half the box edge; default: all pairs).")
        var graphCutoff: Double?
        @Flag(help: "dsm on a molecule whose plugin reports bonds: isotropic noise and no edge classes instead of the bond graph's harmonic prior and bonded/1–3/1–4/other edge features.")
        var noBondGraph = false
        @Flag(help: "dsm: learn from every replica of the tempering data, each frame tagged with its β, with the network conditioned on ln β; `sample --model-temperature F` then draws at any temperature (default: the β = 1 frames only).")
        var temperatureConditioning = false
        @Flag(help: "With --graph-cutoff: cosine envelope ½(cos(πr/r_c)+1) on every edge (continuous drift across the cutoff).")
        var smoothCutoff = false
        @Option(help: "tb/logvar: in the training loss only, u above this enters as u₀ + log(1 + u − u₀) (weights use the true u; 0: off).")
        var energyClip: Double = Ensemble.Train.sharedDefaults.energyClip ?? 0
        @Option(help: "With --langevin-preconditioning: norm clip of each particle's d-vector of ∇log π.")
        var langevinClip: Double = Ensemble.Train.sharedDefaults.langevinClip
        @Option(help: "With --langevin-preconditioning: initial c(t) (σ²/2 starts as an unadjusted Langevin chain for π).")
        var langevinInit: Double = 0
        @Option(help: "Write the checkpoint every this many steps.")
        var checkpointEvery: Int = 100
        @Option(help: ArgumentHelp(
            "Data-parallel shards of the batch, each with its own random stream (default: the number of mpirun ranks). The same --shards gives the same on-policy batches with any rank count; the training is then identical (to round-off) with --no-replay --local-search-every 0, since buffers and local search are per rank.",
            valueName: "S"))
        var shards: Int?
        @Option(help: ArgumentHelp("Off a terminal: a progress line on stderr every N steps (0: none). Every step also goes to <out>.log.jsonl.",
                                   valueName: "N"))
        var logEvery: Int = 10
        @Option(help: ArgumentHelp("Also write the final summary as JSON.", valueName: "path.json"))
        var json: String?

        func validate() throws {
            guard steps != nil || energyBudget != nil else {
                throw ValidationError("give --steps N or --energy-budget N (or both)")
            }
            if let steps, steps <= 0 { throw ValidationError("--steps must be positive, got \(steps)") }
            if let energyBudget, energyBudget <= 0 { throw ValidationError("--energy-budget must be positive") }
            guard explorationSteps > 0 else { throw ValidationError("--exploration-steps must be positive") }
            guard checkpointEvery > 0 else { throw ValidationError("--checkpoint-every must be positive") }
            guard logEvery >= 0 else { throw ValidationError("--log-every must be ≥ 0 (0: no progress lines), got \(logEvery)") }
            let ranks = Communicator.world.size
            try checkMethodOptions()
            try checkOwnOptions()
            try checkDataOptions()
            if let shards, shards < ranks {
                throw ValidationError("--shards must be at least the number of ranks (\(ranks)), got \(shards)")
            }
            if resume {
                guard FileManager.default.fileExists(atPath: out) else {
                    throw ValidationError("--resume: no checkpoint at \(out); train without --resume first")
                }
            }
            if Communicator.world.isRoot {  // rank 0 writes them
                var files = OutputFiles()
                if !resume {  // --resume continues the checkpoint and its log in place
                    files.output("--out", out)
                    files.output("the training log", TrainingLog.path(for: out), note: "written beside --out")
                }
                files.output("--json", json)
                files.input("--out", resume ? out : nil)
                files.input("--data", dataTrajectory)
                files.input("--data-json", dataJSON ?? dataTrajectory.map { URL(fileURLWithPath: $0).deletingPathExtension().path + ".json" })
                try files.check(overwrite: overwrite)
            }
        }

        func run() throws {
            let world = Communicator.world
            Interrupt.install(notice: "stopping after the current training step (the checkpoint will be saved)…",
                              secondSignalNote: "; \(out) holds the last checkpoint saved (every \(checkpointEvery) steps), if any: continue with --resume")
            try onEveryRank(world) { try train(world: world) }
        }

        /// Refuses a configuration whose batch (or buffer) would not fit in memory, before anything
        /// is allocated or written: per batch element the trajectory or Monte-Carlo draws (positions,
        /// noise, gradients) and the network's pair activations; the buffer holds configurations.
        func checkMemory(_ c: DiffusionConfiguration, system: EnergySystem) throws {
            let n = Double(system.particleCount), coordinates = Double(system.coordinateCount)
            let footprint = c.method.training.batchFootprint(c)
            let (points, arrays, what) = (Double(footprint.points), Double(footprint.arrays), footprint.what)
            let network = n * max(n - 1, 1) * Double(c.hidden) * 4 * Double(c.layers) * 3
            let perElement = points * coordinates * 8 * arrays + network
            try MemoryLimit.check("--batch", c.batch, bytesPerUnit: perElement,
                                  detail: "\(Int(perElement)) bytes: \(Int(points)) \(what) × \(system.coordinateCount) coordinates × 8 bytes × \(Int(arrays)) arrays, plus the network's pair activations")
            try MemoryLimit.check("--buffer-capacity", c.bufferCapacity, bytesPerUnit: coordinates * 8 * 2,
                                  detail: "\(system.coordinateCount) coordinates × 8 bytes × 2")
        }

        /// Training on every rank (data-parallel when there are several ranks or --shards > 1);
        /// rank 0 writes the checkpoint and prints.
        /// The resumed trainer of --out, or a fresh one of the options' configuration.
        func makeTrainer(world: Communicator) throws -> DiffusionTrainer {
            let energySystem = try system.makeSystem()
            let networkThreads = world.networkThreads(system.threads)
            if resume {
                let checkpoint = try DiffusionCheckpoint.read(from: out)
                try checkResume(against: checkpoint)
                let trainer: DiffusionTrainer
                do { trainer = try checkpoint.makeTrainer(system: energySystem, threads: networkThreads) } catch {
                    throw FailureMessage("\(error)")
                }
                if world.isRoot { print("resuming \(out) at step \(trainer.state.step) (\(checkpoint.configuration.method.rawValue))") }
                return trainer
            }
            let (configuration, data, energies) = try freshConfiguration(energySystem)
            try checkMemory(configuration, system: energySystem)
            let model: DiffusionModel
            do {
                model = try DiffusionModel(configuration: configuration, space: DiffusionSpace.of(energySystem),
                                           threads: networkThreads)
                if let data {
                    if world.isRoot { print("dsm: \(data.count) configurations from \(dataTrajectory!) (\(configuration.dataFile!.energyEvaluations) energy evaluations made them)") }
                    return try DiffusionTrainer.denoising(model: model, system: energySystem, data: data.positions,
                                                          energies: energies, explorationHorizon: explorationSteps)
                }
            } catch let error as FailureMessage {
                throw error
            } catch {
                throw FailureMessage("\(error)")
            }
            if configuration.data != nil && world.isRoot {
                print("dsm: making \(dataSamples) configurations by parallel tempering (\(dataChains) ladders × \(dataReplicas) temperatures up to \(dataMaxTemperature) kT, burn-in \(dataBurnIn), thin \(dataThin)) before training")
            }
            return DiffusionTrainer(model: model, system: energySystem, explorationHorizon: explorationSteps)
        }

        func train(world: Communicator) throws {
            let trainer = try makeTrainer(world: world)
            let shardCount = shards ?? world.size, globalBatch = trainer.configuration.batch
            guard globalBatch >= 2 * shardCount else {
                throw FailureMessage("the batch \(globalBatch) is too small for \(shardCount) shards: give at least 2 trajectories per shard")
            }
            let group = world.isDistributed || shardCount > 1
                ? DataParallelGroup(communicator: world, shards: shardCount) : nil
            group?.attach(trainer)
            let target = steps ?? Int.max
            let progress = ProgressBar(label: "training", total: steps ?? energyBudget!)
            let log = world.isRoot ? try TrainingLog(checkpoint: out, resumeAt: resume ? trainer.state.step : nil,
                                                     printEvery: logEvery, totalSteps: steps) : nil
            let clock = ContinuousClock.now, firstStep = trainer.state.step
            var lastESS = Double.nan, lastLoss = Double.nan
            func save() throws {
                guard world.isRoot else { return }
                try DiffusionCheckpoint(trainer: trainer).write(to: out)
                try log?.commit()  // the new log replaces an old one together with the checkpoint
            }
            // state.energyEvaluations: the whole run's count (over all ranks), updated each step.
            while trainer.state.step < target && trainer.state.energyEvaluations < (energyBudget ?? Int.max) {
                let report: StepReport
                do {
                    report = try trainer.step()
                } catch let error as DiffusionError {
                    progress.finish()
                    throw FailureMessage("\(error)\nthe last good checkpoint is \(out) (step of the last save)")
                }
                lastLoss = report.loss
                log?.record(report, trainer: trainer)
                if report.essFraction.isFinite { lastESS = report.essFraction }
                progress.update(steps != nil ? report.step : report.energyEvaluations,
                                detail: String(format: "loss %.4g  ESS/N %.3f  energy evals %d", report.loss, lastESS,
                                               report.energyEvaluations))
                if report.step % checkpointEvery == 0 { try save() }
                if Interrupt.isRequested && world.isRoot {  // rank 0 stops the others (onEveryRank)
                    try save()
                    progress.finish()
                    print("interrupted at step \(report.step) (\(Interrupt.signalName)): checkpoint saved to \(out); continue with --resume")
                    throw Interrupt.exitCode
                }
            }
            try save()
            progress.finish()
            guard world.isRoot else { return }
            let elapsed = ContinuousClock.now - clock
            let seconds = elapsed.inSeconds
            let model = trainer.model
            print("trained \(model.configuration.method.rawValue) to step \(trainer.state.step); checkpoint \(out)")
            print(String(format: "last loss %.6g, last on-policy batch ESS/N %.3f%@", lastLoss, lastESS,
                         model.learnedLogZ.map { String(format: ", learned log Z %.4f", $0) } ?? ""))
            if let history = trainer.state.validationHistory, let last = history.last,
               let best = history.min(by: { $0.loss < $1.loss }) {
                let which = trainer.configuration.averageHalfLife != nil ? "averaged parameters" : "parameters"
                print(String(format: "validation loss (held-out data, %@): %.5g at step %d, lowest %.5g at step %d, first %.5g",
                             which, last.loss, last.step, best.loss, best.step, history[0].loss))
            }
            if let scale = trainer.state.dataScale, model.isPreconditioned {
                print(String(format: "EDM preconditioning: data scale σ_d = %.4f, σ ∈ [%g, %g]", scale, model.configuration.sigmaMin, model.configuration.sigmaMax)
                      + (model.configuration.forceBlendSigma.map { String(format: ", force blend below σ* = %g", $0) } ?? ""))
            }
            print("space: \(model.space.kind.rawValue)\(model.space.box.map { ", box \($0)" } ?? ""), D' = \(model.space.effectiveDimension); network parameters: \(model.networkParameterCount)")
            print("energy evaluations: \(trainer.state.energyEvaluations), gradient evaluations: \(trainer.state.gradientEvaluations)\(world.isDistributed ? " (all \(world.size) ranks)" : "")")
            if let group {
                print("data-parallel: \(world.size) rank(s), \(group.shards) shards of the batch \(globalBatch)")
            }
            print(String(format: "wall time: %.2f s this run, %.2f s training in total", seconds, trainer.state.trainingSeconds))
            let stepsDone = trainer.state.step - firstStep
            if stepsDone > 0 {
                print(String(format: "training throughput: %.3f steps/s (%.1f ms per step, this run's wall time)",
                             Double(stepsDone) / seconds, 1e3 * seconds / Double(stepsDone)))
            }
            print("training log: \(TrainingLog.path(for: out)) (one JSON line per step; plot it with `ensemble plot-training \(out)`)")
            if let json {
                try writeTrainReport(trainer: trainer, lastLoss: lastLoss, lastESS: lastESS, seconds: seconds, ranks: world.size, to: json)
            }
        }
    }
}

extension DiffusionMethod: ExpressibleByArgument {}
extension ScoreParameterization: ExpressibleByArgument {}

/// `--noise-levels log-uniform | log-normal:MEAN,STD`.
struct NoiseLevelOption: ExpressibleByArgument {
    var value: NoiseLevelDistribution
    init(value: NoiseLevelDistribution) { self.value = value }
    init?(argument: String) {
        if argument == "log-uniform" { value = .logUniform; return }
        if argument.hasPrefix("mixture:") {
            let parts = argument.dropFirst("mixture:".count).split(separator: ",").compactMap { Double($0) }
            guard parts.count == 3, parts[1] > 0, parts[2] >= 0, parts[2] <= 1 else { return nil }
            value = .mixture(mean: parts[0], std: parts[1], uniform: parts[2])
            return
        }
        guard argument.hasPrefix("log-normal:") else { return nil }
        let parts = argument.dropFirst("log-normal:".count).split(separator: ",").compactMap { Double($0) }
        guard parts.count == 2, parts[1] > 0 else { return nil }
        value = .logNormal(mean: parts[0], std: parts[1])
    }
    var defaultValueDescription: String { "log-uniform" }
}
extension NetworkPrecision: ExpressibleByArgument {}
