import Foundation
import TestSupport
import XCTest

/// The non-bonded cutoff (`cutoff=`, neighbour rows or cut runs) against OpenMM's CutoffNonPeriodic.
final class AlanineCutoffTests: XCTestCase {
    /// OpenMM's R in kJ/(mol·K): the OpenMM side's kT.
    private let gasConstantKJ = 8.31446261815324e-3
    /// 5 Å: shorter than the dipeptide (~10 Å across), so pairs are cut in every conformation.
    private let cutoff = 5.0

    /// OpenMM (Reference platform, CutoffNonPeriodic at the same cutoff, createSystem's
    /// reaction-field dielectric) against the plugin, vacuum, OBC1 and OBC2, 60 conformations
    /// each: energies to 1e-6 relative, every force component to 1e-5 of the force norm.
    func testCutoffMatchesOpenMM() throws {
        let python = try PythonTools.require(["openmm", "numpy"])
        let plugin = try AlaninePlugin.load()
        let script = TestPaths.repositoryRoot.appendingPathComponent("scripts/alanine_openmm.py").path
        let dir = TestPaths.temporaryDirectory("alanine-cutoff")
        defer { try? FileManager.default.removeItem(at: dir) }
        let prmtop = TestPaths.repositoryRoot.appendingPathComponent("data/alanine-dipeptide-ff14SB.prmtop").path
        var report: [String] = []
        for (solvent, rows) in [("vacuum", "yes"), ("vacuum", "no"), ("obc1", "yes"), ("obc2", "yes"), ("obc2", "no")] {
            let system = try plugin.make("prmtop=\(prmtop) solvent=\(solvent) cutoff=\(cutoff) neighbour_list=\(rows)")
            let exact = try plugin.make("prmtop=\(prmtop) solvent=\(solvent)")
            let n = system.count
            let confs = Conformations.make(start: system.initialPositions(), seed: 11)
            let flat = confs.flatMap { $0 }
            let input = dir.appendingPathComponent("x-\(solvent).f64")
            let output = dir.appendingPathComponent("ef-\(solvent).f64")
            try flat.withUnsafeBufferPointer { try Data(buffer: $0).write(to: input) }
            let result = try runProcess(python, [script, "--prmtop", prmtop, "--solvent", solvent, "--cutoff", "\(cutoff)",
                                                 "--positions", input.path, "--output", output.path])
            XCTAssertEqual(result.status, 0, result.stderr)
            let reference = try Data(contentsOf: output).withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
            XCTAssertEqual(reference.count, confs.count * (1 + 3 * n))
            guard reference.count == confs.count * (1 + 3 * n) else { continue }
            let (u, g) = try system.evaluate(flat)
            let uExact = try exact.evaluate(flat, withGradients: false).energies
            let kT = gasConstantKJ * 300
            var worstEnergy = 0.0, worstForce = 0.0, smallestEffect = Double.infinity
            for c in confs.indices {
                let row = reference[(c * (1 + 3 * n))..<((c + 1) * (1 + 3 * n))]
                let uRef = row.first! / kT
                let gRef = row.dropFirst().map { -$0 / kT * 0.1 }
                let relE = abs(u[c] - uRef) / abs(uRef)
                let norm = gRef.reduce(0) { $0 + $1 * $1 }.squareRoot()
                let maxDiff = zip(g[(c * 3 * n)..<((c + 1) * 3 * n)], gRef).map { abs($0 - $1) }.max()!
                worstEnergy = max(worstEnergy, relE)
                worstForce = max(worstForce, maxDiff / norm)
                smallestEffect = min(smallestEffect, abs(u[c] - uExact[c]))
                XCTAssertLessThanOrEqual(relE, 1e-6, "\(solvent) conformation \(c): u \(u[c]) vs OpenMM \(uRef)")
                XCTAssertLessThanOrEqual(maxDiff, 1e-5 * norm, "\(solvent) conformation \(c): forces")
            }
            // The cutoff must matter here, or the comparison above proves nothing about it.
            XCTAssertGreaterThan(smallestEffect, 0.1, "\(solvent): the cutoff changes no energy by more than 0.1 kT")
            report.append(String(format: "%@ (neighbour_list=\(rows)): %d conformations, worst |Δu|/|u| %.2e, worst max|Δ∇u|/‖∇u‖ %.2e "
                                 + "(the cutoff moves u by ≥ %.1f kT)", solvent, confs.count, worstEnergy, worstForce, smallestEffect))
        }
        print("alanine cutoff=\(cutoff) Å vs OpenMM CutoffNonPeriodic (Reference platform):\n  " + report.joined(separator: "\n  "))
    }

