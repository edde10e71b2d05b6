import Analysis
import Distributed
import Equivariant
import Foundation
import PluginHost
import Sampling

extension MCMCSampling {
    /// Refuses a run whose walkers would not fit in memory, before any file is written: each of
    /// the chains × temperatures walkers keeps its positions, gradient, proposal and the proposal's
    /// gradient, noise and record copies (about 10 arrays of the system's coordinates).
    func checkMemory(system: EnergySystem, temperatures: Int) throws {
        let coordinates = Double(system.coordinateCount)
        try MemoryLimit.check("--chains", mcmc.chains, bytesPerUnit: Double(temperatures) * coordinates * 8 * 10,
                              detail: "\(temperatures) temperature(s) × \(system.coordinateCount) coordinates × 8 bytes × 10 arrays")
    }

    /// MCMC on every rank; rank 0 writes the gathered frames and the summary.
    func run(world: Communicator) throws {
        let energySystem = try common.makeSystem(plugin: plugin, parameters: parameters + temperatureParameter())
        if sampler?.isDynamics == true || (sampler == nil && energySystem.isMolecule) {
            if sampler == nil {
                try Ensemble.Sample.checkMCMCOptionsUnused(mcmc, sampler: "langevin (the default for a molecule)", validating: false)
            }
            return try runDynamics(system: energySystem, world: world)
        }
        if sampler == nil {
            try Ensemble.Sample.checkDynamicsOptionsUnused(dynamicsOptions, sampler: "mala (the default for a system without hydrogen)",
                                                           validating: false)
        }
        let registration = mcmcSampler.kernel!, pt = registration.tempered
        try checkMemory(system: energySystem, temperatures: pt ? mcmc.replicas : 1)
        let start = try startPositions(energySystem)
        let fixed: Bool? = switch mcmc.centreOfMass { case .on: true; case .off: false; case .auto: nil }
        let space = Space.forMCMC(energySystem, at: start, fixCentreOfMass: fixed)
        let settings = MCMCSettings(chains: mcmc.chains, burnIn: mcmc.burnIn, thin: mcmc.thin, samples: samples, seed: seed,
                                    replicas: pt ? mcmc.replicas : nil, maxTemperature: pt ? mcmc.maxTemperature : nil,
                                    exchangeEvery: pt ? mcmc.exchangeEvery : nil, initialStepSize: mcmc.stepSize)
        let output = !world.isRoot ? nil : try TrajectoryOutput(
            path: out, system: energySystem, variables: ["energy"], units: ["energy": "kT"],
            title: "ensemble sample \(mcmcSampler.rawValue) \(energySystem.plugin.name) \(energySystem.parameters)",
            overwrite: overwrite, sampler: mcmcSampler.rawValue, chains: mcmc.chains)
        let progress = ProgressBar(label: "sampling", total: mcmc.burnIn + settings.productionSteps)
        // One rank: Ctrl-C also ends burn-in, at the next energy evaluation (under mpirun the
        // ranks stop together at the next recorded step).
        if !world.isDistributed { energySystem.interruption = { Interrupt.isRequested } }
        var step = 0
        let series = ChainSeries(), angles = world.isRoot ? try? AngleSeries(system: energySystem) : nil
        let summary: MCMCSummary
        do {
            // Every walker starts at `start` plus 0.01·N(0, 1) noise.
            summary = try ChainRunner(settings: settings).run(
                kernel: registration.make(space, energySystem), start: start, jitter: 0.01,
                communicator: world, distribution: mcmc.distribution,
                record: { x, u, _ in
                    step += 1
                    series.append(u)
                    angles?.append(x)
                    let stride = energySystem.coordinateCount
                    for c in 0..<u.count {
                        try output!.append(Array(x[(c * stride)..<((c + 1) * stride)]),
                                           time: Double(mcmc.burnIn + step * mcmc.thin), values: ["energy": u[c]])
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
        if mcmcSampler.isTempered {
            let pairs = s.exchangeAcceptance.enumerated().map { String(format: "%d↔%d %.2f", $0, $0 + 1, $1) }
            print("replica exchange acceptance: \(pairs.joined(separator: ", "))")
            let ladder = MCMCSettings.ladder(replicas: mcmc.replicas, maxTemperature: mcmc.maxTemperature)
            print("temperatures (× kT): \(ladder.map { String(format: "%.3g", 1 / $0) }.joined(separator: ", "))")
        }
        print("energy evaluations: \(s.energyEvaluations), gradient evaluations: \(s.gradientEvaluations)\(ranks > 1 ? " (all ranks)" : "")")
        print(String(format: "wall time: %.2f s (%d threads%@)", s.seconds, system.threads,
                     ranks > 1 ? " per rank, \(ranks) ranks, \(mcmc.distribution.rawValue) split" : ""))
    }
}
