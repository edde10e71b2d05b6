import Foundation
import TestSupport
import Trajectory
import XCTest

/// Issue 23, "provenance in every trajectory": `sample` records the chain count, the plugin with
/// its parameters and the sampler as global attributes; `ramachandran` splits the frames into the
/// recorded chains when --chains is not given, and `energy`, `evaluate`, `rdf` and `ramachandran`
/// warn when a file is read with another plugin or other parameters.
final class ProvenanceCLITests: XCTestCase {
    var exe: String { TestPaths.ensembleExecutable.path }

    func run(_ arguments: [String]) throws -> ProcessResult {
        try requireBuilt(TestPaths.ensembleExecutable)
        return try runProcess(exe, arguments)
    }

    func json(_ path: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }

    /// Every sampler writes what made the file: MALA, PT (chains = ladders), and a molecule's dynamics.
    func testSampleRecordsChainsPluginParametersAndSampler() throws {
        let directory = TestPaths.temporaryDirectory("provenance")
        defer { try? FileManager.default.removeItem(at: directory) }
        let mala = directory.appendingPathComponent("mala.nc").path
        var r = try run(["sample", "--plugin", "double-well", "--samples", "30", "--chains", "3", "--burn-in", "50",
                         "--thin", "2", "--threads", "1", "--out", mala])
        XCTAssertEqual(r.status, 0, r.stderr)
        var p = try AmberNetCDFReader(path: mala).provenance
        XCTAssertEqual(p.chains, 3)
        XCTAssertEqual(p.plugin, "double-well")
        XCTAssertEqual(p.pluginParameters, "")
        XCTAssertEqual(p.sampler, "mala")
        XCTAssertEqual(p.lengthUnitAngstrom, 1)

        let pt = directory.appendingPathComponent("pt.nc").path
        r = try run(["sample", "--plugin", "lennard-jones", "--param", "preset=lj13", "--sampler", "pt", "--replicas", "2",
                     "--samples", "20", "--chains", "2", "--burn-in", "20", "--thin", "2", "--threads", "1", "--out", pt])
        XCTAssertEqual(r.status, 0, r.stderr)
        p = try AmberNetCDFReader(path: pt).provenance
        XCTAssertEqual(p.chains, 2)
        XCTAssertEqual(p.plugin, "lennard-jones")
        XCTAssertEqual(p.pluginParameters, "preset=lj13")
        XCTAssertEqual(p.sampler, "pt")
    }

    /// The tour's `ramachandran` without --chains reported a split-R̂ and basin entries that
    /// contradicted `sample` on the same file (1.001 and 21 entries against 1.019 and 6): it
    /// treated the interleaved frames as one chain. It now uses the recorded count and agrees.
    func testRamachandranUsesTheRecordedChainsAndAgreesWithSample() throws {
        try requireBuilt(TestPaths.plugin("Alanine"))
        let directory = TestPaths.temporaryDirectory("provenance-rama")
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("ala.nc").path
        let sampleJSON = directory.appendingPathComponent("sample.json").path
        // Hot (800 K) and thinned, so that the chains cross between basins in a second: with chains
        // taken as one, entries and split-R̂ differ (8 against 7 entries into αR).
        let ala = ["--plugin", "alanine", "--param", "solvent=vacuum", "--param", "temperature=800"]
        let r = try run(["sample"] + ala + ["--samples", "80", "--burn-in", "100", "--thin", "200", "--seed", "3",
                                            "--threads", "1", "--out", out, "--json", sampleJSON])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try AmberNetCDFReader(path: out).provenance.chains, 4)

        let ramaJSON = directory.appendingPathComponent("rama.json").path
        let rama = try run(["ramachandran", out, "--reference", out, "--json", ramaJSON] + ala)
        XCTAssertEqual(rama.status, 0, rama.stderr)
        XCTAssertTrue(rama.stdout.contains("4 chains (recorded in the file)"), rama.stdout)
        XCTAssertFalse(rama.stderr.contains("warning"), rama.stderr)
        let report = try json(ramaJSON)
        XCTAssertEqual(report["chains"] as? Int, 4)
        XCTAssertEqual(report["chains_source"] as? String, "recorded in the file")
        let sampled = try XCTUnwrap((try json(sampleJSON)["basins"] as? [String: Any])?["basins"] as? [[String: Any]])
        let analysed = try XCTUnwrap((report["basin_errors"] as? [String: Any])?["basins"] as? [[String: Any]])
        XCTAssertEqual(sampled.count, 3)
        for (a, b) in zip(sampled, analysed) {
            XCTAssertEqual(a["name"] as? String, b["name"] as? String)
            XCTAssertEqual(a["entries"] as? Int, b["entries"] as? Int, "basin \(a["name"] ?? "")")
            let ra = try XCTUnwrap((a["convergence"] as? [String: Any])?["split_r_hat"] as? Double)
            let rb = try XCTUnwrap((b["convergence"] as? [String: Any])?["split_r_hat"] as? Double)
            XCTAssertEqual(ra, rb, accuracy: 1e-9, "basin \(a["name"] ?? "")")
        }

