import Equivariant
import TestSupport
import XCTest

/// Per-configuration conditioning scalars (ln β of a temperature-conditioned sampler): where they
/// enter the node features, that they change the field, and that they keep its symmetries.
final class ConditioningTests: XCTestCase {
    let types = [0, 1, 1, 0, 2]

    func configuration(conditions: Int?) -> EGNNConfiguration {
        var c = EGNNConfiguration(particles: 5, dimension: 3, hidden: 8, layers: 3, tanhRange: 3, typeIds: types,
                                  timeEmbedding: .sinusoidal(frequencies: 2), coordinateGain: 1)
        c.conditions = conditions
        return c
    }

    /// A conditioned network whose condition row of the embedding is zero is the unconditioned
    /// network with the same other weights, whatever the condition: the condition sits right after
    /// the time features and shifts the type one-hot by one. With that row set, condition 0 still
    /// gives the unconditioned field and any other value a different one.
    func testConditionIsOneFeatureBetweenTimeAndTypes() throws {
        let plain = try EGNN<Double>(configuration: configuration(conditions: nil), seed: 3, threads: 1)
        let conditioned = try EGNN<Double>(configuration: configuration(conditions: 1), seed: 3, threads: 1)
        let h = 8, tf = 4, rows = plain.configuration.nodeFeatureCount
        XCTAssertEqual(conditioned.configuration.nodeFeatureCount, rows + 1)
        let w0 = plain.layout.embeddingWeight, w1 = conditioned.layout.embeddingWeight
        var p = conditioned.parameters
        for r in 0..<rows {
            let target = r < tf ? r : r + 1
            for k in 0..<h { p[w1 + target * h + k] = plain.parameters[w0 + r * h + k] }
        }
        for k in 0..<h { p[w1 + tf * h + k] = 0 }
        // Everything after the embedding weights has the same layout.
        let tail0 = w0 + rows * h, tail1 = w1 + (rows + 1) * h
        XCTAssertEqual(plain.parameterCount - tail0, conditioned.parameterCount - tail1)
        for i in 0..<(plain.parameterCount - tail0) { p[tail1 + i] = plain.parameters[tail0 + i] }
        conditioned.parameters = p

        var rng = TestRandom(seed: 5)
        let x = randomPositions(plain.configuration, batch: 2, rng: &rng, scale: 1.5)
        let t = [0.3, 0.8]
        let reference = plain.forward(positions: x, times: t)
        XCTAssertGreaterThan(reference.map(abs).max()!, 1e-2)
        XCTAssertLessThanOrEqual(maxAbsDiff(conditioned.forward(positions: x, times: t, conditions: [-1.2, 0.7]), reference), 1e-12)
        for k in 0..<h { conditioned.parameters[w1 + tf * h + k] = rng.normal() }
        XCTAssertLessThanOrEqual(maxAbsDiff(conditioned.forward(positions: x, times: t, conditions: [0, 0]), reference), 1e-12)
        XCTAssertLessThanOrEqual(maxAbsDiff(conditioned.forward(positions: x, times: t), reference), 1e-12,
                                 "no conditions given: zeros")
        XCTAssertGreaterThan(maxAbsDiff(conditioned.forward(positions: x, times: t, conditions: [-1.2, 0.7]), reference), 1e-3)
    }

    /// f(Qx + s) = Q f(x) with the condition held fixed (it is an invariant scalar input).
    func testConditionedFieldIsEquivariant() throws {
        var c = EGNNConfiguration(particles: 6, dimension: 3, hidden: 8, layers: 3, tanhRange: 3, coordinateGain: 1)
        c.conditions = 1
        let net = try EGNN<Double>(configuration: c, seed: 8, threads: 1)
        var rng = TestRandom(seed: 9)
        let x = randomPositions(c, batch: 3, rng: &rng, scale: 1.5)
        let t = [0.1, 0.5, 0.9], lb = [0, -0.8, -1.6]
        let v = net.forward(positions: x, times: t, conditions: lb)
        for reflect in [false, true] {
            let q = randomOrthogonal(3, reflect: reflect, rng: &rng)
            var y = rotate(x, q)
            for i in stride(from: 0, to: y.count, by: 3) { y[i] += 2; y[i + 1] -= 1 }
            let perm = randomPermutation(6, rng: &rng)
            y = permute(y, perm, n: 6, d: 3)
            let expected = permute(rotate(v, q), perm, n: 6, d: 3)
            XCTAssertLessThanOrEqual(maxAbsDiff(net.forward(positions: y, times: t, conditions: lb), expected), 1e-10)
        }
    }
}
