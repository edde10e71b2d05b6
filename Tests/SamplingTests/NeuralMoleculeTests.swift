import Foundation
import PluginHost
import Sampling
import TestSupport
import XCTest

/// A neural sampler for a molecule (alanine dipeptide): atom identities as node types, dsm on
/// data made elsewhere, and the fold of mirror images onto the start structure's handedness.
final class NeuralMoleculeTests: XCTestCase {
    static var alanine: Plugin?

    func alanine() throws -> EnergySystem {
        try requireBuilt(TestPaths.plugin("Alanine"))
        if Self.alanine == nil { Self.alanine = try PluginLoader.load(path: TestPaths.plugin("Alanine").path) }
        return try Self.alanine!.makeSystem(parameters: "")
    }

    func testAtomTypingOfAlanine() throws {
        let atoms = try XCTUnwrap(try alanine().atoms())
        let byAtom = try XCTUnwrap(AtomTyping.atom.types(of: atoms))
        XCTAssertEqual(Set(byAtom).count, 22, "every atom of alanine dipeptide is its own type")
        XCTAssertEqual(byAtom.max(), 21)
        let byElement = try XCTUnwrap(AtomTyping.element.types(of: atoms))
        XCTAssertEqual(Set(byElement).count, 4)
        for i in atoms.indices {
            for j in atoms.indices {
                XCTAssertEqual(byElement[i] == byElement[j], atoms[i].element == atoms[j].element)
            }
        }
        XCTAssertNil(AtomTyping.none.types(of: atoms))
    }

    /// Alanine's one stereocentre (Cα; its three methyls are not stereocentres) keeps its
    /// handedness under rotations and loses it under inversion, while swapping hydrogens within
    /// each methyl (which flips their signed volumes, not the molecule) is not a mirror image; the
    /// fold puts an inverted copy back (distances and energy of the start structure) and moves its
    /// log-weight by the energy change.
    func testMirrorFoldOfAlanine() throws {
        let system = try alanine()
        let atoms = try XCTUnwrap(system.atoms())
        let start = try XCTUnwrap(system.initialPositions())
        let fold = try XCTUnwrap(MirrorFold(elements: atoms.map(\.element), start: start))
        XCTAssertEqual(fold.centres.map { atoms[$0[0]].name }, ["CA"])
        // Each methyl's first two hydrogens exchanged: three methyl volumes flip, Cα's does not.
        var relabelled = start
        for centre in ["CH3", "CB"] {
            for c in atoms.indices where atoms[c].name == centre {
                let hydrogens = atoms.indices.filter { h in
                    atoms[h].element == "H" && (0..<3).map { start[3 * h + $0] - start[3 * c + $0] }.map { $0 * $0 }.reduce(0, +) < 1.3 * 1.3
                }
                XCTAssertEqual(hydrogens.count, 3, "\(centre) \(c)")
                for k in 0..<3 { relabelled.swapAt(3 * hydrogens[0] + k, 3 * hydrogens[1] + k) }
            }
        }
        XCTAssertFalse(fold.isMirrored(relabelled[...]), "equivalent hydrogens exchanged: the same molecule")
        // A rotation (about z by 1 rad, then a shift) keeps the handedness; an inversion flips it.
        let (c, s) = (cos(1.0), sin(1.0))
        var rotated = start, inverted = start
        for i in 0..<22 {
            let (x, y, z) = (start[3 * i], start[3 * i + 1], start[3 * i + 2])
            rotated[3 * i] = c * x - s * y + 2
            rotated[3 * i + 1] = s * x + c * y - 1
            rotated[3 * i + 2] = z + 0.5
            for k in 0..<3 { inverted[3 * i + k] = 3 - start[3 * i + k] }
        }
        XCTAssertFalse(fold.isMirrored(start[...]))
        XCTAssertFalse(fold.isMirrored(rotated[...]))
        XCTAssertTrue(fold.isMirrored(inverted[...]))

        let u0 = try system.energy(start)
        var batch = SampleBatch(stride: 66, positions: rotated + inverted, energies: [u0, 7], logWeights: [1, 2])
        XCTAssertEqual(try fold.fold(&batch, system: system), 1)
        XCTAssertEqual(Array(batch.positions.prefix(66)), rotated, "a sample of the right handedness is untouched")
        let folded = Array(batch.positions.suffix(66))
        XCTAssertFalse(fold.isMirrored(folded[...]))
        func distances(_ x: [Double]) -> [Double] {
            var r: [Double] = []
            for i in 0..<22 {
                for j in 0..<i {
                    let d: [Double] = (0..<3).map { x[3 * i + $0] - x[3 * j + $0] }
                    r.append(d.map { $0 * $0 }.reduce(0, +).squareRoot())
                }
            }
            return r
        }
        XCTAssertLessThan(zip(distances(folded), distances(start)).map { abs($0 - $1) }.max()!, 1e-12)
        // ff96's torsion phases are 0 or π: the energy is mirror-invariant, so the folded
        // sample has the start structure's energy, and its weight moved by 7 − u0.
        XCTAssertEqual(batch.energies[1], u0, accuracy: 1e-9 * abs(u0))
        XCTAssertEqual(batch.logWeights[1], 2 + 7 - batch.energies[1], accuracy: 1e-12)
        XCTAssertEqual(batch.energies[0], u0)
        XCTAssertEqual(batch.logWeights[0], 1)
    }

