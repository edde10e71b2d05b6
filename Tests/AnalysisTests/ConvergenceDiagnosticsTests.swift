import Analysis
import TestSupport
import XCTest

/// Diagnostics against series whose answers are known in closed form.
final class ConvergenceDiagnosticsTests: XCTestCase {
    /// AR(1) chains x_t = φ x_{t−1} + √(1−φ²) ξ_t (stationary N(0, 1)): τ = (1 + φ)/(1 − φ).
    func ar1(chains: Int, length: Int, phi: Double, seed: UInt64, shift: (Int) -> Double = { _ in 0 }) -> [[Double]] {
        var rng = TestRandom(seed: seed)
        return (0..<chains).map { c in
            var x = rng.normal()
            return (0..<length).map { _ in
                x = phi * x + (1 - phi * phi).squareRoot() * rng.normal()
                return x + shift(c)
            }
        }
    }

    func testIntegratedAutocorrelationTimeOfAR1() {
        for (phi, expected) in [(0.0, 1.0), (0.5, 3.0), (0.9, 19.0)] {
            let chains = ar1(chains: 8, length: 20_000, phi: phi, seed: 3)
            let (tau, window) = ConvergenceDiagnostics.integratedAutocorrelationTime(chains)
            XCTAssertEqual(tau, expected, accuracy: 0.08 * expected, "φ = \(phi)")
            XCTAssertGreaterThanOrEqual(Double(window), 5 * tau, "Sokal's window M ≥ cτ")
            let ess = ConvergenceDiagnostics.effectiveSampleSize(chains)
            XCTAssertEqual(ess, 160_000 / expected, accuracy: 0.1 * 160_000 / expected)
        }
    }

    /// Issue 23: anticorrelated chains (AR(1) with φ = −0.5 has τ = 1/3) reported an ESS of three
    /// times the draws (167 from 20 frames in the audit); ESS is capped at chains × draws.
    func testESSNeverExceedsTheNumberOfDraws() {
        let long = ar1(chains: 4, length: 5_000, phi: -0.5, seed: 11)
        let (tau, _) = ConvergenceDiagnostics.integratedAutocorrelationTime(long)
        XCTAssertLessThan(tau, 0.5, "the series is anticorrelated: τ < 1 (else this test shows nothing)")
        XCTAssertEqual(ConvergenceDiagnostics.effectiveSampleSize(long), 20_000)
        XCTAssertEqual(ConvergenceDiagnostics.diagnose(long).effectiveSampleSize, 20_000)
        // Short runs as in the audit: 4 chains × 5 frames and 1 chain × 4 frames.
        for (chains, length) in [(4, 5), (1, 4), (2, 10)] {
            for seed in UInt64(1)...20 {
                let series = ar1(chains: chains, length: length, phi: -0.7, seed: seed)
                let report = ConvergenceDiagnostics.diagnose(series)
                let ess = report.effectiveSampleSize
                XCTAssertTrue(ess.isNaN || ess <= Double(chains * length),
                              "ESS \(ess) from \(chains * length) draws (τ = \(report.integratedAutocorrelationTime))")
                let direct = ConvergenceDiagnostics.effectiveSampleSize(series)
                XCTAssertTrue(direct.isNaN || direct <= Double(chains * length), "ESS \(direct) from \(chains * length) draws")
            }
        }
        // Positively correlated chains are unchanged: N/τ.
        let ar = ar1(chains: 4, length: 5_000, phi: 0.5, seed: 11)
        let tauAR = ConvergenceDiagnostics.integratedAutocorrelationTime(ar).tau
        XCTAssertEqual(ConvergenceDiagnostics.effectiveSampleSize(ar), 20_000 / tauAR, accuracy: 1e-9)
    }

    func testSplitRHatPassesAgreeingChainsAndFlagsDisagreeingOnes() {
        let good = ConvergenceDiagnostics.diagnose(ar1(chains: 4, length: 5_000, phi: 0.5, seed: 5))
        XCTAssertLessThan(good.splitRHat, 1.01)
        XCTAssertTrue(good.converged, "\(good.problems)")

        // One chain stuck one standard deviation away (a chain in another basin).
        let stuck = ConvergenceDiagnostics.diagnose(ar1(chains: 4, length: 5_000, phi: 0.5, seed: 5,
                                                        shift: { $0 == 0 ? 1 : 0 }))
        XCTAssertGreaterThan(stuck.splitRHat, 1.05)
        XCTAssertFalse(stuck.converged)
        XCTAssertTrue(stuck.problems.joined().contains("split-R̂"), "\(stuck.problems)")

        // A drift inside every chain (not yet equilibrated): the halves disagree.
        var drifting = ar1(chains: 4, length: 2_000, phi: 0.5, seed: 9)
        for c in drifting.indices { for t in drifting[c].indices { drifting[c][t] += Double(t) / 1000 } }
        XCTAssertGreaterThan(ConvergenceDiagnostics.diagnose(drifting).splitRHat, 1.05)

        // Too short for the ESS threshold, although the chains agree.
        let short = ConvergenceDiagnostics.diagnose(ar1(chains: 4, length: 200, phi: 0.9, seed: 11))
        XCTAssertTrue(short.problems.contains { $0.hasPrefix("ESS ") }, "\(short.problems)")
    }

