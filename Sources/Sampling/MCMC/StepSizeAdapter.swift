import Foundation

/// Robbins–Monro adaptation of step sizes toward a kernel's target acceptance, on log h:
///
///     h ← h · exp(γ (a − a*)),
///
/// a the acceptance just observed, a* the kernel's `targetAcceptance`, γ the gain. One step size
/// per group (temperature level, or sample); used during burn-in only, then frozen, so that the
/// kernel is again exactly π-invariant. The one adaptation of the chains, the correction and
/// local search.
public struct StepSizeAdapter: Sendable {
    public let target: Double
    public var stepSizes: [Double]
    /// Step sizes at the start: adaptation that grows one by more than `runawayFactor` stops the run.
    public let initialStepSizes: [Double]
    /// How far adaptation may move h from its initial value before the run stops as a runaway
    /// (a proper, confined distribution settles long before: 1e8 covers an initial --step-size
    /// four orders of magnitude off in √h, the proposal's length).
    public var runawayFactor = 1e8

    public init(target: Double, stepSizes: [Double]) {
        self.target = target
        self.stepSizes = stepSizes
        initialStepSizes = stepSizes
    }

    /// h adapted by one observed acceptance.
    @inline(__always)
    public static func adapted(_ h: Double, acceptance: Double, target: Double, gain: Double = 1) -> Double {
        h * exp(gain * (acceptance - target))
    }

    /// Adapts each group's step size by its acceptance.
    public mutating func adapt(acceptance: [Double], gain: Double = 1) {
        for i in stepSizes.indices {
            stepSizes[i] = Self.adapted(stepSizes[i], acceptance: acceptance[i], target: target, gain: gain)
        }
    }

    /// The burn-in gain schedule of the chains at step t: 1/√(1 + t/20), floored at 0.02.
    public static func gain(step t: Int) -> Double { max(0.02, 1 / (1 + Double(t) / 20).squareRoot()) }

    /// Stops a run whose step-size adaptation runs away: h grew past `runawayFactor` × its
    /// initial value (or overflowed), which means proposals of any length are accepted, as for a
    /// distribution that is not normalisable (a free cluster without confinement evaporates).
    /// - Parameter acceptance: each group's mean acceptance so far (for the message).
    /// - Throws: `SamplingError` naming the level, the step size and what to check.
    public func checkRunaway(step: Int, acceptance: [Double]) throws {
        let levels = stepSizes.count
        for level in 0..<levels {
            let h = stepSizes[level], h0 = initialStepSizes[level]
            guard !(h.isFinite && h <= h0 * runawayFactor) else { continue }
            let levelText = levels > 1 ? " of temperature level \(level)" : ""
            throw SamplingError(step: step, reason: String(
                format: "step-size adaptation ran away: h%@ grew from %.3g to %.3g (mean acceptance so far %.3f, target %.3f). "
                    + "The distribution is probably not confined: particles drift apart without bound (e.g. a free cluster "
                    + "with no confining term: give the plugin one, such as lennard-jones oscillator=1 or a preset, or a periodic box). "
                    + "If the system is confined and only --step-size is far too small, give a larger --step-size.",
                levelText, h0, h, acceptance[level], target))
        }
    }

    /// Stops a run whose adaptation did not settle over the last `steps` burn-in steps: a level's
    /// mean acceptance stayed above target + 0.25, or its h still grew more than tenfold (a
    /// settled level fluctuates by a few 0.01 around the target, and its h by far less than 10×
    /// at the late gain 0.02): the runaway of `checkRunaway`, caught before h reaches its bound.
    /// - Parameter stepSizesBefore: each level's h when those steps began.
    public func checkSettled(step: Int, acceptance: [Double], stepSizesBefore: [Double], steps: Int) throws {
        let levels = stepSizes.count
        for level in 0..<levels
        where acceptance[level] > target + 0.25 || stepSizes[level] > 10 * stepSizesBefore[level] {
            let levelText = levels > 1 ? " of temperature level \(level)" : ""
            throw SamplingError(step: step, reason: String(
                format: "step-size adaptation did not settle: over the last %d burn-in steps the acceptance%@ was %.3f "
                    + "(target %.3f) and h grew from %.3g to %.3g (%.3g at the start). The distribution is probably not "
                    + "confined: particles drift apart without bound (e.g. a free cluster with no confining term: give the "
                    + "plugin one, such as lennard-jones oscillator=1 or a preset, or a periodic box). If the system is "
                    + "confined, give a larger --step-size or a longer --burn-in.",
                steps, levelText, acceptance[level], target, stepSizesBefore[level], stepSizes[level],
                initialStepSizes[level]))
        }
    }
}