    /// A dsm run on given data: the buffer holds them (centred), the budget starts at what made
    /// them, a step spends nothing more without the force blend, and the checkpoint brings back
    /// the node types and the same network.
    func testDenoisingFromDataAndTheCheckpointKeepsTheTypes() throws {
        let system = try alanine()
        let atoms = try XCTUnwrap(system.atoms())
        let start = try XCTUnwrap(system.initialPositions())
        var c = DiffusionConfiguration(method: .dsm)
        c.hidden = 8
        c.layers = 2
        c.batch = 4
        c.sigmaMax = 5
        c.nodeTypes = AtomTyping.atom.types(of: atoms)
        var rng = SeededGenerator(seed: 3)
        let frames = 6
        let data = (0..<frames).flatMap { f in start.map { $0 + 0.02 * rng.normal() + Double(f) } }
        let energies = try system.evaluate(data, batch: frames, withGradients: false).energies
        XCTAssertThrowsError(try DiffusionModel(configuration: c, space: DiffusionSpace.of(system)), "dsm needs data")
        c.dataFile = TrajectoryData(path: "made-elsewhere.nc", frames: frames, energyEvaluations: 1234, gradientEvaluations: 1200)
        let model = try DiffusionModel(configuration: c, space: DiffusionSpace.of(system), threads: 1)
        XCTAssertEqual(model.space.kind, .centred)
        let trainer = try DiffusionTrainer.denoising(model: model, system: system, data: data, energies: energies)
        XCTAssertEqual(trainer.state.buffer.count, frames)
        XCTAssertEqual(trainer.state.buffer.logRewards, energies.map { -$0 })
        for f in 0..<frames {
            for k in 0..<3 {
                let mean = (0..<22).map { trainer.state.buffer.positions[f * 66 + 3 * $0 + k] }.reduce(0, +)
                XCTAssertEqual(mean, 0, accuracy: 1e-9)
            }
        }
        XCTAssertEqual(trainer.energyEvaluations, 1234)
        let report = try trainer.step()
        XCTAssertTrue(report.loss.isFinite)
        XCTAssertEqual(report.energyEvaluations, 1234, "no parallel tempering, no force blend: no evaluation")
        XCTAssertEqual(report.gradientEvaluations, 1200)

        let url = TestPaths.temporaryDirectory("dsm-data").appendingPathComponent("m.ckpt")
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        try DiffusionCheckpoint(trainer: trainer).write(to: url.path)
        let checkpoint = try DiffusionCheckpoint.read(from: url.path)
        XCTAssertEqual(checkpoint.configuration.nodeTypes, c.nodeTypes)
        XCTAssertEqual(checkpoint.configuration.dataFile, c.dataFile)
        let restored = try checkpoint.makeModel(threads: 1)
        let x = Array(data.prefix(2 * 66)), t = [0.2, 0.7]
        XCTAssertEqual(restored.networkField(positions: x, times: t), model.networkField(positions: x, times: t))
        // Without the types the same configuration makes a different network.
        var untyped = c
        untyped.nodeTypes = nil
        let plain = try DiffusionModel(configuration: untyped, space: DiffusionSpace.of(system), threads: 1)
        XCTAssertEqual(model.networkParameterCount - plain.networkParameterCount, 22 * 8)
    }

    func testDataSourcesAreExclusive() throws {
        var c = DiffusionConfiguration(method: .dsm)
        c.data = MCMCSettings()
        c.dataFile = TrajectoryData(path: "a.nc", frames: 10, energyEvaluations: 1, gradientEvaluations: 1)
        XCTAssertThrowsError(try c.validate())
        c.data = nil
        XCTAssertNoThrow(try c.validate())
        c.dataFile?.frames = c.bufferCapacity + 1
        XCTAssertThrowsError(try c.validate())
    }
}

extension NeuralMoleculeTests {
    /// A drawn molecule with two atoms on top of each other makes the plugin refuse the whole
    /// batch; the correction's MALA kernel marks only that walker (u = +∞, rejected moves to
    /// such places) and keeps moving the others, with their energies exactly as a lone
    /// evaluation gives them.
    func testMALAKernelMarksRefusedConfigurationsInsteadOfFailing() throws {
        let system = try alanine()
        let start = try XCTUnwrap(system.initialPositions())
        var broken = start
        for k in 0..<3 { broken[3 + k] = broken[k] }  // atom 1 onto atom 0
        XCTAssertThrowsError(try system.evaluate(start + broken, batch: 2), "the plugin refuses the batch")
        let kernel = MALAKernel(space: DiffusionSpace.of(system), system: system)
        var state = try kernel.initialize(start + broken)
        XCTAssertEqual(state.energies[0], try system.energy(state.positions.prefix(66).map { $0 }), accuracy: 1e-12)
        XCTAssertEqual(state.energies[1], .infinity)
        var rng = SeededGenerator(seed: 4)
        var accepted = 0
        for _ in 0..<20 { accepted += try kernel.step(&state, stepSize: 1e-4, rng: &rng) }
        XCTAssertGreaterThan(accepted, 0)
        XCTAssertTrue(state.energies[0].isFinite)
        XCTAssertEqual(state.energies[0], try system.energy(state.positions.prefix(66).map { $0 }), accuracy: 1e-9 * abs(state.energies[0]))
    }
}
