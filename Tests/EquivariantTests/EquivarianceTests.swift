import Equivariant
import TestSupport
import XCTest

/// Symmetries of the vector field, exact in Double (≤ 1e-10).
final class EquivarianceTests: XCTestCase {
    func model(_ c: EGNNConfiguration, seed: UInt64) throws -> EGNN<Double> {
        // Gain 1 so the output is O(1), not O(1e-3): a real test of exactness.
        var c = c
        c.coordinateGain = 1
        return try EGNN<Double>(configuration: c, seed: seed, threads: 1)
    }

    /// f(π(Qx + t)) = π(Q f(x)) for orthogonal Q (rotations and reflections).
    func checkEuclidean(dimension d: Int, types: [Int]?, seed: UInt64) throws {
        var rng = TestRandom(seed: seed)
        let n = types?.count ?? 5
        let config = EGNNConfiguration(particles: n, dimension: d, hidden: 8, layers: 3, tanhRange: 3, typeIds: types)
        let net = try model(config, seed: seed)
        let batch = 3
        let x = randomPositions(config, batch: batch, rng: &rng, scale: 1.5)
        let t = (0..<batch).map { _ in rng.uniform() }
        let v = net.forward(positions: x, times: t)
        XCTAssertGreaterThan(v.map(abs).max()!, 1e-2, "output too small to test")
        // Zero centre of mass.
        for b in 0..<batch {
            for k in 0..<d {
                let s = (0..<n).map { v[(b * n + $0) * d + k] }.reduce(0, +)
                XCTAssertLessThan(abs(s), 1e-12)
            }
        }
        for reflect in [false, true] {
            let q = randomOrthogonal(d, reflect: reflect, rng: &rng)
            let shift = (0..<d).map { _ in 3 * rng.normal() }
            // Permute within a type only (types are part of the input).
            var perm = randomPermutation(n, rng: &rng)
            var permutedNet = net
            if let types {
                let permutedTypes = perm.map { types[$0] }
                var c2 = net.configuration
                c2.typeIds = permutedTypes
                permutedNet = try EGNN<Double>(configuration: c2, threads: 1)
                permutedNet.parameters = net.parameters
            } else {
                perm = randomPermutation(n, rng: &rng)
            }
            var y = rotate(x, q)
            for p in stride(from: 0, to: y.count, by: d) { for k in 0..<d { y[p + k] += shift[k] } }
            y = permute(y, perm, n: n, d: d)
            let vy = permutedNet.forward(positions: y, times: t)
            let expected = permute(rotate(v, q), perm, n: n, d: d)
            XCTAssertLessThanOrEqual(maxAbsDiff(vy, expected), 1e-10, "d=\(d) reflect=\(reflect)")
        }
    }

    func testEuclidean2D() throws { try checkEuclidean(dimension: 2, types: nil, seed: 11) }
    func testEuclidean3D() throws { try checkEuclidean(dimension: 3, types: nil, seed: 12) }
    func testEuclidean3DWithTypes() throws { try checkEuclidean(dimension: 3, types: [0, 1, 1, 2, 0, 1], seed: 13) }
    /// Every particle its own type (a molecule's atom identities): rotations, reflections and
    /// translations stay exact.
    func testEuclidean3DOneTypePerAtom() throws { try checkEuclidean(dimension: 3, types: Array(0..<7), seed: 14) }

    /// Periodic: translation by any vector, with or without wrapping, leaves
    /// the output unchanged; permutations permute it.
    func checkPeriodic(_ config: EGNNConfiguration, seed: UInt64) throws {
        var rng = TestRandom(seed: seed)
        let net = try model(config, seed: seed)
        let n = config.particles, d = config.dimension, box = config.box!
        let batch = 2
        let x = randomPositions(config, batch: batch, rng: &rng)
        let t = (0..<batch).map { _ in rng.uniform() }
        let v = net.forward(positions: x, times: t)
        XCTAssertGreaterThan(v.map(abs).max()!, 1e-2)
        let space = Space(particles: 1, box: box)
        for _ in 0..<3 {
            let shift = (0..<d).map { k in (rng.uniform() - 0.5) * 7 * box[k] }
            let delta = (0..<x.count).map { shift[$0 % d] }
            var wrapped = zip(x, delta).map(+)
            space.wrap(&wrapped)
            for q in wrapped.indices { XCTAssert(wrapped[q] >= 0 && wrapped[q] < box[q % d]) }
            let unwrapped = zip(x, delta).map(+)
            XCTAssertLessThanOrEqual(maxAbsDiff(net.forward(positions: wrapped, times: t), v), 1e-10)
            XCTAssertLessThanOrEqual(maxAbsDiff(net.forward(positions: unwrapped, times: t), v), 1e-10)
        }
        let perm = randomPermutation(n, rng: &rng)
        let vp = net.forward(positions: permute(x, perm, n: n, d: d), times: t)
        XCTAssertLessThanOrEqual(maxAbsDiff(vp, permute(v, perm, n: n, d: d)), 1e-10)
    }

    func testPeriodic3D() throws {
        try checkPeriodic(EGNNConfiguration(particles: 6, dimension: 3, hidden: 8, layers: 3, box: [2, 3, 2.5]), seed: 21)
    }

    func testPeriodic2DCutoff() throws {
        try checkPeriodic(EGNNConfiguration(particles: 8, dimension: 2, hidden: 8, layers: 3, aggregation: .mean,
                                            box: [3, 3], cutoff: 1.4), seed: 22)
    }

    /// Minimum image equals the shortest of the 3^d images.
    func testMinimumImageMatchesBruteForce() {
        var rng = TestRandom(seed: 31)
        for d in [2, 3] {
            let edges = (0..<d).map { _ in 1 + 3 * rng.uniform() }
            let box = Space(particles: 1, box: edges)
            for _ in 0..<500 {
                let a = (0..<d).map { k in (rng.uniform() * 3 - 1) * edges[k] }
                let b = (0..<d).map { k in (rng.uniform() * 3 - 1) * edges[k] }
                let mi = box.displacement(a, b)
                // Brute force over images of the wrapped difference.
                var wa = a, wb = b
                box.wrap(&wa); box.wrap(&wb)
                var best = Double.infinity, bestV: [Double] = []
                for code in 0..<Int(pow(3.0, Double(d))) {
                    var c = code
                    var v = [Double](repeating: 0, count: d)
                    for k in 0..<d { v[k] = wa[k] - wb[k] + Double(c % 3 - 1) * edges[k]; c /= 3 }
                    let r = v.map { $0 * $0 }.reduce(0, +)
                    if r < best { best = r; bestV = v }
                }
                XCTAssertEqual(mi.map { $0 * $0 }.reduce(0, +), best, accuracy: 1e-12)
                XCTAssertLessThanOrEqual(maxAbsDiff(mi, bestV), 1e-12)
            }
        }
        XCTAssertEqual(Space.free(particles: 1, dimension: 3).displacement([1.0, 2, 3], [0.5, 0, 4]), [0.5, 2, -1])
    }
}
