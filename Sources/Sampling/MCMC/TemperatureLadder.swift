import Foundation

/// The size, the burn-in adaptation and the exchange check of a replica-exchange temperature
/// ladder (docs/mcmc.md "The ladder").
///
/// Model: neighbouring levels at log-temperatures x_m = ln(T_m/T_0) and x_{m+1} of a system whose
/// potential energy has heat capacity C (in units of k) attempt exchanges with log acceptance
/// Δ = (β_m − β_{m+1})(u_m − u_{m+1}), Gaussian with mean −μ and variance 2μ, μ ≈ C·(x_{m+1} − x_m)²,
/// so they accept E min(1, e^Δ) = erfc(√μ/2). A harmonic-like system with `d` degrees of freedom
/// has C = d/2: a geometric ladder of R levels up to T_max accepts erfc(ln(T_max)/(R−1)·√(d/8))
/// between every pair, so R grows like √d·ln(T_max). With C varying along the ladder, the pairs
/// accept alike when each spans the same thermodynamic length ∫√C dx.
public enum TemperatureLadder {
    /// The acceptance the default ladder is sized for (the middle of the 0.2–0.4 band).
    public static let targetAcceptance = 0.3
    /// Below this a pair is adapted (the ladder is left alone while every pair reaches it).
    public static let adaptBelow = 0.2
    /// A pair accepting less than this makes the run NOT CONVERGED.
    public static let minimumAcceptance = 0.05

    /// Predicted exchange acceptance of a pair whose mean log acceptance is −μ: erfc(√μ/2).
    public static func acceptance(mu: Double) -> Double { erfc(max(mu, 0).squareRoot() / 2) }

    /// y with erfc(y) = a, 0 < a < 1 (bisection).
    static func inverseErfc(_ a: Double) -> Double {
        var lo = -6.0, hi = 6.0
        for _ in 0..<100 {
            let mid = (lo + hi) / 2
            if erfc(mid) > a { lo = mid } else { hi = mid }
        }
        return (lo + hi) / 2
    }

    /// Degrees of freedom of a molecule's potential energy: 3 per atom, less one per constraint,
    /// less the 6 rigid motions that leave it unchanged.
    public static func degreesOfFreedom(atoms: Int, constraints: Int) -> Int { max(1, 3 * atoms - constraints - 6) }

    /// Levels of a geometric ladder 1 … `maxTemperature` whose every pair accepts ≥ `target` for a
    /// harmonic-like system of `degreesOfFreedom` (C = d/2), at least `minimum`:
    /// R = 1 + ⌈ln(T_max)·√(d/2) / (2·erfc⁻¹(target))⌉.
    public static func replicas(degreesOfFreedom d: Int, maxTemperature: Double, target: Double = targetAcceptance,
                                minimum: Int = 2) -> Int {
        let length = log(maxTemperature) * (Double(d) / 2).squareRoot()
        let perPair = 2 * inverseErfc(target)
        return max(minimum, 1 + Int((length / perPair - 1e-9).rounded(.up)))
    }

    /// μ of each neighbouring pair from the mean reduced energies ū (at β = 1) of the levels:
    /// μ_m = (β_m − β_{m+1})(ū_{m+1} − ū_m).
    public static func mu(betas: [Double], meanEnergies u: [Double]) -> [Double] {
        var mu: [Double] = []
        for m in 0..<max(0, betas.count - 1) {
            let dBeta: Double = betas[m] - betas[m + 1], dU: Double = u[m + 1] - u[m]
            mu.append(dBeta * dU)
        }
        return mu
    }

    /// The cumulative thermodynamic length F(x) = ∫₀ˣ √C dx′ (piecewise linear) of a ladder
    /// `betas` from its pairs' μ: √C_m = √μ_m / (x_{m+1} − x_m) on each interval.
    struct Length {
        var x: [Double]
        var f: [Double]

        init(betas: [Double], mu: [Double]) {
            x = betas.map { -log($0) }
            f = [0]
            // A pair with μ ≤ 0 (noise, a flat stretch) still gets a sliver of length: F stays
            // strictly increasing, so its inverse is one ladder.
            for m in mu.indices { f.append(f[m] + max(mu[m], 1e-6).squareRoot()) }
        }

        var total: Double { f.last! }
    }

    /// The ladder with the same ends whose pairs span equal thermodynamic length, from the
    /// cumulative lengths measured (averaged, each a function of x over the same end points).
    static func equalised(levels: Int, lengths: [Length]) -> [Double] {
        let ends = (lengths[0].x.first!, lengths[0].x.last!)
        func f(_ x: Double) -> Double {
            lengths.map { l -> Double in
                var m = 0
                while m + 2 < l.x.count && l.x[m + 1] < x { m += 1 }
                let t = (x - l.x[m]) / (l.x[m + 1] - l.x[m])
                return l.f[m] + min(max(t, 0), 1) * (l.f[m + 1] - l.f[m])
            }.reduce(0, +) / Double(lengths.count)
        }
        let total = f(ends.1)
        var x = [ends.0]
        for k in 1..<(levels - 1) {
            let goal = total * Double(k) / Double(levels - 1)
            var lo = ends.0, hi = ends.1
            for _ in 0..<100 {
                let mid = (lo + hi) / 2
                if f(mid) < goal { lo = mid } else { hi = mid }
            }
            x.append((lo + hi) / 2)
        }
        x.append(ends.1)
        return x.map { exp(-$0) }
    }

