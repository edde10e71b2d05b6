import Equivariant
import TestSupport
import XCTest

/// Analytic gradients (hand-written backward) against central finite
/// differences in Double, for every parameter and every input coordinate.
final class GradientTests: XCTestCase {
    /// L = Σ w·v + ½ Σ v²: exercises both a linear and a nonlinear read-out.
    func check(_ config: EGNNConfiguration, batch: Int = 2, seed: UInt64, file: StaticString = #filePath, line: UInt = #line) throws {
        var rng = TestRandom(seed: seed ^ 0xC0)
        let c = (0..<(batch * config.conditionCount)).map { _ in rng.normal() }
        try check(config, batch: batch, seed: seed, conditions: c, file: file, line: line)
    }

    /// The same with per-configuration conditioning scalars (empty: none).
    func check(_ config: EGNNConfiguration, batch: Int, seed: UInt64, conditions c: [Double],
               file: StaticString = #filePath, line: UInt = #line) throws {
        var rng = TestRandom(seed: seed)
        let model = try EGNN<Double>(configuration: config, seed: seed, threads: 1)
        // Perturb the zero-ish initial state so every path carries gradient.
        for i in model.parameters.indices { model.parameters[i] += 0.1 * rng.normal() }
        var x = randomPositions(config, batch: batch, rng: &rng)
        if let cutoff = config.cutoff {
            // Hard cutoff: the graph is piecewise constant in x; keep every
            // pair ≥ 1e-2 away from the cutoff so FD steps never cross it.
            while (0..<batch).contains(where: { b in pairDistances(x, config: config, configuration: b).contains { abs($0 - cutoff) < 1e-2 } }) {
                x = randomPositions(config, batch: batch, rng: &rng)
            }
        }
        let t = (0..<batch).map { _ in rng.uniform() }
        let w = (0..<x.count).map { _ in rng.normal() }
        func loss(_ v: [Double]) -> Double { zip(w, v).map { $0 * $1 + 0.5 * $1 * $1 }.reduce(0, +) }

        let v = model.forward(positions: x, times: t, conditions: c)
        let gv = zip(w, v).map { $0 + $1 }
        model.zeroGradients()
        let gx = model.backward(outputGradient: gv)
        let gθ = model.gradients

        let θ = model.parameters
        let fdθ = finiteDifferenceGradient(θ, step: 1e-5) { p in
            model.parameters = p
            return loss(model.forward(positions: x, times: t, conditions: c))
        }
        model.parameters = θ
        let fdx = finiteDifferenceGradient(x, step: 1e-5) { y in loss(model.forward(positions: y, times: t, conditions: c)) }

        let scaleθ = gθ.map(abs).max()!, scalex = gx.map(abs).max()!
        XCTAssertGreaterThan(scaleθ, 1e-3, file: file, line: line)
        var worst = 0.0
        for (i, e) in model.layout.entries.enumerated() {
            _ = i
            for q in e.offset..<(e.offset + e.count) {
                let err = abs(gθ[q] - fdθ[q]) / max(abs(gθ[q]), abs(fdθ[q]), 1e-2 * scaleθ)
                worst = max(worst, err)
                if err > 1e-6 {
                    XCTFail("\(e.name)[\(q - e.offset)]: analytic \(gθ[q]) vs FD \(fdθ[q]) (rel \(err))", file: file, line: line)
                    return
                }
            }
        }
        for q in x.indices {
            let err = abs(gx[q] - fdx[q]) / max(abs(gx[q]), abs(fdx[q]), 1e-2 * scalex)
            worst = max(worst, err)
            XCTAssertLessThanOrEqual(err, 1e-6, "x[\(q)]: \(gx[q]) vs \(fdx[q])", file: file, line: line)
        }
    }

    func testFree2DSum() throws {
        try check(EGNNConfiguration(particles: 4, dimension: 2, hidden: 5, layers: 3, coordinateGain: 1), seed: 1)
    }

    func testFree3DMeanTanhTypesSinusoidal() throws {
        try check(EGNNConfiguration(particles: 5, dimension: 3, hidden: 6, layers: 3, aggregation: .mean,
                                    tanhRange: 2, typeIds: [0, 1, 2, 1, 0], timeEmbedding: .sinusoidal(frequencies: 2),
                                    coordinateGain: 1), seed: 2)
    }

    /// A conditioning scalar per configuration (ln β of a temperature-conditioned sampler) between
    /// the time features and the types.
    func testFree3DConditionedWithTypes() throws {
        var c = EGNNConfiguration(particles: 5, dimension: 3, hidden: 6, layers: 3, typeIds: [0, 1, 1, 2, 0],
                                  timeEmbedding: .sinusoidal(frequencies: 2), coordinateGain: 1)
        c.conditions = 1
        try check(c, seed: 21)
    }

