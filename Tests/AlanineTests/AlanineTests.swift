import Foundation
import TestSupport
import XCTest

/// OpenMM's R in kJ/(mol·K): the OpenMM side's kT.
private let gasConstantKJ = 8.31446261815324e-3

final class AlanineTopologyTests: XCTestCase {
    func testMetadata() throws {
        let plugin = try AlaninePlugin.load()
        let t = plugin.table.pointee
        XCTAssertEqual(t.abi_version, 1)
        XCTAssertEqual(String(cString: t.name!), "alanine")
        let help = String(cString: t.parameters_help!)
        for key in ["prmtop", "start", "solvent", "temperature", "threads"] { XCTAssertTrue(help.contains(key), key) }
        let system = try plugin.make("")
        XCTAssertEqual(t.dimension!(system.system), 3)
        XCTAssertEqual(t.length_unit_angstrom!(system.system), 1)
        var box = [Double](repeating: 0, count: 3)
        XCTAssertEqual(t.box!(system.system, &box), 0)
    }

    func testTopologyMatchesPrmtop() throws {
        let system = try AlaninePlugin.load().make("")
        XCTAssertEqual(system.count, 22)
        let names = ["HH31", "CH3", "HH32", "HH33", "C", "O", "N", "H", "CA", "HA", "CB", "HB1", "HB2", "HB3",
                     "C", "O", "N", "H", "CH3", "HH31", "HH32", "HH33"]
        let residues = Array(repeating: "ACE", count: 6) + Array(repeating: "ALA", count: 10)
            + Array(repeating: "NME", count: 6)
        let numbers = Array(repeating: 1, count: 6) + Array(repeating: 2, count: 10) + Array(repeating: 3, count: 6)
        let masses: [String: Double] = ["H": 1.008, "C": 12.01, "N": 14.01, "O": 16.0]
        for i in 0..<22 {
            let a = system.atom(i)
            XCTAssertEqual(cString(a.name), names[i], "atom \(i)")
            let element = String(names[i].first!)
            XCTAssertEqual(cString(a.element), element, "atom \(i)")
            XCTAssertEqual(cString(a.residue), residues[i], "atom \(i)")
            XCTAssertEqual(Int(a.residue_number), numbers[i], "atom \(i)")
            XCTAssertEqual(a.mass, masses[element]!, accuracy: 1e-12, "atom \(i)")
        }
        // The start structure is tleap's: CA of ALA at its inpcrd position.
        let x = system.initialPositions()
        XCTAssertTrue(x.allSatisfy(\.isFinite))
        XCTAssertEqual(x[3 * 8], 4.8532621, accuracy: 1e-7)
        XCTAssertEqual(x[3 * 8 + 1], 4.6139253, accuracy: 1e-7)
    }

    /// A prmtop with no start coordinates (no start=, no .inpcrd, .rst7 or .crd beside it) is an
    /// error naming the files looked for and start= (issue 23: it used to give a system without a
    /// start structure, and the host started every atom at the origin).
    func testPrmtopWithoutStartStructure() throws {
        let dir = TestPaths.temporaryDirectory("alanine-nostart")
        defer { try? FileManager.default.removeItem(at: dir) }
        let copy = dir.appendingPathComponent("dipeptide.prmtop")
        try FileManager.default.copyItem(
            at: TestPaths.repositoryRoot.appendingPathComponent("data/alanine-dipeptide-ff96.prmtop"), to: copy)
        let plugin = try AlaninePlugin.load()
        XCTAssertThrowsError(try plugin.make("prmtop=\(copy.path)")) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("dipeptide.inpcrd") && message.contains("dipeptide.crd")
                          && message.contains("start=PATH"), message)
        }
    }

    func testFF14SBLoads() throws {
        let prmtop = TestPaths.repositoryRoot.appendingPathComponent("data/alanine-dipeptide-ff14SB.prmtop").path
        let system = try AlaninePlugin.load().make("prmtop=\(prmtop)")
        XCTAssertEqual(system.count, 22)
        XCTAssertTrue(try system.energy(system.initialPositions()).isFinite)
    }
}

