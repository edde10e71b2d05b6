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

    func testCreateErrorsReachTheHost() throws {
        try requireBuilt(TestPaths.plugin("Alanine"))
        let plugin = try PluginLoader.load(path: TestPaths.plugin("Alanine").path)
        XCTAssertThrowsError(try plugin.makeSystem(parameters: "solvnt=obc2")) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("solvnt") && message.contains("solvent"), message)
        }
    }
}
