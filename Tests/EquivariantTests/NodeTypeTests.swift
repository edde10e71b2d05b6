import Equivariant
import TestSupport
import XCTest

/// Particle types (one-hot node features, e.g. atom identity of a molecule): the network stays
/// equivariant under permutations that keep every particle's type and only under those.
final class NodeTypeTests: XCTestCase {
    func output(_ net: EGNN<Double>, _ x: [Double], _ t: [Double]) -> [Double] { net.forward(positions: x, times: t) }

    /// Swapping two particles of one type permutes the output; swapping two of different types
    /// does not (the types stay with the slots, so the swap changes the input); without types
    /// every swap permutes the output.
    func testOnlyTypePreservingPermutationsAreSymmetries() throws {
        let types = [0, 1, 2, 1, 0]
        var c = EGNNConfiguration(particles: 5, dimension: 3, hidden: 8, layers: 3, typeIds: types, coordinateGain: 1)
        var rng = TestRandom(seed: 51)
        let batch = 3
        let x = randomPositions(c, batch: batch, rng: &rng, scale: 1.5)
        let t = (0..<batch).map { _ in rng.uniform() }
        func swapped(_ v: [Double], _ i: Int, _ j: Int) -> [Double] {
            var perm = Array(0..<5)
            perm.swapAt(i, j)
            return permute(v, perm, n: 5, d: 3)
        }
        let typed = try EGNN<Double>(configuration: c, seed: 7, threads: 1)
        let v = output(typed, x, t)
        XCTAssertGreaterThan(v.map(abs).max()!, 1e-2, "output too small to test")
        for (i, j) in [(0, 4), (1, 3)] {  // same type
            XCTAssertLessThanOrEqual(maxAbsDiff(output(typed, swapped(x, i, j), t), swapped(v, i, j)), 1e-10)
        }
        for (i, j) in [(0, 1), (1, 2), (2, 4)] {  // different types
            let broken = maxAbsDiff(output(typed, swapped(x, i, j), t), swapped(v, i, j))
            XCTAssertGreaterThan(broken, 1e-3 * v.map(abs).max()!, "swap \(i)↔\(j) of types \(types[i]), \(types[j])")
        }
        c.typeIds = nil
        let plain = try EGNN<Double>(configuration: c, seed: 7, threads: 1)
        let w = output(plain, x, t)
        XCTAssertLessThanOrEqual(maxAbsDiff(output(plain, swapped(x, 0, 1), t), swapped(w, 0, 1)), 1e-10)
    }

    /// The types add `typeCount` rows to the embedding and nothing else: a typed network whose
    /// type rows are zero computes the untyped network's field.
    func testTypesOnlyAddEmbeddingRows() throws {
        let plainConfig = EGNNConfiguration(particles: 6, dimension: 3, hidden: 8, layers: 2, coordinateGain: 1)
        var typedConfig = plainConfig
        typedConfig.typeIds = [0, 1, 2, 3, 4, 5]
        let plain = try EGNN<Double>(configuration: plainConfig, seed: 3, threads: 1)
        let typed = try EGNN<Double>(configuration: typedConfig, seed: 3, threads: 1)
        XCTAssertEqual(typed.parameterCount - plain.parameterCount, 6 * 8)
        // Embedding weight [features, H]: the time row first, then one row per type.
        let h = 8, embedding = typed.layout.embeddingWeight
        var parameters = [Double](repeating: 0, count: typed.parameterCount)
        parameters[embedding..<(embedding + h)] = plain.parameters[plain.layout.embeddingWeight..<(plain.layout.embeddingWeight + h)]
        let tail = plain.layout.embeddingWeight + h
        parameters[(embedding + 7 * h)...] = plain.parameters[tail...]
        typed.parameters = parameters
        var rng = TestRandom(seed: 4)
        let x = randomPositions(plainConfig, batch: 2, rng: &rng)
        let t = [0.3, 0.8]
        XCTAssertEqual(output(typed, x, t), output(plain, x, t))
    }

    /// The Float engine (SIMD micro-kernels) with alanine dipeptide's 22 atom types agrees with
    /// the Double engine, forward and backward.
    func testFloatMatchesDoubleWithAtomTypes() throws {
        let config = EGNNConfiguration(particles: 22, dimension: 3, hidden: 32, layers: 3, typeIds: Array(0..<22),
                                       coordinateGain: 1)
        let dnet = try EGNN<Double>(configuration: config, seed: 8, threads: 1)
        let fnet = try EGNN<Float>(configuration: config, seed: 8, threads: 2)
        var rng = TestRandom(seed: 9)
        let batch = 4
        let x = randomPositions(config, batch: batch, rng: &rng, scale: 3)
        let t = (0..<batch).map { _ in rng.uniform() }
        let g = (0..<x.count).map { _ in rng.normal() }
        let vd = dnet.forward(positions: x, times: t)
        let vf = fnet.forward(positions: x.map { Float($0) }, times: t.map { Float($0) })
        XCTAssertLessThan(maxAbsDiff(vd, vf.map { Double($0) }), 1e-4 * vd.map(abs).max()!)
        dnet.zeroGradients(); fnet.zeroGradients()
        let gxd = dnet.backward(outputGradient: g)
        let gxf = fnet.backward(outputGradient: g.map { Float($0) })
        XCTAssertLessThan(maxAbsDiff(gxd, gxf.map { Double($0) }), 1e-3 * gxd.map(abs).max()!)
        XCTAssertLessThan(maxAbsDiff(dnet.gradients, fnet.gradients.map { Double($0) }), 1e-3 * dnet.gradients.map(abs).max()!)
    }
}