final class AlanineEnergyTests: XCTestCase {
    /// OpenMM (Reference platform) against the plugin for both force fields and all solvents,
    /// 60 conformations each: energies to 1e-6 relative, every force component to 1e-5 of
    /// the force norm.
    func testMatchesOpenMM() throws {
        let python = try PythonTools.require(["openmm", "numpy"])
        let plugin = try AlaninePlugin.load()
        let script = TestPaths.repositoryRoot.appendingPathComponent("scripts/alanine_openmm.py").path
        let dir = TestPaths.temporaryDirectory("alanine-openmm")
        defer { try? FileManager.default.removeItem(at: dir) }
        var report: [String] = []
        for ff in ["ff96", "ff14SB"] {
            let prmtop = TestPaths.repositoryRoot.appendingPathComponent("data/alanine-dipeptide-\(ff).prmtop").path
            for solvent in ["vacuum", "obc1", "obc2"] {
                let temperature = 300.0
                let system = try plugin.make("prmtop=\(prmtop); solvent=\(solvent) temperature=\(temperature)")
                let n = system.count
                let confs = Conformations.make(start: system.initialPositions(), seed: 42)
                let flat = confs.flatMap { $0 }
                let input = dir.appendingPathComponent("x-\(ff)-\(solvent).f64")
                let output = dir.appendingPathComponent("ef-\(ff)-\(solvent).f64")
                try flat.withUnsafeBufferPointer { try Data(buffer: $0).write(to: input) }
                let result = try runProcess(python, [script, "--prmtop", prmtop, "--solvent", solvent,
                                                     "--positions", input.path, "--output", output.path])
                XCTAssertEqual(result.status, 0, result.stderr)
                let data = try Data(contentsOf: output)
                let reference = data.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
                XCTAssertEqual(reference.count, confs.count * (1 + 3 * n))
                guard reference.count == confs.count * (1 + 3 * n) else { continue }

                let (u, g) = try system.evaluate(flat)
                let kT = gasConstantKJ * temperature          // kJ/mol
                var worstEnergy = 0.0, worstForce = 0.0, worstAbsolute = 0.0
                for c in confs.indices {
                    let row = reference[(c * (1 + 3 * n))..<((c + 1) * (1 + 3 * n))]
                    let uRef = row.first! / kT
                    // ∇u = −F/kT; F in kJ/mol/nm, positions in Å: ×0.1.
                    let gRef = row.dropFirst().map { -$0 / kT * 0.1 }
                    let relE = abs(u[c] - uRef) / max(abs(uRef), 1e-300)
                    let norm = gRef.reduce(0) { $0 + $1 * $1 }.squareRoot()
                    let maxDiff = zip(g[(c * 3 * n)..<((c + 1) * 3 * n)], gRef).map { abs($0 - $1) }.max()!
                    worstEnergy = max(worstEnergy, relE)
                    worstAbsolute = max(worstAbsolute, abs(u[c] - uRef))
                    worstForce = max(worstForce, maxDiff / norm)
                    XCTAssertLessThanOrEqual(relE, 1e-6, "\(ff) \(solvent) conformation \(c): u \(u[c]) vs OpenMM \(uRef)")
                    XCTAssertLessThanOrEqual(maxDiff, 1e-5 * norm, "\(ff) \(solvent) conformation \(c): forces")
                }
                report.append(String(format: "%@ %@: %d conformations, worst |Δu|/|u| %.2e (|Δu| %.2e kT), worst max|Δ∇u|/‖∇u‖ %.2e",
                                     ff, solvent, confs.count, worstEnergy, worstAbsolute, worstForce))
            }
        }
        print("alanine vs OpenMM (Reference platform):\n  " + report.joined(separator: "\n  "))
    }

    /// Central finite differences of the energy against the analytic gradient, every coordinate.
    func testGradientMatchesFiniteDifferences() throws {
        try checkGradientsAgainstFiniteDifferences(try AlaninePlugin.load(), label: "alanine", seed: 7) { "solvent=\($0)" }
    }

