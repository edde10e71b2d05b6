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

/// Edge classes (a molecule's bond-graph pair classes) on the EGNN's edges.
final class EdgeClassTests: XCTestCase {
    /// A chain 0–1–2–3–4–5: classes by bonds apart.
    func chainClasses(_ n: Int) -> [Int] {
        (0..<(n * n)).map { q in
            let h = abs(q / n - q % n)
            return h >= 1 && h <= 3 ? h - 1 : 3
        }
    }

    /// f(π(Qx + s)) = π Q f(x) when the pair classes are relabelled with the atoms; and the classes
    /// matter: the same positions with the classes of another graph give another field.
    func testEdgeClassesKeepSymmetriesAndChangeTheField() throws {
        let n = 6
        var c = EGNNConfiguration(particles: n, dimension: 3, hidden: 8, layers: 3, tanhRange: 3, coordinateGain: 1)
        c.edgeClasses = chainClasses(n)
        let net = try EGNN<Double>(configuration: c, seed: 4, threads: 1)
        var rng = TestRandom(seed: 6)
        let x = randomPositions(c, batch: 2, rng: &rng, scale: 1.5)
        let t = [0.2, 0.7]
        let v = net.forward(positions: x, times: t)
        XCTAssertGreaterThan(v.map(abs).max()!, 1e-2)
        for reflect in [false, true] {
            let q = randomOrthogonal(3, reflect: reflect, rng: &rng)
            let perm = randomPermutation(n, rng: &rng)
            var y = rotate(x, q)
            for i in stride(from: 0, to: y.count, by: 3) { y[i] -= 1.5; y[i + 2] += 0.5 }
            y = permute(y, perm, n: n, d: 3)
            var c2 = c
            c2.edgeClasses = (0..<(n * n)).map { c.edgeClasses![perm[$0 / n] * n + perm[$0 % n]] }
            let relabelled = try EGNN<Double>(configuration: c2, threads: 1)
            relabelled.parameters = net.parameters
            XCTAssertLessThanOrEqual(maxAbsDiff(relabelled.forward(positions: y, times: t), permute(rotate(v, q), perm, n: n, d: 3)), 1e-10)
        }
        var star = c
        star.edgeClasses = (0..<(n * n)).map { q in q / n == q % n ? 3 : (q / n == 0 || q % n == 0 ? 0 : 1) }
        let other = try EGNN<Double>(configuration: star, threads: 1)
        other.parameters = net.parameters
        XCTAssertGreaterThan(maxAbsDiff(other.forward(positions: x, times: t), v), 1e-3)
    }

    func testAsymmetricClassesAreRefused() {
        var c = EGNNConfiguration(particles: 3, dimension: 3)
        c.edgeClasses = [3, 0, 1, 1, 3, 0, 1, 0, 3]
        XCTAssertThrowsError(try c.validate())
    }
}

/// Chiral centres (a molecule's stereocentres): the network keeps rotations, translations and
/// permutations that relabel the centres, but tells a configuration from its mirror image.
final class ChiralityTests: XCTestCase {
    func configuration() -> EGNNConfiguration {
        var c = EGNNConfiguration(particles: 6, dimension: 3, hidden: 8, layers: 3, tanhRange: 3,
                                  typeIds: [0, 1, 2, 3, 1, 4], coordinateGain: 1)
        c.chiralCentres = [[0, 1, 2, 3], [2, 5, 4, 0]]
        return c
    }

    /// f(π(Qx + s)) = π Q f(x) for proper rotations Q with the centres relabelled by π; for an
    /// improper Q (a reflection) the field differs, unless the feature's embedding row is zero,
    /// which gives back a reflection-equivariant network.
    func testRotationsKeptReflectionsTold() throws {
        let c = configuration()
        let net = try EGNN<Double>(configuration: c, seed: 11, threads: 1)
        var rng = TestRandom(seed: 12)
        for i in net.parameters.indices { net.parameters[i] += 0.05 * rng.normal() }
        let x = randomPositions(c, batch: 3, rng: &rng, scale: 1.5)
        let t = [0.1, 0.5, 0.9]
        let v = net.forward(positions: x, times: t)
        func transformed(_ net: EGNN<Double>, reflect: Bool, rng: inout TestRandom) throws -> (Double, Double) {
            let q = randomOrthogonal(3, reflect: reflect, rng: &rng)
            let perm = [0, 2, 1, 3, 5, 4]
            var y = rotate(x, q)
            for i in stride(from: 0, to: y.count, by: 3) { y[i] += 0.7; y[i + 1] -= 1.1 }
            y = permute(y, perm, n: 6, d: 3)
            // permute(y, perm)[i] = y[perm[i]]: atom perm[i] is now atom i, so relabel types and centres.
            var inverse = [Int](repeating: 0, count: 6)
            for (i, p) in perm.enumerated() { inverse[p] = i }
            var c2 = c
            c2.typeIds = (0..<6).map { c.typeIds![perm[$0]] }
            c2.chiralCentres = c.chiralCentres!.map { $0.map { inverse[$0] } }
            let relabelled = try EGNN<Double>(configuration: c2, threads: 1)
            relabelled.parameters = net.parameters
            let expected = permute(rotate(net.forward(positions: x, times: t), q), perm, n: 6, d: 3)
            let got = relabelled.forward(positions: y, times: t)
            return (maxAbsDiff(got, expected), expected.map(abs).max()!)
        }
        XCTAssertGreaterThan(v.map(abs).max()!, 1e-2)
        let (proper, scale) = try transformed(net, reflect: false, rng: &rng)
        XCTAssertLessThanOrEqual(proper, 1e-10 * max(1, scale))
        let (improper, _) = try transformed(net, reflect: true, rng: &rng)
        XCTAssertGreaterThan(improper, 1e-4, "a reflection changes the centres' signed volumes, so the field")
        let row = net.layout.embeddingWeight + (c.nodeFeatureCount - 1) * c.hidden
        for k in 0..<c.hidden { net.parameters[row + k] = 0 }
        let (zeroed, _) = try transformed(net, reflect: true, rng: &rng)
        XCTAssertLessThanOrEqual(zeroed, 1e-10, "without the chirality row the network is E(3)-equivariant again")
    }

    func testCentresAreValidated() {
        var c = EGNNConfiguration(particles: 4, dimension: 3)
        c.chiralCentres = [[0, 1, 2, 2]]
        XCTAssertThrowsError(try c.validate())
        c.chiralCentres = [[0, 1, 2, 3]]
        XCTAssertNoThrow(try c.validate())
        var flat = EGNNConfiguration(particles: 4, dimension: 2)
        flat.chiralCentres = [[0, 1, 2, 3]]
        XCTAssertThrowsError(try flat.validate())
    }
}
