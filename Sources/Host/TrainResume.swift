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
        let fields: [(option: String, asked: String, stored: String)] = [("--method", asked.method.rawValue, stored.method.rawValue)]
            + Self.configurationOptions.map { ($0.name, $0.text(asked), $0.text(stored)) }
            + [("--exploration-steps", "\(explorationSteps)", "\(checkpoint.state.explorationHorizon)")]
            + method.registration.ownOptions.map { ($0.name, Self.describe(asked.methodSettings), Self.describe(stored.methodSettings)) }
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

    /// A method's own settings as JSON (for the resume check's message).
    static func describe(_ settings: SettingsValue?) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        guard let settings, let data = try? encoder.encode(settings) else { return "none" }
        return String(decoding: data, as: UTF8.self)
    }
}