    /// The problems of a run's exchange statistics: every pair accepting < `minimumAcceptance`,
    /// named (empty: none).
    public static func exchangeProblems(_ acceptance: [Double], minimum: Double = minimumAcceptance) -> [String] {
        acceptance.enumerated().compactMap { m, rate in
            rate.isNaN || rate >= minimum ? nil
                : String(format: "replica exchange %d↔%d accepts %.3f < %.2f", m, m + 1, rate, minimum)
        }
    }

    /// The verdict line of the exchange statistics, or nil when every pair accepts enough.
    public static func exchangeVerdict(_ acceptance: [Double], minimum: Double = minimumAcceptance) -> String? {
        let problems = exchangeProblems(acceptance, minimum: minimum)
        guard !problems.isEmpty else { return nil }
        return "NOT CONVERGED (replica exchange): " + problems.joined(separator: "; ")
            + ". Those levels barely trade configurations, so the hot levels do not help the target one: "
            + "run with more --replicas (or a lower --max-temperature)."
    }
}

/// Adapts the interior temperatures of a ladder during burn-in: the burn-in's first three quarters
/// are `rounds` rounds; over the second half of each the mean energy of every level is measured
/// (summed over ranks), and at its end, once any pair is predicted to accept < `adaptBelow`, the
/// interior levels move so that every pair spans the same thermodynamic length (measured over
/// the rounds so far, the first round alone only until a later one is in). The ends stay; the
/// last quarter of burn-in runs on the final ladder. A ladder whose every pair is predicted to
/// accept ≥ `adaptBelow` is left untouched, and the run is then the same as without adaptation.
/// Deterministic: the same sums on every rank give the same ladder everywhere.
public struct LadderAdaptation {
    public let rounds = 4
    /// Burn-in steps (kernel steps) of one round.
    let roundSteps: Int
    public private(set) var betas: [Double]
    private var sums: [Double]
    private var counts: [Double]
    private var lengths: [TemperatureLadder.Length] = []
    public private(set) var adapting = false
    /// Predicted acceptance of every pair at the last round's end.
    public private(set) var predicted: [Double] = []

    /// nil when burn-in is too short to measure (< 20 steps per measuring half).
    public init?(betas: [Double], burnInSteps: Int) {
        guard betas.count > 2 else { return nil }
        roundSteps = burnInSteps * 3 / 4 / rounds
        guard roundSteps >= 40 else { return nil }
        self.betas = betas
        sums = [Double](repeating: 0, count: betas.count)
        counts = sums
    }

    /// Adds the energies u (at β = 1) of this rank's walkers after burn-in step t (0-based) when
    /// that step is measured; walker w sits at the global level `levels.lowerBound + w % levels.count`.
    public mutating func measure(step t: Int, energies: [Double], levels: Range<Int>) {
        guard t < rounds * roundSteps && t % roundSteps >= roundSteps / 2 else { return }
        for (w, u) in energies.enumerated() {
            let level = levels.lowerBound + w % levels.count
            sums[level] += u
            counts[level] += 1
        }
    }

    /// When a round ends after step t: this rank's sums of the round, [sums, counts] per level, to
    /// be summed over ranks for `endRound`; else nil.
    public func roundSums(after t: Int) -> [Double]? {
        t < rounds * roundSteps && (t + 1) % roundSteps == 0 ? sums + counts : nil
    }

    /// Ends a round with the sums over all ranks; returns the new ladder, or nil when it stays.
    public mutating func endRound(total: [Double]) -> [Double]? {
        let n = betas.count
        let mean = (0..<n).map { total[$0] / max(total[n + $0], 1) }
        sums = [Double](repeating: 0, count: n)
        counts = sums
        let length = TemperatureLadder.Length(betas: betas, mu: TemperatureLadder.mu(betas: betas, meanEnergies: mean))
        lengths.append(length)
        let used = lengths.count > 1 ? Array(lengths.dropFirst()) : lengths
        predicted = TemperatureLadder.mu(betas: betas, meanEnergies: mean).map(TemperatureLadder.acceptance(mu:))
        if !adapting && predicted.allSatisfy({ $0 >= TemperatureLadder.adaptBelow }) { return nil }
        adapting = true
        betas = TemperatureLadder.equalised(levels: n, lengths: used)
        return betas
    }
}