    func testEnergiesOnlyThreadsAndTemperatureAgree() throws {
        let plugin = try AlaninePlugin.load()
        let one = try plugin.make("solvent=obc2 threads=1")
        let two = try plugin.make("solvent=obc2 threads=2")
        let hot = try plugin.make("solvent=obc2 temperature=600")
        let confs = Conformations.make(start: one.initialPositions(), seed: 3, noisy: 100, rotated: 28)
        let flat = confs.flatMap { $0 }
        let a = try one.evaluate(flat)
        let b = try two.evaluate(flat)
        XCTAssertEqual(a.energies, b.energies)
        XCTAssertEqual(a.gradients, b.gradients)
        XCTAssertEqual(try one.evaluate(flat, withGradients: false).energies, a.energies)
        let h = try hot.evaluate(flat, withGradients: false).energies
        for k in h.indices { assertClose(h[k], a.energies[k] / 2, relative: 1e-14) }
        // Concurrent calls on one system give the same numbers (evaluate is reentrant).
        var results = [[Double]](repeating: [], count: 4)
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: 4) { k in
            let r = try? one.evaluate(flat).energies
            lock.lock(); results[k] = r ?? []; lock.unlock()
        }
        for r in results { XCTAssertEqual(r, a.energies) }
    }

    /// One configuration's pair rows split over threads (`split_pairs_from=0` takes that path
    /// even for the dipeptide): energies and gradients equal the one-thread ones to 1e-12
    /// (gradients against their norm), the same bits run to run, for every solvent, without
    /// and with a cutoff (cut runs and neighbour rows), and for batches smaller than threads.
    func testSplitPairsMatchOneThread() throws {
        let plugin = try AlaninePlugin.load()
        for solvent in ["vacuum", "obc1", "obc2"] {
            for cut in ["", "cutoff=8 neighbour_list=no", "cutoff=8 neighbour_list=yes"] {
                let one = try plugin.make("solvent=\(solvent) \(cut) threads=1")
                let confs = Conformations.make(start: one.initialPositions(), seed: 11, noisy: 4, rotated: 2)
                for threads in [2, 3] {
                    let split = try plugin.make("solvent=\(solvent) \(cut) threads=\(threads) split_pairs_from=0")
                    for batch in [1, threads - 1] {
                        let flat = confs.prefix(batch).flatMap { $0 }
                        let a = try one.evaluate(flat), b = try split.evaluate(flat), again = try split.evaluate(flat)
                        XCTAssertEqual(b.energies, again.energies)
                        XCTAssertEqual(b.gradients, again.gradients)
                        let label = "\(solvent) \(cut) threads=\(threads) batch=\(batch)"
                        assertSplitMatches(a, b, label)
                        // Concurrent calls on one system each take their own workers' scratches.
                        var results = [[Double]](repeating: [], count: 3)
                        let lock = NSLock()
                        DispatchQueue.concurrentPerform(iterations: 3) { k in
                            let r = try? split.evaluate(flat)
                            lock.lock(); results[k] = (r?.energies ?? []) + (r?.gradients ?? []); lock.unlock()
                        }
                        for r in results { XCTAssertEqual(r, b.energies + b.gradients, label) }
                    }
                }
            }
        }
    }

    /// The same on a 642-atom protein (crambin, built by scripts/bench_amber.py into
    /// out/bench-amber/), where threads=2 at batch 1 splits the pairs by default.
    func testSplitPairsMatchOneThreadOnAProtein() throws {
        let prmtop = TestPaths.repositoryRoot.appendingPathComponent("out/bench-amber/bench-640.prmtop").path
        guard FileManager.default.fileExists(atPath: prmtop) else {
            print("skipped: \(prmtop) is absent (make bench-amber builds it with AmberTools' tleap)")
            throw XCTSkip("\(prmtop) is absent")
        }
        let plugin = try AlaninePlugin.load()
        for parameters in ["solvent=vacuum", "solvent=obc2", "solvent=obc2 cutoff=10", "solvent=vacuum cutoff=10 neighbour_list=yes"] {
            let one = try plugin.make("prmtop=\(prmtop) \(parameters) threads=1")
            let two = try plugin.make("prmtop=\(prmtop) \(parameters) threads=2")
            var rng = TestRandom(seed: 4)
            let x = one.initialPositions().map { $0 + 0.05 * rng.normal() }
            let a = try one.evaluate(x), b = try two.evaluate(x), again = try two.evaluate(x)
            XCTAssertEqual(b.energies, again.energies)
            XCTAssertEqual(b.gradients, again.gradients)
            assertSplitMatches(a, b, parameters)
        }
    }

    private func assertSplitMatches(_ a: (energies: [Double], gradients: [Double]),
                                    _ b: (energies: [Double], gradients: [Double]), _ label: String,
                                    file: StaticString = #filePath, line: UInt = #line) {
        for k in a.energies.indices {
            assertClose(b.energies[k], a.energies[k], relative: 1e-12, "\(label) energy \(k)", file: file, line: line)
        }
        let norm = a.gradients.reduce(0) { $0 + $1 * $1 }.squareRoot()
        for k in a.gradients.indices {
            assertClose(b.gradients[k], a.gradients[k], absolute: 1e-12 * norm, "\(label) gradient \(k)", file: file, line: line)
        }
    }

    /// The SIMD pair kernel (default) and the plain scalar loops give the same numbers.
    func testSIMDAndScalarKernelsAgree() throws {
        let plugin = try AlaninePlugin.load()
        for solvent in ["vacuum", "obc1", "obc2"] {
            let simd = try plugin.make("solvent=\(solvent) kernel=simd")
            let scalar = try plugin.make("solvent=\(solvent) kernel=scalar")
            let flat = Conformations.make(start: simd.initialPositions(), seed: 9, noisy: 40, rotated: 10).flatMap { $0 }
            let a = try simd.evaluate(flat), b = try scalar.evaluate(flat)
            for k in a.energies.indices { assertClose(a.energies[k], b.energies[k], relative: 1e-12, "\(solvent) energy \(k)") }
            let norm = b.gradients.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for k in a.gradients.indices { assertClose(a.gradients[k], b.gradients[k], absolute: 1e-12 * norm, "\(solvent) gradient \(k)") }
        }
    }

    /// `precision=mixed` (single-precision pair terms, double row sums) against double on the
    /// same configurations: energies within 1e-5 relative, gradients within 1e-5 of the
    /// largest component; one thread, a batch split over threads, and one configuration's
    /// rows split over threads (the same bits run to run).
    func testMixedPrecisionMatchesDouble() throws {
        let plugin = try AlaninePlugin.load()
        for solvent in ["vacuum", "obc1", "obc2"] {
        let double = try plugin.make("solvent=\(solvent)")
        let confs = Conformations.make(start: double.initialPositions(), seed: 13, noisy: 40, rotated: 10)
        let flat = confs.flatMap { $0 }
        let reference = try double.evaluate(flat)
        let energiesOnly = try plugin.make("solvent=\(solvent) precision=mixed").evaluate(flat, withGradients: false)
        assertMixedMatches(reference, (energiesOnly.energies, reference.gradients), atoms: double.count,
                           "alanine \(solvent) energies only")
        for parameters in ["threads=1", "threads=2", "threads=2 split_pairs_from=0", "threads=3 split_pairs_from=0"] {
            let mixed = try plugin.make("solvent=\(solvent) precision=mixed \(parameters)")
            let batches = parameters.contains("split") ? confs.map { $0 } : [flat]
            var energies: [Double] = [], gradients: [Double] = []
            for x in batches {
                let r = try mixed.evaluate(x), again = try mixed.evaluate(x)
                XCTAssertEqual(r.energies, again.energies, parameters)
                XCTAssertEqual(r.gradients, again.gradients, parameters)
                energies += r.energies; gradients += r.gradients
            }
            assertMixedMatches(reference, (energies, gradients), atoms: double.count, "alanine \(solvent) \(parameters)")
            // Concurrent calls on one system each take their own scratches.
            let x = batches[0], alone = try mixed.evaluate(x)
            var results = [[Double]](repeating: [], count: 3)
            let lock = NSLock()
            DispatchQueue.concurrentPerform(iterations: 3) { k in
                let r = try? mixed.evaluate(x)
                lock.lock(); results[k] = (r?.energies ?? []) + (r?.gradients ?? []); lock.unlock()
            }
            for r in results { XCTAssertEqual(r, alone.energies + alone.gradients, parameters) }
        }
        }
    }

    /// The same on the 642-atom crambin (out/bench-amber/, built by scripts/bench_amber.py).
    func testMixedPrecisionMatchesDoubleOnAProtein() throws {
        let prmtop = TestPaths.repositoryRoot.appendingPathComponent("out/bench-amber/bench-640.prmtop").path
        guard FileManager.default.fileExists(atPath: prmtop) else {
            print("skipped: \(prmtop) is absent (make bench-amber builds it with AmberTools' tleap)")
            throw XCTSkip("\(prmtop) is absent")
        }
        let plugin = try AlaninePlugin.load()
        for solvent in ["vacuum", "obc1", "obc2"] {
        let double = try plugin.make("prmtop=\(prmtop) solvent=\(solvent)")
        var rng = TestRandom(seed: 5)
        let start = double.initialPositions()
        let confs = [start] + [0.02, 0.05, 0.1].map { sigma in start.map { $0 + sigma * rng.normal() } }
        let flat = confs.flatMap { $0 }
        let reference = try double.evaluate(flat)
        for parameters in ["threads=1", "threads=2"] {
            let mixed = try plugin.make("prmtop=\(prmtop) solvent=\(solvent) precision=mixed \(parameters)")
            var energies: [Double] = [], gradients: [Double] = []
            for x in confs {   // batch 1: with threads=2 the rows are split
                let r = try mixed.evaluate(x)
                energies += r.energies; gradients += r.gradients
            }
            assertMixedMatches(reference, (energies, gradients), atoms: double.count, "crambin \(solvent) \(parameters)")
        }
        }
    }

    /// Combinations without a mixed kernel are refused when the system is made.
    func testMixedPrecisionRefusedWhereNotImplemented() throws {
        let plugin = try AlaninePlugin.load()
        for parameters in ["solvent=vacuum cutoff=8", "solvent=obc2 cutoff=8 neighbour_list=no", "solvent=vacuum kernel=scalar"] {
            XCTAssertThrowsError(try plugin.make("\(parameters) precision=mixed"), parameters) { error in
                XCTAssertTrue("\(error)".contains("precision=mixed is implemented without cutoff="), "\(error)")
                XCTAssertTrue("\(error)".contains("use precision=double"), "\(error)")
            }
        }
        XCTAssertThrowsError(try plugin.make("precision=half")) { error in
            XCTAssertTrue("\(error)".contains("precision"), "\(error)")
        }
    }

    /// Mixed against double: energies to 1e-5 relative (of max(|E|, 10 kT): the float
    /// rounding scales with the pair terms, ~10²–10³ kT each, and some dipeptide totals
    /// cancel to ~1 kT), each configuration's gradient to 1e-5 of its largest component;
    /// prints the worst of each.
    private func assertMixedMatches(_ a: (energies: [Double], gradients: [Double]),
                                    _ b: (energies: [Double], gradients: [Double]), atoms: Int, _ label: String,
                                    file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.energies.count, b.energies.count, label, file: file, line: line)
        XCTAssertEqual(a.gradients.count, b.gradients.count, label, file: file, line: line)
        var worstEnergy = 0.0, worstAbsolute = 0.0, worstGradient = 0.0
        let n3 = 3 * atoms
        for k in a.energies.indices {
            let difference = abs(b.energies[k] - a.energies[k])
            let e = difference / max(abs(a.energies[k]), 10)
            worstEnergy = max(worstEnergy, e)
            worstAbsolute = max(worstAbsolute, difference)
            XCTAssertLessThanOrEqual(e, 1e-5, "\(label) energy \(k): \(b.energies[k]) vs \(a.energies[k])", file: file, line: line)
            let g = a.gradients[(k * n3)..<((k + 1) * n3)], h = b.gradients[(k * n3)..<((k + 1) * n3)]
            let largest = g.reduce(0) { max($0, abs($1)) }
            let deviation = zip(g, h).reduce(0) { max($0, abs($1.0 - $1.1)) } / largest
            worstGradient = max(worstGradient, deviation)
            XCTAssertLessThanOrEqual(deviation, 1e-5, "\(label) gradient \(k)", file: file, line: line)
        }
        print("\(label): mixed vs double, energy ≤ \(worstEnergy) relative (≤ \(worstAbsolute) kT), "
              + "gradient ≤ \(worstGradient) of the largest")
    }

    func testNonFiniteIsAnError() throws {
        for parameters in ["solvent=vacuum", "solvent=vacuum precision=mixed", "solvent=obc2 precision=mixed"] {
            let system = try AlaninePlugin.load().make(parameters)
            var x = system.initialPositions()
            x[3] = x[0]; x[4] = x[1]; x[5] = x[2]        // two atoms on top of each other
            XCTAssertThrowsError(try system.evaluate(x), parameters) { error in
                XCTAssertTrue("\(error)".contains("non-finite"), "\(error)")
            }
            x = system.initialPositions()
            x[7] = .nan
            XCTAssertThrowsError(try system.evaluate(x), parameters) { error in
                XCTAssertTrue("\(error)".contains("non-finite"), "\(error)")
            }
        }
    }
}

