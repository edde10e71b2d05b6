import Analysis
import Distributed
import Equivariant
import Foundation
import PluginHost
import Sampling

extension ModelSampling {
    /// The checkpoint at `path` (with --time-steps applied), its plugin's system, checked against
    /// --plugin / --param, and the model.
    func loadModel(_ path: String, world: Communicator) throws
        -> (checkpoint: DiffusionCheckpoint, system: EnergySystem, model: DiffusionModel) {
        var checkpoint: DiffusionCheckpoint
        do { checkpoint = try DiffusionCheckpoint.read(from: path) } catch { throw FailureMessage("\(error)") }
        try checkDrawOptions(method: checkpoint.configuration.method)
        if let timeSteps = options.timeSteps, !usesNoiseLevelGrid(checkpoint.configuration) {
            do { checkpoint = try checkpoint.drawing(timeSteps: timeSteps) } catch let error as DiffusionError {
                guard case .checkpoint(let message) = error else { throw error }
                throw FailureMessage(message)
            }
        }
        if let plugin = common.plugin, plugin != checkpoint.plugin {
            throw FailureMessage("--plugin \(plugin) differs from the checkpoint's plugin '\(checkpoint.plugin)'")
        }
        let stored = checkpoint.pluginParameters
        if !parameters.isEmpty && parameters.joined(separator: ";") != stored {
            throw FailureMessage("--param \(parameters.joined(separator: ";")) differs from the checkpoint's parameters '\(stored)'")
        }
        let storedParameters = stored.isEmpty ? [] : stored.split(separator: ";").map(String.init)
        let energySystem: EnergySystem
        do {
            energySystem = try common.makeSystem(plugin: checkpoint.plugin, parameters: storedParameters)
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
    func readDraws(_ path: String, system: EnergySystem) throws -> SampleBatch {
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
        return SampleBatch(stride: system.coordinateCount, positions: x, energies: u, logWeights: logW)
    }

    /// Whether a score model draws on the noise-level grid (`sampleNoiseLevels`): an edm model,
    /// or any score model off the torus with --integrator.
    func usesNoiseLevelGrid(_ c: DiffusionConfiguration) -> Bool {
        c.method.usesVEProcess && (c.parameterization == .edm || options.integrator != nil)
    }

    /// The draw settings on the noise-level grid (nil: the model's own process and time grid).
    func drawSettings(_ model: DiffusionModel) throws -> DrawSettings? {
        guard usesNoiseLevelGrid(model.configuration) else {
            if options.weights == .exact { throw FailureMessage("--weights exact is for draws on the noise-level grid (an edm model or --integrator); on the model's own grid --process ode gives exact weights") }
            return nil
        }
        if model.space.isPeriodic { throw FailureMessage("--integrator draws off the torus only: a periodic model draws on its own time grid (leave --integrator out)") }
        let integrator = options.integrator ?? .heun
        // A molecule (a model with a bond graph) draws by the stochastic sampler unless exact weights
        // are asked for: its churn re-noises and re-denoises every level, which repairs the bonds
        // the deterministic flow leaves bent (docs/alanine.md, "Drawing a molecule").
        let molecule = model.configuration.bondGraph != nil && options.weights != .exact
        let stochastic = (options.process ?? (integrator == .pc || molecule ? .sde : .ode)) == .sde
        if integrator == .pc && !stochastic { throw FailureMessage("--integrator pc is stochastic: leave --process ode out") }
        if options.weights == .exact && stochastic { throw FailureMessage("--weights exact needs a deterministic draw (--process ode, euler or heun)") }
        if options.resample && options.weights != .exact { throw FailureMessage("--resample needs importance weights: add --weights exact (a deterministic draw)") }
        return DrawSettings(integrator: integrator, steps: options.timeSteps ?? 18, stochastic: stochastic, exactWeights: options.weights == .exact)
    }

    /// Samples from a trained diffusion sampler, with importance weights. With many ranks each
    /// draws its block of the samples (seed from (seed, rank)); rank 0 gathers them in rank
    /// order, reweights, resamples and writes.
    func run(world: Communicator) throws {
        let clock = ContinuousClock.now
        let (checkpoint, energySystem, diffusion) = try loadModel(path, world: world)
        var rng = SeededGenerator(seed: SeededGenerator.rankSeed(seed, rank: world.rank), stream: 7)
        let stride = energySystem.coordinateCount
        let share = ChainRunner.block(samples, parts: world.size, part: world.rank).count
        // Rank 0 gathers every draw: positions, copies for the gather, the correction and the file.
        try MemoryLimit.check("--samples", samples, bytesPerUnit: Double(stride) * 8 * 4,
                              detail: "\(stride) coordinates × 8 bytes × 4 copies")
        let progress = ProgressBar(label: "sampling", total: share)
        var drawn = SampleBatch(stride: stride)
        var mirrored: Int? = nil
        let grid = try drawSettings(diffusion)
        if let t = options.modelTemperature {
            let beta = 1 / t
            guard diffusion.isTemperatureConditioned else {
                throw FailureMessage("--model-temperature needs a temperature-conditioned model (train --temperature-conditioning); \(path) draws at the target only")
            }
            diffusion.logBeta = log(beta)
            print(String(format: "drawing at temperature %.4g × kT (β = %.4g)", t, beta))
        }
        if let draws = options.draws {
            drawn = try readDraws(draws, system: energySystem)
        } else {
            if let grid { print("drawing on \(grid.steps) noise levels with \(grid.integrator.rawValue) (\(grid.stochastic ? "sde" : "ode"), \(grid.networkEvaluations) network evaluations per sample\(grid.exactWeights ? ", exact weights" : ""))") }
            while drawn.count < share && !Interrupt.isRequested {
                let chunk = min(grid?.exactWeights == true ? 64 : 500, share - drawn.count)
                if let grid {
                    drawn.append(try diffusion.sampleNoiseLevels(batch: chunk, system: energySystem, settings: grid, rng: &rng)
                        .sampleBatch(stride: stride))
                } else {
                    let d = try diffusion.generate(count: chunk, system: energySystem, rng: &rng, chunk: chunk,
                                                   probabilityFlow: options.process == .ode)
                    drawn.append(SampleBatch(stride: stride, positions: d.samples, energies: d.energies, logWeights: d.logWeights))
                }
                progress.update(drawn.count)
            }
            progress.finish()
            mirrored = try foldMirrorImages(&drawn, system: energySystem, beta: diffusion.drawBeta)
        }
        var evaluations = [energySystem.energyEvaluations, energySystem.gradientEvaluations]
        if world.isDistributed {
            let all = try drawn.gathered(on: world)
            evaluations = try world.sum(evaluations)
            guard let all else { return }
            drawn = all
        }
        // Draws without weights (stochastic integrators, or --weights none on the grid) carry nan:
        // the correction then keeps every sample, and the files record log w = 0 (equal weights).
        let logW = drawn.logWeights
        let weighted = !logW.contains { $0.isNaN }
        let weights = ImportanceWeights(logWeights: weighted ? logW : [Double](repeating: 0, count: logW.count))
        let logZ = weights.logZ, logZError = weights.logZError()
        var order = Array(0..<drawn.count)
        let rawEnergies = drawn.energies
        if let rawOut = options.rawOut {
            let frames = try writeModelFrames(to: rawOut, drawn, order: Array(drawn.energies.indices), system: energySystem,
                                              method: checkpoint.configuration.method.rawValue,
                                              titleSuffix: " (raw draws)") { weighted ? logW[$0] : 0 }
            print("wrote the \(frames) raw draws to \(rawOut)")
        }
        var bondCheck: BondCheck? = nil
        if let bonds = energySystem.bonds(), let start = energySystem.initialPositions() {
            let check = BondCheck(graph: BondGraph(particles: energySystem.particleCount, bonds: bonds), positions: drawn.positions,
                                  reference: start, dimension: energySystem.dimension)
            print(String(format: "bonds of the drawn samples: rms deviation %.4f (length units) from the start structure's lengths; whole molecules (every bond within ±25 %%): %.1f %%",
                         check.rmsDeviation, 100 * check.wholeFraction))
            bondCheck = check
        }
        var samples = drawn
        var correctionReport: CorrectionReport? = nil
        if correction.isOn {
            let corrected = try correct(drawn, model: diffusion, system: energySystem, rng: &rng)
            samples = corrected.samples
            correctionReport = corrected.report
        }
        let resample = options.resample
        if resample && correctionReport == nil { order = weights.resample(count: drawn.count, rng: &rng) }
        let frames = try writeModelFrames(to: out, samples, order: order, system: energySystem,
                                          method: checkpoint.configuration.method.rawValue) { i in
            correctionReport != nil || !weighted ? 0 : resample ? logZ : logW[i]
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
        if let correctionReport { try report(correctionReport) }
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
                correction: correctionReport, mirrored: mirrored, bonds: bondCheck, weighted: weighted,
                integrator: grid?.integrator.rawValue, process: grid.map { $0.stochastic ? "sde" : "ode" },
                noiseLevels: grid?.steps, networkEvaluationsPerSample: grid?.networkEvaluations,
                temperature: options.modelTemperature), to: json)
            print("wrote \(json)")
        }
        if Interrupt.isRequested { throw Interrupt.exitCode }
    }
}
