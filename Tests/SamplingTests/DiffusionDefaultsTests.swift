import Foundation
import Sampling
import XCTest

/// `DiffusionConfiguration.defaults(for:)` is the one source of a method's defaults (the
/// command line's option defaults read it); the bare `init(method:)` stays what old checkpoints
/// decode against.
final class DiffusionDefaultsTests: XCTestCase {
    func testDefaultsDifferFromTheBareConfigurationOnlyWhereDocumented() throws {
        for method in DiffusionMethod.allCases {
            let bare = DiffusionConfiguration(method: method)
            var d = DiffusionConfiguration.defaults(for: method)
            XCTAssertEqual(d.precision, .float, method.rawValue)
            XCTAssertEqual(d.energyClip, 1e4, method.rawValue)
            XCTAssertEqual(d.tanhRange, method.usesVEProcess ? 15 : nil, method.rawValue)
            XCTAssertEqual(d.parameterization, method == .dsm ? .edm : nil, method.rawValue)
            XCTAssertEqual(d.averageHalfLife, method == .dsm ? 500 : nil, method.rawValue)
            XCTAssertEqual(d.scalesFromData, method == .dsm ? true : nil, method.rawValue)
            // Everything else is the bare configuration's.
            d.precision = bare.precision
            d.energyClip = bare.energyClip
            d.tanhRange = bare.tanhRange
            // A method with settings of its own recommends their defaults, and reads them back.
            XCTAssertEqual(d.methodSettings == nil, ![.idem, .tsm].contains(method), method.rawValue)
            if method == .tsm { XCTAssertEqual(d.settings(TargetScoreMatching.Settings.self), TargetScoreMatching.Settings()) }
            if method == .idem { XCTAssertEqual(d.settings(EnergyMatching.Settings.self), EnergyMatching.Settings()) }
            d.methodSettings = bare.methodSettings
            if method == .dsm {
                d.parameterization = bare.parameterization
                d.averageHalfLife = bare.averageHalfLife
                d.warmupSteps = bare.warmupSteps
                d.decayStart = bare.decayStart
                d.validationFraction = bare.validationFraction
                d.scalesFromData = bare.scalesFromData
                d.sigmaMin = bare.sigmaMin
                d.sigmaMax = bare.sigmaMax
                d.forceBlendSigma = bare.forceBlendSigma
                d.noiseLevels = bare.noiseLevels
            }
            XCTAssertEqual(d, bare, method.rawValue)
        }
    }

    func testDefaultsValidateAndRoundTripThroughACheckpointsCoding() throws {
        for method in DiffusionMethod.allCases {
            var c = DiffusionConfiguration.defaults(for: method)
            if method == .dsm { c.data = MCMCSettings(chains: 4, burnIn: 10, thin: 1, samples: 100, seed: 1) }
            XCTAssertNoThrow(try c.validate(), method.rawValue)
            let decoded = try JSONDecoder().decode(DiffusionConfiguration.self, from: JSONEncoder().encode(c))
            XCTAssertEqual(decoded, c, method.rawValue)
        }
    }
}
