import PluginHost
import TestSupport
import XCTest

/// The alanine plugin through the host's real loader (PluginHost), as `ensemble` uses it.
final class AlaninePluginHostTests: XCTestCase {
    func testLoadsThroughPluginHost() throws {
        try requireBuilt(TestPaths.plugin("Alanine"))
        let plugin = try PluginLoader.load(path: TestPaths.plugin("Alanine").path)
        XCTAssertEqual(plugin.name, "alanine")
        XCTAssertTrue(plugin.parametersHelp.contains("solvent="))
        let system = try plugin.makeSystem(parameters: "solvent=obc2; temperature=300")
        XCTAssertEqual(system.particleCount, 22)
        XCTAssertEqual(system.dimension, 3)
        XCTAssertNil(system.box)
        XCTAssertEqual(system.lengthUnitAngstrom, 1)
        let atoms = try XCTUnwrap(system.atoms())
        XCTAssertEqual(atoms.map(\.name).prefix(9), ["HH31", "CH3", "HH32", "HH33", "C", "O", "N", "H", "CA"])
        XCTAssertEqual(atoms[8].residue, "ALA")
        XCTAssertEqual(atoms[8].residueNumber, 2)
        XCTAssertEqual(atoms[8].element, "C")
        let x = try XCTUnwrap(system.initialPositions())
        var rng = TestRandom(seed: 1)
        let batch = 256
        let flat = (0..<batch).flatMap { _ in x.map { $0 + 0.05 * rng.normal() } }
        let (u, g) = try system.evaluate(flat, batch: batch)
        XCTAssertEqual(u.count, batch)
        XCTAssertEqual(g.count, flat.count)
        XCTAssertTrue(u.allSatisfy(\.isFinite))
        XCTAssertEqual(try system.energy(Array(flat.prefix(66))), u[0], accuracy: 1e-12 * abs(u[0]))
        XCTAssertTrue(try system.isTranslationInvariant(at: x))
    }

    /// Issue 23: a prmtop without start coordinates started every atom at the origin (MALA and PT
    /// exited 0 with u ≈ 10³³). Start coordinates now come from start=, else an .inpcrd, .rst7 or
    /// .crd beside the prmtop; failing that, creating the system is an error that names the files
    /// looked for and the parameter.
    func testStartCoordinatesBesideThePrmtopOrAClearError() throws {
        try requireBuilt(TestPaths.plugin("Alanine"))
        let plugin = try PluginLoader.load(path: TestPaths.plugin("Alanine").path)
        let data = TestPaths.repositoryRoot.appendingPathComponent("data")
        let shipped = try XCTUnwrap(plugin.makeSystem(parameters: "solvent=vacuum").initialPositions())
        let directory = TestPaths.temporaryDirectory("alanine-start")
        defer { try? FileManager.default.removeItem(at: directory) }
        let prmtop = directory.appendingPathComponent("my.prmtop").path
        try FileManager.default.copyItem(atPath: data.appendingPathComponent("alanine-dipeptide-ff96.prmtop").path, toPath: prmtop)
        XCTAssertThrowsError(try plugin.makeSystem(parameters: "prmtop=\(prmtop)")) { error in
            let message = "\(error)"
            for expected in ["no start coordinates for prmtop=\(prmtop)", "my.inpcrd", "my.rst7", "my.crd", "start=PATH"] {
                XCTAssertTrue(message.contains(expected), "missing '\(expected)' in: \(message)")
            }
            XCTAssertFalse(message.contains("alanine: alanine:"), message)
        }
        let inpcrd = data.appendingPathComponent("alanine-dipeptide-ff96.inpcrd").path
        XCTAssertEqual(try plugin.makeSystem(parameters: "prmtop=\(prmtop);start=\(inpcrd)").initialPositions(), shipped)
        for ext in ["crd", "rst7", "inpcrd"] {  // each found alone
            let beside = directory.appendingPathComponent("my.\(ext)").path
            try FileManager.default.copyItem(atPath: inpcrd, toPath: beside)
            XCTAssertEqual(try plugin.makeSystem(parameters: "prmtop=\(prmtop)").initialPositions(), shipped, ext)
            try FileManager.default.removeItem(atPath: beside)
        }
    }

    func testCreateErrorsReachTheHost() throws {
        try requireBuilt(TestPaths.plugin("Alanine"))
        let plugin = try PluginLoader.load(path: TestPaths.plugin("Alanine").path)
        XCTAssertThrowsError(try plugin.makeSystem(parameters: "solvnt=obc2")) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("solvnt") && message.contains("solvent"), message)
        }
    }
}
