import Foundation
import PluginHost
import Sampling

extension Ensemble.Sample {
    /// SMC correction of a trained sampler's draws (on rank 0, after the gather): replaces the
    /// samples and energies by the corrected ones (equal weights).
    func correct(_ x: inout [Double], _ u: inout [Double], logWeights: [Double], model: DiffusionModel,
                 system: EnergySystem, rng: inout SeededGenerator) throws -> CorrectionReport {
        var settings = CorrectionSettings(steps: correctSteps)
        settings.resampleThreshold = correctThreshold
        settings.globalMoves = correctGlobal
        settings.annealSteps = correctAnneal
        settings.stepSizePerSample = correctStepSize == .perSample
        if correctGlobal > 0 && !model.configuration.method.usesVEProcess {
            throw FailureMessage("--correct-global needs a score model (idem or dsm): a \(model.configuration.method.rawValue) model has no probability flow")
        }
        let mala = MALAKernel(space: model.space, system: system)
        let kernel: any MCMCKernel = correctLeapfrog > 0
            ? HMCKernel(space: model.space, system: system, leapfrogSteps: correctLeapfrog) : mala
        if correctLeapfrog > 0 { settings.initialStepSize = HMCKernel.stepSize(equivalentToMALA: settings.initialStepSize) }
        let progress = ProgressBar(label: "correcting", total: correctSteps)
        let result: (positions: [Double], energies: [Double], report: CorrectionReport)
        do {
            result = try SMCCorrection(settings: settings, kernel: kernel,
                                       global: correctGlobal > 0 ? IndependenceKernel(model: model, kernel: mala) : nil)
                .run(positions: x, energies: u, logWeights: logWeights, rng: &rng,
                     progress: { done, _ in progress.update(done) })
        } catch {
            progress.finish()
            throw FailureMessage("correction failed: \(error)")
        }
        progress.finish()
        x = result.positions
        u = result.energies
        return result.report
    }

    /// Prints the correction's metrics and writes them to <out>.correction.json.
    func report(_ r: CorrectionReport) throws {
        let weights = !r.annealingBetas.isEmpty
            ? String(format: "weights ESS/N %.4f, annealed from β = %.3f", r.essFraction, r.annealingBetas[0])
            : r.resampled
            ? String(format: "resampled by the importance weights (ESS/N %.4f ≥ %.3g)", r.essFraction, correctThreshold)
            : String(format: "weights unusable (ESS/N %.2e < %.3g): samples kept as drawn%@", r.essFraction, correctThreshold,
                     r.replacedNonFinite > 0 ? ", \(r.replacedNonFinite) non-finite ones replaced" : "")
        if !r.annealingBetas.isEmpty {
            let shown = r.annealingBetas.count <= 12 ? r.annealingBetas : Array(r.annealingBetas.prefix(6)) + Array(r.annealingBetas.suffix(6))
            print("annealed start: \(r.annealingBetas.count) temperatures, β = " + shown.map { String(format: "%.3f", $0) }.joined(separator: ", ")
                  + (shown.count < r.annealingBetas.count ? " (middle omitted)" : "") + "; resampled and \(correctAnneal) \(correctLeapfrog > 0 ? "HMC" : "MALA") steps at each")
        }
        let moves = correctLeapfrog > 0 ? "HMC steps (\(correctLeapfrog) leapfrog each)" : "MALA steps"
        let size = r.stepSizeRange.map { String(format: "step size per sample %.3g–%.3g (population's %.3g)", $0[0], $0[1], r.stepSize) }
            ?? String(format: "step size %.3g", r.stepSize)
        print("correction: \(weights); \(correctSteps) \(moves) per sample, \(size) (adapted over the first quarter)")
        for s in [r.halfway, r.final] {
            print(String(format: "  after %4d steps: mean u %.4f ± %.4f, u > 0: %.2f %%, acceptance %.3f",
                         s.steps, s.meanEnergy, s.energyError, 100 * s.positiveEnergyFraction, s.acceptance))
        }
        let drift = abs(r.final.meanEnergy - r.halfway.meanEnergy)
        let noise = 2 * (r.final.energyError * r.final.energyError + r.halfway.energyError * r.halfway.energyError).squareRoot()
        print(String(format: "  energy W2 between K/2 and K: %.4f; mean u moved by %.4f (%@)", r.energyW2BetweenHalves, drift,
                     drift <= noise ? "within 2σ: no drift seen between K/2 and K; slow modes can still hide, so compare with a longer run" : "more than 2σ: increase --correct-steps"))
        if let a = r.globalAcceptance {
            print(String(format: "  global moves (independence Metropolis, probability-flow proposal): %d per sample, acceptance %.3f", r.globalMoves, a))
        }
        print("  correction evaluations: \(r.energyEvaluations) energy, \(r.gradientEvaluations) gradient; \(String(format: "%.2f", r.seconds)) s")
        let path = correctionSummaryPath
        try writeJSON(r, to: path)
        print("  written to \(path)")
    }
}
