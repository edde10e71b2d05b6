import Distributed
import Equivariant
import Foundation
import PluginHost
import Sampling
import TestSupport
import XCTest

/// The one Space, samples in transit, and the training methods as values.
final class SpaceAndTrainerTests: XCTestCase {
    /// One rounding rule (ties to even) for the minimum image everywhere; the EGNN's space and
    /// the samplers' are the same type and agree on the kind.
    func testOneMinimumImageAndSpaceKinds() {
        XCTAssertEqual(Space.minimumImage(1.5, edge: 1.0), -0.5)   // tie: round(1.5) = 2 (even)
        XCTAssertEqual(Space.minimumImage(2.5, edge: 1.0), 0.5)    // tie: round(2.5) = 2 (even)
        XCTAssertEqual(Space.minimumImage(Float(0.7), edge: 1), Float(0.7) - 1, accuracy: 1e-7)
        let periodic = EGNNConfiguration(particles: 3, dimension: 2, box: [2, 3]).space
        XCTAssertEqual(periodic, Space(particles: 3, box: [2, 3]))
        XCTAssertEqual(EGNNConfiguration(particles: 3, dimension: 2).space.kind, .centred)
        XCTAssertEqual(EGNNConfiguration(particles: 3, dimension: 2, removeMean: false).space.kind, .free)
        var x: [Double] = [-0.1, 3.0, 2.0, -3.1]
        periodic.wrap(&x)
        for (i, v) in x.enumerated() { XCTAssert(v >= 0 && v < [2.0, 3.0][i % 2], "\(x)") }
    }

    /// Space.of decides from the loaded system: DW-4 is a translation-invariant cluster.
    func testSpaceOfTheLoadedSystem() throws {
        try requireBuilt(TestPaths.plugin("DoubleWell"))
        let system = try PluginLoader.load(path: TestPaths.plugin("DoubleWell").path).makeSystem(parameters: "")
        let space = DiffusionSpace.of(system)
        XCTAssertEqual(space.kind, .centred)
        XCTAssertEqual(space.effectiveDimension, 6)
        // MCMC decides the same, and a flag overrides it.
        let start = try XCTUnwrap(system.initialPositions())
        XCTAssertEqual(Space.forMCMC(system, at: start), space)
        XCTAssertEqual(Space.forMCMC(system, at: start, fixCentreOfMass: false).kind, .free)
    }