        // --chains that contradicts the file is used as asked, with a warning; more chains than
        // half the frames is refused.
        let three = try run(["ramachandran", out, "--reference", out, "--chains", "3"] + ala)
        XCTAssertEqual(three.status, 0, three.stderr)
        XCTAssertTrue(three.stderr.contains("warning: --chains 3 differs from the 4 chains recorded in"), three.stderr)
        let many = try run(["ramachandran", out, "--reference", out, "--chains", "50"] + ala)
        XCTAssertNotEqual(many.status, 0)
        XCTAssertTrue(many.stderr.contains("--chains 50 (--chains) is more than half the 80 frames"), many.stderr)

        // An alanine file read with the Lennard-Jones plugin (22 atoms each): energies of 10⁷ came
        // without a word; now a warning names both plugins.
        let lj = try run(["energy", "--plugin", "lennard-jones", "--param", "particles=22", out])
        XCTAssertTrue(lj.stderr.contains("warning: \(out) was written with plugin 'alanine' (solvent=vacuum;temperature=800), but is read here with plugin 'lennard-jones'"), lj.stderr)
        // Other parameters of the same plugin: energy, evaluate and ramachandran warn.
        for arguments in [["energy", out], ["evaluate", out, "--reference", out, "--max-samples", "4"],
                          ["ramachandran", out, "--reference", out]] {
            let other = try run(arguments + ["--plugin", "alanine", "--param", "solvent=vacuum"])
            XCTAssertEqual(other.status, 0, other.stderr)
            XCTAssertTrue(other.stderr.contains("was written with plugin 'alanine' (solvent=vacuum;temperature=800), but is read here with different parameters, 'alanine' (solvent=vacuum)"),
                          "\(arguments[0]): \(other.stderr)")
            let same = try run(arguments + ["--plugin", "alanine", "--param", "temperature=800.0", "--param", "solvent=vacuum"])
            XCTAssertFalse(same.stderr.contains("warning"), "\(arguments[0]): \(same.stderr)")
        }
        // evaluate reports the recorded chains.
        let evaluate = try run(["evaluate", out, "--reference", out, "--max-samples", "4"] + ala)
        XCTAssertTrue(evaluate.stdout.contains("recorded: 4 chains (frames interleaved), sampler langevin, plugin 'alanine' (solvent=vacuum;temperature=800)"),
                      evaluate.stdout)
    }

    /// `rdf` reads the recorded chains and warns on other parameters (here another temperature,
    /// which changes every u = U/kT).
    func testRDFWarnsOnOtherParameters() throws {
        let directory = TestPaths.temporaryDirectory("provenance-rdf")
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("lj.nc").path
        let system = ["--plugin", "lennard-jones", "--param", "particles=16", "--param", "density=0.5",
                      "--param", "cutoff=1.55"]
        let r = try run(["sample"] + system + ["--param", "temperature=2", "--samples", "40", "--chains", "2",
                                               "--burn-in", "50", "--threads", "1", "--out", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        let other = try run(["rdf", out, "--reference", out] + system + ["--param", "temperature=1.5"])
        XCTAssertEqual(other.status, 0, other.stderr)
        XCTAssertTrue(other.stderr.contains("but is read here with different parameters"), other.stderr)
        XCTAssertTrue(other.stdout.contains("40 frames, 2 chains recorded"), other.stdout)
        let same = try run(["rdf", out, "--reference", out] + system + ["--param", "temperature=2"])
        XCTAssertEqual(same.status, 0, same.stderr)
        XCTAssertFalse(same.stderr.contains("warning"), same.stderr)
    }
}
