import ArgumentParser
import Foundation
import PluginHost
import Sampling

/// Options that a run would not use are errors that say so (issue 23: `--sampler`, `--thin` and
/// `--chains` with `--model`, `--process ode` on a path model, `--timestep` or `--replicas` with
/// MALA and `--correct-leapfrog` without a correction were silently ignored).
extension Ensemble.Sample {
    /// The MCMC and dynamics options given on the command line (those without a fixed default value).
    var mcmcOptionsGiven: [String] { mcmc.given + dynamicsOptions.given }

    /// Called from `validate()`: a group's options given in the other mode are errors.
    func validateOptionsAreUsed() throws {
        if modelOptions.model != nil {
            let unused = mcmcOptionsGiven
            if !unused.isEmpty {
                throw ValidationError("\(unused.joined(separator: ", ")) \(unused.count == 1 ? "applies" : "apply") to MCMC and dynamics runs (--plugin), not to draws from a trained sampler: with --model, --samples sets the number of independent draws and the model fixes how they are made (see --time-steps, --process, --integrator). Leave \(unused.count == 1 ? "it" : "them") out")
            }
            let other = [("--step-size", mcmc.stepSize != MCMCOptions.defaultStepSize),
                         ("--temperature", dynamicsOptions.temperature != nil)].filter(\.1).map(\.0)
            if !other.isEmpty {
                throw ValidationError("\(other.joined(separator: ", ")) \(other.count == 1 ? "applies" : "apply") to MCMC and dynamics runs (--plugin), not to draws from a trained sampler (--model): leave \(other.count == 1 ? "it" : "them") out")
            }
        } else {
            let unused = modelOptions.given + (correction.leapfrog != nil ? ["--correct-leapfrog"] : [])
            if !unused.isEmpty {
                throw ValidationError("\(unused.joined(separator: ", ")) \(unused.count == 1 ? "applies" : "apply") to draws from a trained sampler (--model MODEL.ckpt) only")
            }
        }
        if correction.leapfrog != nil && correction.steps == 0 {
            throw ValidationError("--correct-leapfrog sets the HMC moves of the correction: it needs --correct-steps K (K ≥ 2)")
        }
        if let sampler = mcmc.sampler, !sampler.isDynamics {
            try Self.checkDynamicsOptionsUnused(dynamicsOptions, sampler: sampler.rawValue)
        }
        if let sampler = mcmc.sampler, sampler.isDynamics {
            try Self.checkMCMCOptionsUnused(mcmc, sampler: sampler.rawValue)
        }
        if let sampler = mcmc.sampler, !sampler.isDynamics, !sampler.isTempered {
            let pt = [("--replicas", mcmc.replicasOption != nil), ("--max-temperature", mcmc.maxTemperatureOption != nil),
                      ("--exchange-every", mcmc.exchangeEveryOption != nil)].filter(\.1).map(\.0)
            if !pt.isEmpty {
                throw ValidationError("\(pt.joined(separator: ", ")) \(pt.count == 1 ? "applies" : "apply") to tempering (--sampler pt, or langevin/ghmc replica exchange); --sampler \(sampler.rawValue) runs at one temperature")
            }
        }
    }

    /// Refuses dynamics options for an MCMC run (`sampler`: mala or pt; also called once a
    /// system without --sampler turns out not to be a molecule).
    static func checkDynamicsOptionsUnused(_ options: DynamicsOptions, sampler: String, validating: Bool = true) throws {
        let unused = options.given
        guard unused.isEmpty else {
            let message = "\(unused.joined(separator: ", ")) \(unused.count == 1 ? "applies" : "apply") to the dynamics samplers (--sampler langevin or ghmc), not to \(sampler): MALA and PT move by --step-size (adapted during --burn-in)"
            if validating { throw ValidationError(message) }
            throw FailureMessage(message)
        }
    }

    /// Refuses MALA/PT options for a dynamics run (`sampler`: langevin or ghmc; also called once a
    /// system without --sampler turns out to be a molecule).
    static func checkMCMCOptionsUnused(_ options: MCMCOptions, sampler: String, validating: Bool = true) throws {
        let unused = options.mcmcOnlyGiven
        guard unused.isEmpty else {
            let message = "\(unused.joined(separator: ", ")) \(unused.count == 1 ? "applies" : "apply") to MALA and PT (--sampler mala or pt), not to \(sampler): the dynamics samplers move by --timestep on one rank"
            if validating { throw ValidationError(message) }
            throw FailureMessage(message)
        }
    }
}

extension ModelSampling {
    /// --process ode and --integrator need a score model (idem, dsm): a path model (tb, logvar)
    /// draws by its stochastic process on its own time grid (--process sde says just that, and is
    /// accepted). Called once the checkpoint is read.
    func checkDrawOptions(method: DiffusionMethod) throws {
        guard !method.usesVEProcess else { return }
        let unused = [("--process ode", options.process == .ode), ("--integrator", options.integrator != nil),
                      ("--weights", options.weights != .none)].filter(\.1).map(\.0)
        guard unused.isEmpty else {
            throw FailureMessage("\(unused.joined(separator: ", ")) \(unused.count == 1 ? "applies" : "apply") to score models (idem, dsm); this is a \(method.rawValue) model, which draws by its own stochastic process (sde) on its training time grid: leave \(unused.count == 1 ? "it" : "them") out")
        }
    }
}

extension ModelSampling {
    /// The warning for a trained sampler whose draws are mostly unusable (issue 23: ESS/N 0.0023
    /// and 55 % of the draws at u > 0 exited 0 without a word), or nil: importance weights with
    /// ESS/N < 0.01, or more than 1 % of the draws non-finite or at u > 0 where the plugin's start
    /// structure is bound (u < 0). Only without a correction, which it points at.
    func brokenDrawsWarning(energies u: [Double], essFraction: Double?, system: EnergySystem) -> String? {
        guard !correction.isOn, !u.isEmpty else { return nil }
        var problems: [String] = []
        if let essFraction, essFraction.isFinite, essFraction < 0.01 {
            problems.append(String(format: "the importance weights have ESS/N %.4f (< 0.01): the draws are far from the target, and reweighted averages rest on a handful of them", essFraction))
        }
        let startEnergy = system.initialPositions().flatMap { try? system.evaluate($0, batch: 1, withGradients: false).energies.first }
        let bound = (startEnergy ?? 0) < 0
        let broken = u.filter { !$0.isFinite || (bound && $0 > 0) }.count
        let fraction = Double(broken) / Double(u.count)
        if fraction > 0.01 {
            problems.append(String(format: "%.1f %% of the draws have %@ (%d of %d)%@", 100 * fraction,
                                   bound ? "u > 0 or a non-finite energy" : "a non-finite energy", broken, u.count,
                                   bound ? String(format: ", where the plugin's start structure has u = %.4g: overlapping or flying-apart configurations", startEnergy ?? 0) : ""))
        }
        guard !problems.isEmpty else { return nil }
        return "this model's draws are mostly broken: " + problems.joined(separator: "; ")
            + ". Correct them before use: --correct-steps K (e.g. 100; MCMC steps at the target per draw: HMC on repartitioned masses for a molecule, MALA otherwise; with resampling when the weights allow), or train longer"
    }
}
