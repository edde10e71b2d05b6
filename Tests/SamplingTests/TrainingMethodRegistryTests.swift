import Foundation
import PluginHost
import Sampling
import TestSupport
import XCTest

/// The training-method registry: names, own settings, and target score matching (the method
/// added as one file plus one registration line) learning an exact score.
final class TrainingMethodRegistryTests: XCTestCase {
    /// Every registered method has a unique name that reads back, and the checkpoints' spelling
    /// of the first four is unchanged; an unknown name does not decode.
    func testNamesAreUniqueAndCodeAsBefore() throws {
        let names = TrainingMethodRegistry.all.map(\.method.rawValue)
        XCTAssertEqual(Set(names).count, names.count)
        XCTAssertEqual(Array(names.prefix(4)), ["idem", "tb", "logvar", "dsm"])
        for method in DiffusionMethod.allCases {
            XCTAssertEqual(DiffusionMethod(rawValue: method.rawValue), method)
            XCTAssertEqual(String(decoding: try JSONEncoder().encode(method), as: UTF8.self), "\"\(method.rawValue)\"")
        }
        XCTAssertNil(DiffusionMethod(rawValue: "nope"))
        XCTAssertThrowsError(try JSONDecoder().decode(DiffusionMethod.self, from: Data("\"nope\"".utf8)))
        // A shared option no method lists is every method's; a listed one is its methods' only.
        XCTAssertNil(TrainingMethodRegistry.methods(reading: "--hidden"))
        XCTAssertEqual(TrainingMethodRegistry.methods(reading: "--sigma-min"), [.idem, .dsm, .tsm])
        XCTAssertEqual(TrainingMethodRegistry.methods(owning: "--tsm-samples"), [.tsm])
        XCTAssertEqual(TrainingMethodRegistry.methods(owning: "--monte-carlo-samples"), [.idem])
    }