    /// Central finite differences of the energy with the cutoff against its analytic gradient.
    func testCutoffGradientMatchesFiniteDifferences() throws {
        try checkGradientsAgainstFiniteDifferences(try AlaninePlugin.load(), label: "alanine cutoff", seed: 5) {
            "solvent=\($0) cutoff=\(self.cutoff) neighbour_list=yes"
        }
    }

    /// Neighbour rows and cut runs, SIMD and scalar loops, all agree; evaluating the batch
    /// twice on one system (scratch reused) gives the same numbers.
    func testCutoffKernelsAgreeAndScratchIsReused() throws {
        let plugin = try AlaninePlugin.load()
        for (solvent, rows, kernel) in [("vacuum", "yes", "simd"), ("vacuum", "no", "simd"), ("vacuum", "no", "scalar"),
                                        ("obc2", "yes", "simd"), ("obc2", "no", "simd"), ("obc2", "no", "scalar"),
                                        ("obc2", "auto", "scalar")] {
            let simd = try plugin.make("solvent=\(solvent) cutoff=\(cutoff)")
            let scalar = try plugin.make("solvent=\(solvent) cutoff=\(cutoff) neighbour_list=\(rows) kernel=\(kernel)")
            let flat = Conformations.make(start: simd.initialPositions(), seed: 9, noisy: 40, rotated: 10).flatMap { $0 }
            let a = try simd.evaluate(flat), b = try scalar.evaluate(flat), again = try simd.evaluate(flat)
            XCTAssertEqual(a.energies, again.energies)
            XCTAssertEqual(a.gradients, again.gradients)
            for k in a.energies.indices { assertClose(a.energies[k], b.energies[k], relative: 1e-12, "\(solvent) energy \(k)") }
            let norm = b.gradients.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for k in a.gradients.indices {
                assertClose(a.gradients[k], b.gradients[k], absolute: 1e-12 * norm, "\(solvent) gradient \(k)")
            }
        }
    }

    /// Positions that are not finite are an error, not a crash of the cell list; an atom
    /// thrown far away still gets the same energy from neighbour rows as from cut runs.
    func testCutoffWithNonFiniteOrFarPositions() throws {
        let plugin = try AlaninePlugin.load()
        for rows in ["yes", "auto"] {
            let system = try plugin.make("solvent=obc2 cutoff=\(cutoff) neighbour_list=\(rows)")
            var x = system.initialPositions()
            x[4] = .nan
            XCTAssertThrowsError(try system.evaluate(x)) { XCTAssertTrue("\($0)".contains("non-finite"), "\($0)") }
            x[4] = .infinity
            XCTAssertThrowsError(try system.evaluate(x)) { XCTAssertTrue("\($0)".contains("non-finite"), "\($0)") }
        }
        let rows = try plugin.make("solvent=obc2 cutoff=\(cutoff) neighbour_list=yes")
        let runs = try plugin.make("solvent=obc2 cutoff=\(cutoff) neighbour_list=no")
        var x = rows.initialPositions()
        x[0] += 1e6; x[1] -= 3e7
        let a = try rows.evaluate(x), b = try runs.evaluate(x)
        assertClose(a.energies[0], b.energies[0], relative: 1e-12)
        for k in a.gradients.indices { assertClose(a.gradients[k], b.gradients[k], absolute: 1e-9) }
    }

    func testBadCutoffParameters() throws {
        let plugin = try AlaninePlugin.load()
        XCTAssertThrowsError(try plugin.make("cutoff=-1"))
        XCTAssertThrowsError(try plugin.make("reaction_field_dielectric=2")) { error in
            XCTAssertTrue("\(error)".contains("needs cutoff"), "\(error)")
        }
        XCTAssertThrowsError(try plugin.make("neighbour_list=yes"))
        XCTAssertThrowsError(try plugin.make("cutoff=8 neighbour_list=sometimes"))
    }
}