    /// A torus with its centre of mass fixed (MCMC's): directions lose their particle mean,
    /// positions are wrapped, D' = (n−1)d; the diffusion torus keeps the zero mode, and an
    /// older checkpoint's space (no flag) decodes as that.
    func testTorusWithTheCentreOfMassFixed() throws {
        let torus = Space.periodic(particles: 3, box: [2, 3])
        let fixed = torus.fixingCentreOfMass(true)
        XCTAssertTrue(fixed.fixesCentreOfMass)
        XCTAssertFalse(torus.fixesCentreOfMass)
        XCTAssertEqual(fixed.effectiveDimension, 4)
        XCTAssertEqual(torus.effectiveDimension, 6)
        XCTAssertEqual(fixed.fixingCentreOfMass(false), torus)
        var direction: [Double] = [1, 2, 3, 5, -1, 4]
        var kept = direction
        fixed.project(&direction)
        torus.project(&kept)
        XCTAssertEqual(kept, [1, 2, 3, 5, -1, 4])
        for a in 0..<2 { XCTAssertEqual(direction[a] + direction[2 + a] + direction[4 + a], 0, accuracy: 1e-12) }
        var x: [Double] = [-0.5, 7, 2.5, 1, 0.1, -2]
        fixed.constrain(&x)
        for (i, v) in x.enumerated() { XCTAssert(v >= 0 && v < [2.0, 3.0][i % 2], "\(x)") }
        let old = try JSONDecoder().decode(Space.self, from: Data(#"{"particles":3,"dimension":2,"kind":"periodic","box":[2,3]}"#.utf8))
        XCTAssertEqual(old, torus)
        XCTAssertEqual(try JSONDecoder().decode(Space.self, from: JSONEncoder().encode(fixed)), fixed)
    }

    /// A batch travels as one typed value: packing round-trips, weighted or not, and one
    /// process gathers itself.
    func testSampleBatchGather() throws {
        let weighted = SampleBatch(stride: 2, positions: [1, 2, 3, 4], energies: [5, 6], logWeights: [-1, -2])
        let plain = SampleBatch(stride: 2, positions: [7, 8], energies: [9])
        XCTAssertEqual(try weighted.gathered(on: Communicator()), weighted)
        var all = weighted
        all.append(SampleBatch(stride: 2, positions: [7, 8], energies: [9], logWeights: [-3]))
        XCTAssertEqual(all.count, 3)
        XCTAssertEqual(all.logWeights, [-1, -2, -3])
        XCTAssertEqual(plain.count, 1)
        XCTAssertTrue(plain.logWeights.isEmpty)
    }

    /// Every method is registered with a training value; only trajectory balance learns log Z.
    func testEveryMethodHasItsTrainingValue() {
        for method in DiffusionMethod.allCases {
            XCTAssertEqual(method.training.learnsLogZ, method == .tb, method.rawValue)
        }
        XCTAssertTrue(DiffusionMethod.idem.training is EnergyMatching)
        XCTAssertTrue(DiffusionMethod.dsm.training is DenoisingScoreMatching)
        XCTAssertTrue(DiffusionMethod.logvar.training is PathTraining)
    }

    /// step(state) -> state: the returned state is the next one, and the state handed in is
    /// left as it was (a failed step changes nothing of it); the counters are the trainer's.
    func testStepReturnsTheNextState() throws {
        try requireBuilt(TestPaths.plugin("DoubleWell"))
        let system = try PluginLoader.load(path: TestPaths.plugin("DoubleWell").path).makeSystem(parameters: "")
        var c = DiffusionConfiguration(method: .tb)
        c.hidden = 8
        c.layers = 2
        c.batch = 4
        c.timeSteps = 5
        let model = try DiffusionModel(configuration: c, space: DiffusionSpace.of(system), threads: 1)
        let trainer = DiffusionTrainer(model: model, system: system)
        let evaluationsBefore = system.energyEvaluations  // Space.of's invariance test is not training
        let before = trainer.state
        let (next, report) = try trainer.step(before)
        XCTAssertEqual(trainer.state, before)
        XCTAssertEqual(next.step, 1)
        XCTAssertEqual(report.energyEvaluations, next.energyEvaluations)
        XCTAssertEqual(next.energyEvaluations, system.energyEvaluations - evaluationsBefore)
        XCTAssertNotEqual(next.rng, before.rng)
        XCTAssertNotEqual(next.parameters, before.parameters, "Adam moved the network")
        XCTAssertNotEqual(next.scalars[0], before.scalars[0], "tb learns log Z")
        XCTAssertEqual(model.networkParameters, next.parameters, "the model holds the state it computed")
        // A function of the state alone: the same state in gives the same state out, whatever
        // the model held before.
        var again = try trainer.step(before).state
        again.trainingSeconds = next.trainingSeconds
        XCTAssertEqual(again, next)
    }

    /// A checkpoint of another version is refused with both versions named.
    func testCheckpointOfAnotherVersionIsRefused() throws {
        let path = TestPaths.temporaryDirectory("checkpoint-version").appendingPathComponent("old.ckpt").path
        try Data(#"{"format":"ensemble-diffusion-checkpoint","version":2,"parameters":[1,2]}"#.utf8)
            .write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try DiffusionCheckpoint.read(from: path)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("version 2") && text.contains("version \(DiffusionCheckpoint.currentVersion)"), text)
            XCTAssertEqual(DiffusionCheckpoint.currentVersion, 4)
        }
    }
}