    /// A checkpoint written when iDEM's settings were fields of the configuration (version 3,
    /// before `methodSettings`) reads with them as iDEM's settings.
    func testOlderCheckpointsFieldsBecomeTheMethodsSettings() throws {
        try requireBuilt(TestPaths.plugin("DoubleWell"))
        let system = try PluginLoader.load(path: TestPaths.plugin("DoubleWell").path).makeSystem(parameters: "")
        var c = DiffusionConfiguration(method: .idem)
        c.hidden = 8
        c.layers = 2
        let model = try DiffusionModel(configuration: c, space: DiffusionSpace.of(system), threads: 1)
        let path = TestPaths.temporaryDirectory("legacy-settings").appendingPathComponent("m.ckpt").path
        try DiffusionCheckpoint(trainer: DiffusionTrainer(model: model, system: system)).write(to: path)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertFalse(text.contains("methodSettings"))
        XCTAssertEqual(text.components(separatedBy: #""configuration":{"#).count, 2)
        XCTAssertEqual(text.components(separatedBy: #""version":4"#).count, 2)
        try text.replacingOccurrences(of: #""configuration":{"#, with:
            #""configuration":{"monteCarloSamples":7,"refillEvery":3,"refillSamples":5,"initialBuffer":11,"#)
            .replacingOccurrences(of: #""version":4"#, with: #""version":3"#)
            .write(toFile: path, atomically: true, encoding: .utf8)
        let read = try DiffusionCheckpoint.read(from: path).configuration.settings(EnergyMatching.Settings.self)
        XCTAssertEqual([read.monteCarloSamples, read.refillEvery, read.refillSamples, read.initialBuffer], [7, 3, 5, 11])
    }

    /// A method's own settings survive the configuration's coding (values 0 and 1 included, which
    /// must stay numbers), and its options set them.
    func testOwnSettingsRoundTripAndParse() throws {
        var c = DiffusionConfiguration.defaults(for: .tsm)
        var s = TargetScoreMatching.Settings()
        s.samples = 3
        s.chains = 1
        s.burnIn = 0
        c.setSettings(s)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let data = try encoder.encode(c)
        let decoded = try JSONDecoder().decode(DiffusionConfiguration.self, from: data)
        XCTAssertEqual(decoded, c)
        XCTAssertEqual(decoded.settings(TargetScoreMatching.Settings.self), s)
        XCTAssertEqual(try encoder.encode(decoded), data)
        XCTAssertEqual(String(decoding: try encoder.encode(c.methodSettings), as: UTF8.self),
                       "{\"burnIn\":0,\"chains\":1,\"samples\":3,\"thin\":10}")
        let parsed = try DiffusionMethod.tsm.registration.applyingOwnOptions(
            [("--tsm-samples", "500"), ("--tsm-burn-in", "0")], to: DiffusionConfiguration.defaults(for: .tsm))
        XCTAssertEqual(parsed.settings(TargetScoreMatching.Settings.self).samples, 500)
        XCTAssertEqual(parsed.settings(TargetScoreMatching.Settings.self).burnIn, 0)
        XCTAssertThrowsError(try DiffusionMethod.tsm.registration.applyingOwnOptions(
            [("--tsm-samples", "0")], to: c))
        // A configuration without settings (e.g. written before the field existed) reads the defaults.
        XCTAssertEqual(DiffusionConfiguration(method: .tsm).settings(TargetScoreMatching.Settings.self),
                       TargetScoreMatching.Settings())
    }

    /// On a centred harmonic well, π = N(0, σ²) in the zero-mean subspace (σ² = kT/k = 1), the
    /// VE-noised density is N(0, σ² + h(t)), whose score is exactly −x/(σ² + h). Target score
    /// matching on MALA data learns it: relative mean-square error < 0.05 over x_t drawn from
    /// p_t at t ~ U(0, 1), where the untrained network is off by more than 0.5.
    func testTargetScoreMatchingLearnsTheExactScoreOfAGaussian() throws {
        let plugin = try PluginLoader.load(path: try buildHarmonicPlugin().path)
        let system = try plugin.makeSystem(parameters: "k=1 temperature=1 particles=4 dimension=2 centred=1")
        var c = DiffusionConfiguration.defaults(for: .tsm)
        c.hidden = 32
        c.layers = 2
        c.batch = 64
        c.learningRate = 3e-3
        c.sigmaMax = 3
        var own = TargetScoreMatching.Settings()
        own.samples = 1000
        own.burnIn = 500
        own.thin = 5
        c.setSettings(own)
        try c.validate()
        let space = DiffusionSpace.of(system)
        XCTAssertEqual(space.kind, .centred)
        let model = try DiffusionModel(configuration: c, space: space, threads: 1)
        let trainer = DiffusionTrainer(model: model, system: system)

        func relativeError() -> Double {
            var rng = SeededGenerator(seed: 7)
            let m = 512, stride = space.coordinateCount
            let times = (0..<m).map { _ in rng.uniform() }
            var x = space.noise(batch: m, rng: &rng)
            let e = space.noise(batch: m, rng: &rng)
            for b in 0..<m {
                let s = model.noiseVariance(times[b]).squareRoot()
                for i in 0..<stride { x[b * stride + i] += s * e[b * stride + i] }
            }
            let learned = model.score(positions: x, times: times)
            var error = 0.0, norm = 0.0
            for b in 0..<m {
                let scale = 1 / (1 + model.noiseVariance(times[b]))
                for i in 0..<stride {
                    let exact = -x[b * stride + i] * scale
                    error += (learned[b * stride + i] - exact) * (learned[b * stride + i] - exact)
                    norm += exact * exact
                }
            }
            return error / norm
        }

        let before = relativeError()
        for _ in 0..<400 { try trainer.step() }
        let after = relativeError()
        XCTAssertGreaterThan(before, 0.5, "untrained")
        XCTAssertLessThan(after, 0.05, "trained: relative error \(after) (untrained \(before))")
        // The data: 1000 MALA configurations in the buffer, their cost in the budget.
        XCTAssertEqual(trainer.state.buffer.count, 1000)
        XCTAssertEqual(trainer.state.gradientEvaluations, 8 * (1 + 500 + 125 * 5) + 400 * 64)
    }
}