    /// Pair classes on the edges (a molecule's bonded / 1–3 / 1–4 / other pairs).
    func testFree3DEdgeClasses() throws {
        var c = EGNNConfiguration(particles: 5, dimension: 3, hidden: 6, layers: 3, typeIds: [0, 1, 1, 2, 0], coordinateGain: 1)
        c.edgeClasses = [3, 0, 1, 2, 3,
                         0, 3, 0, 1, 2,
                         1, 0, 3, 0, 1,
                         2, 1, 0, 3, 0,
                         3, 2, 1, 0, 3]
        try check(c, seed: 23)
    }

    /// The signed volume of two chiral centres as node features: its x-derivative enters the
    /// input gradient (the probability flow's Jacobian needs it).
    func testFree3DChiralCentres() throws {
        var c = EGNNConfiguration(particles: 7, dimension: 3, hidden: 6, layers: 3, typeIds: [0, 1, 1, 2, 0, 3, 3], coordinateGain: 1)
        c.chiralCentres = [[0, 1, 2, 3], [4, 6, 5, 0]]
        try check(c, seed: 27)
    }

    /// One type per particle, as a molecule's atom identities (more type features than time ones).
    func testFree3DOneTypePerAtom() throws {
        try check(EGNNConfiguration(particles: 8, dimension: 3, hidden: 5, layers: 3, tanhRange: 3,
                                    typeIds: Array(0..<8), coordinateGain: 1), seed: 9)
    }

    func testPeriodic3DFullGraph() throws {
        try check(EGNNConfiguration(particles: 4, dimension: 3, hidden: 5, layers: 2, box: [2, 2.5, 3],
                                    coordinateGain: 1), seed: 3)
    }

    func testPeriodic3DCutoff() throws {
        try check(EGNNConfiguration(particles: 6, dimension: 3, hidden: 5, layers: 2, aggregation: .mean,
                                    box: [3, 3, 3], cutoff: 1.3, coordinateGain: 1), seed: 4)
    }

    func testPeriodic2DCutoffSum() throws {
        try check(EGNNConfiguration(particles: 6, dimension: 2, hidden: 4, layers: 2, box: [2.5, 3],
                                    cutoff: 1.2, coordinateGain: 1), seed: 5)
    }

    func testPeriodic3DCosineEnvelope() throws {
        try check(EGNNConfiguration(particles: 6, dimension: 3, hidden: 5, layers: 3, tanhRange: 2, box: [3, 3, 3],
                                    cutoff: 1.3, coordinateGain: 1, envelope: .cosine), seed: 7)
    }

    func testPeriodic2DCosineEnvelopeMean() throws {
        try check(EGNNConfiguration(particles: 6, dimension: 2, hidden: 4, layers: 2, aggregation: .mean,
                                    box: [2.5, 3], cutoff: 1.2, coordinateGain: 1, envelope: .cosine), seed: 8)
    }

    /// A pair crossing the cutoff: the hard graph makes the field jump, the cosine envelope
    /// keeps it continuous (the change is O(ε)).
    func testCosineEnvelopeIsContinuousAcrossTheCutoff() throws {
        for envelope in [CutoffEnvelope.hard, .cosine] {
            let config = EGNNConfiguration(particles: 3, dimension: 3, hidden: 6, layers: 3, box: [4, 4, 4], cutoff: 1.5,
                                           coordinateGain: 1, envelope: envelope)
            let model = try EGNN<Double>(configuration: config, seed: 9, threads: 1)
            var rng = TestRandom(seed: 9)
            for i in model.parameters.indices { model.parameters[i] += 0.1 * rng.normal() }
            func field(_ r: Double) -> [Double] {
                model.forward(positions: [1, 1, 1, 1 + r, 1, 1, 1.2, 2.1, 1.3], times: [0.5])
            }
            let jump = maxAbsDiff(field(1.5 - 1e-7), field(1.5 + 1e-7))
            if envelope == .hard { XCTAssertGreaterThan(jump, 1e-4, "the hard cutoff jumps") }
            else { XCTAssertLessThan(jump, 1e-6, "the cosine envelope is continuous") }
        }
    }

    /// The default (gain 0.001) initial model: gradients still exact.
    func testDefaultInitialisation() throws {
        try check(EGNNConfiguration(particles: 3, dimension: 3, hidden: 4, layers: 2), seed: 6)
    }
}
