import Foundation
import PluginHost
import Sampling
import TestSupport
import XCTest

/// Temperature-conditioned denoising: the data hold every PT replica tagged with ln β, and a
/// conditioned model draws at any β with exact weights for exp(−βu).
final class TemperatureConditioningTests: XCTestCase {
    static var harmonic: Plugin?

    /// DW-4, PT with 3 temperatures, 4 ladders, a quarter held out: the buffer holds the β = 1
    /// frames of three ladders and, from the same three, every hotter replica's frames with its
    /// ln β; the hotter the replica the higher its mean energy; σ_d and the validation frames are
    /// the target's alone; training runs on the mixture, and the tags survive a checkpoint.
    func testDataHoldEveryReplicaTaggedWithItsBeta() throws {
        try requireBuilt(TestPaths.plugin("DoubleWell"))
        let plugin = try PluginLoader.load(path: TestPaths.plugin("DoubleWell").path)
        let system = try plugin.makeSystem(parameters: "")
        var c = smallDW4Configuration(replicas: 3, maxTemperature: 4)
        c.forceBlendSigma = 0.2
        c.temperatureConditioned = true
        let model = try DiffusionModel(configuration: c, space: DiffusionSpace(particles: 4, dimension: 2, kind: .centred))
        XCTAssertEqual(model.networkParameters.count,
                       try DiffusionModel(configuration: { var u = c; u.temperatureConditioned = nil; return u }(),
                                          space: model.space).networkParameters.count + 16,
                       "one more node feature: one more embedding row")
        let trainer = DiffusionTrainer(model: model, system: system)
        for _ in 0..<20 { try trainer.step() }
        let state = trainer.state
        let tags = try XCTUnwrap(state.dataLogBetas)
        XCTAssertEqual(state.buffer.count, 900)
        XCTAssertEqual(tags.count, 900)
        XCTAssertEqual(state.validationData?.count, 100 * 8, "only the held-out ladder's β = 1 frames")
        let betas = c.data!.betas
        var meanEnergy: [Double] = []
        for (level, beta) in betas.enumerated() {
            let rows = tags.indices.filter { tags[$0] == log(beta) }
            XCTAssertEqual(rows.count, 300, "level \(level)")
            meanEnergy.append(rows.map { -state.buffer.logRewards[$0] }.reduce(0, +) / 300)
            if level == 0 {
                let frames = state.buffer.gather(rows)
                let rms = (frames.reduce(0) { $0 + $1 * $1 } / Double(frames.count)).squareRoot()
                XCTAssertEqual(state.dataScale!, rms, accuracy: 1e-12 * rms, "σ_d of the β = 1 frames")
            }
        }
        print("mean u per level (β \(betas)): \(meanEnergy)")
        XCTAssertLessThan(meanEnergy[0], meanEnergy[1])
        XCTAssertLessThan(meanEnergy[1], meanEnergy[2])
        XCTAssertTrue(state.parameters.allSatisfy(\.isFinite))

        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tc-\(UUID()).ckpt").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try DiffusionCheckpoint(trainer: trainer).write(to: path)
        let read = try DiffusionCheckpoint.read(from: path)
        XCTAssertEqual(read.state.dataLogBetas, tags)
        XCTAssertTrue(try read.makeModel().isTemperatureConditioned)
    }

    /// An untrained conditioned EDM network drawing at β = ½ by Heun's deterministic map: its exact
    /// weights for exp(−βu) recover the analytic log Z_β of a harmonic target, 3 log(2π/(βk)); the
    /// same draws weighted for β = 1 would be off by (D/2) ln 2 = 2.08.
    func testExactWeightsAtAnotherTemperatureRecoverItsLogZ() throws {
        if Self.harmonic == nil { Self.harmonic = try PluginLoader.load(path: try buildHarmonicPlugin().path) }
        let system = try Self.harmonic!.makeSystem(parameters: "k=0.333333333333 temperature=1 particles=3 dimension=2")
        var c = smallEDMConfiguration(sigmaMax: 6, seed: 4)
        c.data!.replicas = 4
        c.temperatureConditioned = true
        let m = try untrainedEDMModel(c, space: DiffusionSpace(particles: 3, dimension: 2, kind: .free), sigmaData: 1.8)
        let beta = 0.5
        m.logBeta = log(beta)
        XCTAssertEqual(m.drawBeta, beta, accuracy: 1e-15)
        try assertExactWeightsRecover(logZ: 3 * log(2 * Double.pi / (beta * 0.333333333333)), model: m, system: system,
                                      seed: 9, label: "at β = ½")
    }
}