final class AlanineBadInputTests: XCTestCase {
    private var prmtopText: String {
        get throws {
            try String(contentsOf: TestPaths.repositoryRoot.appendingPathComponent("data/alanine-dipeptide-ff96.prmtop"),
                       encoding: .utf8)
        }
    }

    /// Write a modified prmtop and return the creation error.
    private func createError(_ text: String, extra: String = "") throws -> String {
        let dir = TestPaths.temporaryDirectory("alanine-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("bad.prmtop")
        try text.write(to: path, atomically: true, encoding: .utf8)
        let start = TestPaths.repositoryRoot.appendingPathComponent("data/alanine-dipeptide-ff96.inpcrd").path
        do {
            _ = try AlaninePlugin.load().make("prmtop=\(path.path) start=\(start) \(extra)")
            XCTFail("a bad prmtop was accepted")
            return ""
        } catch let error as AlaninePlugin.CreateError {
            return error.description
        }
    }

    /// Line number (1-based) of the first line containing `needle`.
    private func lineNumber(of needle: String, in text: String) -> Int {
        text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains(needle) }! + 1
    }

    func testMalformedNumber() throws {
        let text = try prmtopText
        let bad = text.replacingOccurrences(of: "  2.04636429E+00 -6.67300626E+00", with: "  2.04636429E+00 -6.6730x626E+00")
        XCTAssertNotEqual(bad, text)
        let message = try createError(bad)
        let line = lineNumber(of: "-6.6730x626E+00", in: bad)
        XCTAssertTrue(message.contains("CHARGE"), message)
        XCTAssertTrue(message.contains(":\(line):"), "expected line \(line): \(message)")
        XCTAssertTrue(message.contains("malformed"), message)
    }