    func testSplitRHatMatchesTheTextbookFormula() {
        // Two chains of 4 → four halves of 2: means 1.5, 3.5, 1.5, 5.5 (hand-computed: W = 0.5,
        // B = 2/3·Σ(mean − 3)² = 2·(2.25 + 0.25 + 2.25 + 6.25)/3 = 22/3, var⁺ = W/2 + B/2).
        let r = ConvergenceDiagnostics.splitRHat([[1, 2, 3, 4], [1, 2, 5, 6]])
        XCTAssertEqual(r, ((0.25 + 11.0 / 3) / 0.5).squareRoot(), accuracy: 1e-12)
    }

    func testInverseNormal() {
        XCTAssertEqual(ConvergenceDiagnostics.inverseNormal(0.975), 1.959963984540054, accuracy: 1e-12)
        XCTAssertEqual(ConvergenceDiagnostics.inverseNormal(0.5), 0, accuracy: 1e-15)
        XCTAssertEqual(ConvergenceDiagnostics.inverseNormal(1e-6), -4.753424308822899, accuracy: 1e-9)
    }
}

/// Basin populations of multi-chain φ/ψ series: errors from the indicator ESS, and the verdict.
final class BasinReportTests: XCTestCase {
    /// Chains that switch between β (φ −70, ψ 140) and αR (φ −70, ψ −40) often agree and pass;
    /// chains that stay in β with a rare αR visit are "not converged" (αR entered < 10 times).
    func testFrequentSwitchingPassesAndARareVisitIsFlagged() {
        var rng = SystemRandomNumberGenerator()
        let mixing: [[(phi: Double, psi: Double)]] = (0..<4).map { _ in
            (0..<2000).map { _ in Double.random(in: 0..<1, using: &rng) < 0.3 ? (phi: -70, psi: -40) : (phi: -70, psi: 140) }
        }
        let good = BasinReport(chains: mixing)
        XCTAssertTrue(good.converged, good.problems.joined(separator: "; "))
        let alphaR = good.basins.first { $0.name == "αR" }!
        XCTAssertEqual(alphaR.population, 0.3, accuracy: 0.02)
        XCTAssertEqual(alphaR.error, (0.3 * 0.7 / 8000).squareRoot(), accuracy: 0.002)
        var stuck = mixing.map { $0.map { _ in (phi: -70.0, psi: 140.0) } }
        for k in 100..<190 { stuck[0][k] = (phi: -70, psi: -40) }  // one visit of 90 frames: p = 0.011
        let bad = BasinReport(chains: stuck)
        XCTAssertFalse(bad.converged)
        XCTAssertTrue(bad.problems.contains { $0.contains("αR") && $0.contains("entered 1 times") }, bad.problems.joined())
        // The same single visit of 3 frames (p < 1%) is a note, not a failure.
        for k in 103..<190 { stuck[0][k] = (phi: -70, psi: 140) }
        let rare = BasinReport(chains: stuck)
        XCTAssertEqual(rare.notes.count, 1, "\(rare.notes)")
        XCTAssertFalse(rare.problems.contains { $0.contains("αR") }, rare.problems.joined())
        XCTAssertEqual(bad.basins.first { $0.name == "αL" }!.population, 0)
    }
}

/// Issue 23: a peptide larger than the dipeptide has one φ/ψ pair per inner residue, named.
final class RamachandranResidueTests: XCTestCase {
    func testEveryInnerResidueIsFoundAndNamed() throws {
        // ACE(1): C; ALA(2): N CA C; GLY(3): N CA C; NME(4): N.
        let names = ["C", "N", "CA", "C", "N", "CA", "C", "N"]
        let numbers = [1, 2, 2, 2, 3, 3, 3, 4]
        let residueNames = ["ACE", "ALA", "ALA", "ALA", "GLY", "GLY", "GLY", "NME"]
        let residues = try ramachandranResidues(names: names, residueNumbers: numbers, residueNames: residueNames)
        XCTAssertEqual(residues.map(\.label), ["ALA2", "GLY3"])
        XCTAssertEqual(residues[0].phi, [0, 1, 2, 3])
        XCTAssertEqual(residues[0].psi, [1, 2, 3, 4])
        XCTAssertEqual(residues[1].phi, [3, 4, 5, 6])
        XCTAssertEqual(residues[1].psi, [4, 5, 6, 7])
        let first = try ramachandranIndices(names: names, residueNumbers: numbers)
        XCTAssertEqual(first.phi, residues[0].phi)
        XCTAssertEqual(try ramachandranResidues(names: names, residueNumbers: numbers).map(\.label), ["residue 2", "residue 3"])
        XCTAssertThrowsError(try ramachandranResidues(names: ["N", "CA"], residueNumbers: [1, 1]))
    }
}
