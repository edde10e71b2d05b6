import Equivariant
import Foundation
import PluginHost
import Sampling

extension ModelSampling {
    /// SMC correction of a trained sampler's draws (on rank 0, after the gather): the corrected
    /// samples (equal weights) and the report.
    func correct(_ draws: SampleBatch, model: DiffusionModel, system: EnergySystem,
                 rng: inout SeededGenerator) throws -> (samples: SampleBatch, report: CorrectionReport) {
        let c = correction
        var settings = CorrectionSettings(steps: c.steps)
        settings.resampleThreshold = c.threshold
        settings.globalMoves = c.global
        settings.annealSteps = c.anneal
        if c.global > 0 && !model.configuration.method.usesVEProcess {
            throw FailureMessage("--correct-global needs a score model (idem or dsm): a \(model.configuration.method.rawValue) model has no probability flow")
        }
        let mala = MALAKernel(space: model.space, system: system)
        let masses = moleculeMasses(system, space: model.space)
        // A molecule moves by HMC on repartitioned masses unless --correct-leapfrog says otherwise.
        let leapfrog = c.leapfrog ?? (masses != nil ? CorrectionOptions.moleculeLeapfrog : 0)
        settings.stepSizePerSample = (c.stepSize ?? (masses != nil ? .perSample : .shared)) == .perSample
        var kernel: any MCMCKernel = mala
        if leapfrog > 0 {
            settings.initialStepSize = HMCKernel.stepSize(equivalentToMALA: settings.initialStepSize)
            if let masses {
                kernel = HMCKernel.molecular(space: model.space, system: system, leapfrogSteps: leapfrog,
                                             atomMasses: masses.atoms, hydrogenBonds: masses.hydrogenBonds)
            } else {
                kernel = HMCKernel(space: model.space, system: system, leapfrogSteps: leapfrog)
            }
        }
        let progress = ProgressBar(label: "correcting", total: c.steps)
        let result: (samples: SampleBatch, report: CorrectionReport)
        do {
            result = try SMCCorrection(settings: settings, kernel: kernel,
                                       global: c.global > 0 ? IndependenceKernel(model: model, kernel: mala) : nil)
                .run(draws, rng: &rng,
                     progress: { done, _ in progress.update(done) })
        } catch {
            progress.finish()
            throw FailureMessage("correction failed: \(error)")
        }
        progress.finish()
        var described = result
        described.report.moves = leapfrog == 0 ? "MALA steps"
            : "HMC steps (\(leapfrog) leapfrog each\(masses != nil ? ", hydrogen-repartitioned masses" : ""))"
        return described
    }

    /// A molecule's atom masses and X–H bonds (the plugin's bonds with a hydrogen, for the
    /// repartitioning); nil for anything else (no atom table, no bonds, or not a centred space).
    func moleculeMasses(_ system: EnergySystem, space: Space) -> (atoms: [Double], hydrogenBonds: [BondConstraint])? {
        guard system.isMolecule, space.kind == .centred, let atoms = system.atoms(), let bonds = system.bonds() else { return nil }
        let hydrogen = atoms.map { $0.element.uppercased() == "H" }
        let xh = bonds.filter { hydrogen[$0.0] != hydrogen[$0.1] }.map { BondConstraint($0.0, $0.1, length: 0) }
        return (atoms.map(\.mass), xh)
    }

    /// Prints the correction's metrics and writes them to <out>.correction.json.
    func report(_ r: CorrectionReport) throws {
        let moves = r.moves ?? "MALA steps"
        let weights = !r.annealingBetas.isEmpty
            ? String(format: "weights ESS/N %.4f, annealed from β = %.3f", r.essFraction, r.annealingBetas[0])
            : r.resampled
            ? String(format: "resampled by the importance weights (ESS/N %.4f ≥ %.3g)", r.essFraction, correction.threshold)
            : String(format: "weights unusable (ESS/N %.2e < %.3g): samples kept as drawn%@", r.essFraction, correction.threshold,
                     r.replacedNonFinite > 0 ? ", \(r.replacedNonFinite) non-finite ones replaced" : "")
        if !r.annealingBetas.isEmpty {
            let shown = r.annealingBetas.count <= 12 ? r.annealingBetas : Array(r.annealingBetas.prefix(6)) + Array(r.annealingBetas.suffix(6))
            print("annealed start: \(r.annealingBetas.count) temperatures, β = " + shown.map { String(format: "%.3f", $0) }.joined(separator: ", ")
                  + (shown.count < r.annealingBetas.count ? " (middle omitted)" : "") + "; resampled and \(correction.anneal) \(moves == "MALA steps" ? "MALA" : "HMC") steps at each")
        }
        let size = r.stepSizeRange.map { String(format: "step size per sample %.3g–%.3g (population's %.3g)", $0[0], $0[1], r.stepSize) }
            ?? String(format: "step size %.3g", r.stepSize)
        print("correction: \(weights); \(correction.steps) \(moves) per sample, \(size) (adapted over the first quarter)")
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
        let path = Self.correctionSummaryPath(out: out)
        try writeJSON(r, to: path)
        print("  written to \(path)")
    }

    /// Where --correct-steps writes its metrics: <out without .nc>.correction.json.
    static func correctionSummaryPath(out: String) -> String {
        URL(fileURLWithPath: out).deletingPathExtension().path + ".correction.json"
    }
}