    func testMalformedInteger() throws {
        let text = try prmtopText
        // First BONDS_INC_HYDROGEN entry.
        let range = text.range(of: "%FLAG BONDS_INC_HYDROGEN")!
        let formatEnd = text[range.upperBound...].range(of: "%FORMAT(10I8)")!.upperBound
        let dataStart = text.index(after: text[formatEnd...].firstIndex(of: "\n")!)
        var bad = text
        bad.replaceSubrange(dataStart..<text.index(dataStart, offsetBy: 8), with: "     1.5")
        let message = try createError(bad)
        XCTAssertTrue(message.contains("BONDS_INC_HYDROGEN"), message)
        XCTAssertTrue(message.contains("malformed integer"), message)
    }

    func testPeriodicBoxIsUnsupported() throws {
        var lines = try prmtopText.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // POINTERS line 3 holds entries 21–30; IFBOX is entry 28 (8th field).
        let pointers = lines.firstIndex { $0.hasPrefix("%FLAG POINTERS") }!
        var row = Array(lines[pointers + 4])
        row.replaceSubrange(56..<64, with: Array("       1"))
        lines[pointers + 4] = String(row)
        let message = try createError(lines.joined(separator: "\n"))
        XCTAssertTrue(message.contains("POINTERS") && message.contains("IFBOX"), message)
        XCTAssertTrue(message.contains(":\(pointers + 5):"), message)
    }

