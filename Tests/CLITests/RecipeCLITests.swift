import Foundation
import TestSupport
import Trajectory
import XCTest

/// `--config FILE`: a recipe's options take its place on the command line; later options win.
final class RecipeCLITests: XCTestCase {
    func run(_ arguments: [String]) throws -> ProcessResult {
        try requireBuilt(TestPaths.ensembleExecutable)
        return try runProcess(TestPaths.ensembleExecutable.path, arguments)
    }

    func testRecipeOptionsAreOverriddenByLaterOnes() throws {
        let directory = TestPaths.temporaryDirectory("recipe-cli")
        let recipe = directory.appendingPathComponent("dw4.txt").path
        try """
            # DW-4 by MALA
            --plugin double-well --sampler mala
            --samples 12   # overridden below
            --seed 3
            """.write(toFile: recipe, atomically: true, encoding: .utf8)
        let out = directory.appendingPathComponent("a.nc").path
        let result = try run(["sample", "--config", recipe, "--samples", "7", "--out", out])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try AmberNetCDFReader(path: out).frameCount, 7, "the option after --config wins")
        let early = directory.appendingPathComponent("b.nc").path
        let first = try run(["sample", "--samples", "7", "--config", recipe, "--out", early])
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertEqual(try AmberNetCDFReader(path: early).frameCount, 12, "the recipe overrides options before it")
        let missing = try run(["sample", "--config", directory.appendingPathComponent("none.txt").path, "--out", early])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("cannot read the recipe file"), missing.stderr)
        try "samples 12\n".write(toFile: recipe, atomically: true, encoding: .utf8)
        let bad = try run(["sample", "--config", recipe, "--out", early])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("line 1: 'samples' is not an option"), bad.stderr)
    }

    /// Every shipped recipe parses: `train --config R --help`-free check by a validation-only run
    /// (an impossible --steps 0 stops after parsing with the steps message, not a recipe error).
    func testShippedRecipesParse() throws {
        let recipes = TestPaths.repositoryRoot.appendingPathComponent("data/recipes")
        let names = try FileManager.default.contentsOfDirectory(atPath: recipes.path).filter { $0.hasSuffix(".txt") }
        XCTAssertGreaterThanOrEqual(names.count, 4)
        for name in names {
            let result = try run(["train", "--config", recipes.appendingPathComponent(name).path, "--steps", "0",
                                  "--out", "/tmp/never.ckpt"])
            XCTAssertNotEqual(result.status, 0)
            XCTAssertTrue(result.stderr.contains("--steps must be positive"), "\(name): \(result.stderr)")
        }
    }
}
