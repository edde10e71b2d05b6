import ArgumentParser
import Distributed
import Foundation
import Sampling

extension Ensemble.Train {
    /// The long option names given on this command line ("--hidden 32" and "--hidden=32" alike).
    static func givenOptions(_ arguments: [String] = CommandLine.arguments) -> Set<String> {
        Set(arguments.dropFirst().compactMap { argument -> String? in
            guard argument.hasPrefix("--") else { return nil }
            return String(argument.split(separator: "=", maxSplits: 1)[0])
        })
    }

    /// With --resume, every option that shapes the model or its training and that was given on
    /// the command line must agree with the checkpoint (options left out take the checkpoint's
    /// values), and --steps / --energy-budget must not lie below what was already done (--steps
    /// equal to the steps done is a finished run: a message and exit status 0).
    /// - Throws: `FailureMessage` naming the option, its value and the checkpoint's.
    func checkResume(against checkpoint: DiffusionCheckpoint, given: Set<String> = givenOptions()) throws {
        let stored = checkpoint.configuration, asked = makeConfiguration()
        func text<T>(_ value: T?) -> String { value.map { "\($0)" } ?? "none" }
        let fields: [(option: String, asked: String, stored: String)] = [
            ("--method", asked.method.rawValue, stored.method.rawValue),
            ("--langevin-preconditioning", "\(asked.langevinPreconditioning)", "\(stored.langevinPreconditioning)"),
            ("--hidden", "\(asked.hidden)", "\(stored.hidden)"),
            ("--layers", "\(asked.layers)", "\(stored.layers)"),
            ("--batch", "\(asked.batch)", "\(stored.batch)"),
            ("--time-steps", "\(asked.timeSteps)", "\(stored.timeSteps)"),
            ("--learning-rate", "\(asked.learningRate)", "\(stored.learningRate)"),
            ("--noise-scale", "\(asked.noiseScale)", "\(stored.noiseScale)"),
            ("--exploration", "\(asked.exploration)", "\(stored.exploration)"),
            ("--no-replay", "\(!asked.useBuffer)", "\(!stored.useBuffer)"),
            ("--local-search-every", "\(asked.localSearchEvery)", "\(stored.localSearchEvery)"),
            ("--sigma-min", "\(asked.sigmaMin)", "\(stored.sigmaMin)"),
            ("--sigma-max", "\(asked.sigmaMax)", "\(stored.sigmaMax)"),
            ("--monte-carlo-samples", "\(asked.monteCarloSamples)", "\(stored.monteCarloSamples)"),
            ("--refill-every", "\(asked.refillEvery)", "\(stored.refillEvery)"),
            ("--refill-samples", "\(asked.refillSamples)", "\(stored.refillSamples)"),
            ("--initial-buffer", "\(asked.initialBuffer)", "\(stored.initialBuffer)"),
            ("--precision", (asked.precision ?? .double).rawValue, (stored.precision ?? .double).rawValue),
            ("--data-samples", text(asked.data?.samples), text(stored.data?.samples)),
            ("--force-blend", text(asked.forceBlendSigma), text(stored.forceBlendSigma)),
            ("--predict-score", "\(asked.predictsNoise == false)", "\(stored.predictsNoise == false)"),
            ("--tanh-range", text(asked.tanhRange), text(stored.tanhRange)),
            ("--graph-cutoff", text(asked.graphCutoff), text(stored.graphCutoff)),
            ("--smooth-cutoff", "\(asked.smoothCutoff ?? false)", "\(stored.smoothCutoff ?? false)"),
            ("--energy-clip", text(asked.energyClip), text(stored.energyClip)),
            ("--langevin-clip", "\(asked.langevinClip)", "\(stored.langevinClip)"),
            ("--langevin-init", text(asked.langevinInitialScale), text(stored.langevinInitialScale)),
            ("--seed", "\(asked.seed)", "\(stored.seed)"),
            ("--exploration-steps", "\(explorationSteps)", "\(checkpoint.state.explorationHorizon)"),
        ]
        let conflicts = fields.filter { given.contains($0.option) && $0.asked != $0.stored }
        if !conflicts.isEmpty {
            let lines = conflicts.map { "  \($0.option): \($0.asked) given, the checkpoint has \($0.stored)" }
            throw FailureMessage("""
                --resume: options differ from the checkpoint \(out):
                \(lines.joined(separator: "\n"))
                leave them out to continue with the checkpoint's values, or train a new model (a new --out, or --overwrite without --resume)
                """)
        }
        let done = checkpoint.state.step
        if let steps, steps == done {
            // Restartable scripts rerun the same command: a finished run is done, not an error.
            if Communicator.world.isRoot {
                print("\(out) already holds \(done) steps (--steps \(steps) counts the whole run): nothing to train; give a larger --steps to continue")
            }
            throw ExitCode.success
        }
        if let steps, steps < done {
            throw FailureMessage("--resume: --steps \(steps) counts the whole run, and \(out) already holds \(done) steps: give --steps larger than \(done) to train further")
        }
        if let energyBudget, energyBudget <= checkpoint.state.energyEvaluations {
            throw FailureMessage("--resume: --energy-budget \(energyBudget) counts the whole run, and \(out) already spent \(checkpoint.state.energyEvaluations) energy evaluations: give a larger budget to train further")
        }
    }
}