    func testCMAPIsUnsupported() throws {
        let bad = try prmtopText + "%FLAG CHARMM_CMAP_COUNT\n%FORMAT(2I8)\n       1       1\n"
        let message = try createError(bad)
        XCTAssertTrue(message.contains("CHARMM_CMAP_COUNT") && message.contains("unsupported"), message)
    }

    func testMissingSection() throws {
        let text = try prmtopText
        let bad = text.replacingOccurrences(of: "%FLAG LENNARD_JONES_BCOEF", with: "%FLAG LENNARD_JONES_XCOEF")
        let message = try createError(bad)
        XCTAssertTrue(message.contains("LENNARD_JONES_BCOEF") && message.contains("missing"), message)
    }

    func testUnknownKeyListsValidKeys() throws {
        let plugin = try AlaninePlugin.load()
        XCTAssertThrowsError(try plugin.make("solvent=obc2; switch_distance=9")) { error in
            let m = "\(error)"
            XCTAssertTrue(m.contains("switch_distance"), m)
            for key in ["prmtop", "start", "solvent", "temperature"] { XCTAssertTrue(m.contains(key), m) }
        }
        XCTAssertThrowsError(try plugin.make("solvent=water")) { error in
            XCTAssertTrue("\(error)".contains("obc2"), "\(error)")
        }
        XCTAssertThrowsError(try plugin.make("temperature=-3")) { error in
            XCTAssertTrue("\(error)".contains("temperature"), "\(error)")
        }
    }

    func testMissingFiles() throws {
        let plugin = try AlaninePlugin.load()
        XCTAssertThrowsError(try plugin.make("prmtop=/nonexistent/x.prmtop")) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/x.prmtop"), "\(error)")
        }
        XCTAssertThrowsError(try plugin.make("start=/nonexistent/x.inpcrd")) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/x.inpcrd"), "\(error)")
        }
    }
}
