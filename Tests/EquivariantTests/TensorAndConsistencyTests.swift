import Equivariant
import TestSupport
import XCTest

final class TensorTests: XCTestCase {
    func testOps() {
        let a = Tensor<Double>(shape: [2, 3], storage: [1, 2, 3, 4, 5, 6])
        let b = Tensor<Double>(shape: [3, 2], storage: [1, 0, 0, 1, 1, 1])
        XCTAssertEqual(a.matmul(b).storage, [4, 5, 10, 11])
        XCTAssertEqual(a.addingBias(Tensor(shape: [3], storage: [1, 1, 2])).storage, [2, 3, 5, 5, 6, 8])
        XCTAssertEqual(a.gatherRows([1, 1, 0]).storage, [4, 5, 6, 4, 5, 6, 1, 2, 3])
        let edges = Tensor<Double>(shape: [3, 2], storage: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(edges.segmentSum([0, 2, 0], segments: 3).storage, [6, 8, 0, 0, 3, 4])
        XCTAssertEqual(edges.segmentMean([0, 2, 0], segments: 3).storage, [3, 4, 0, 0, 3, 4])
        XCTAssertEqual((a + a).storage, [2, 4, 6, 8, 10, 12])
        XCTAssertEqual((a * a - a).storage, [0, 2, 6, 12, 20, 30])
        let s = Tensor<Double>(shape: [2], storage: [0, 1]).silu().storage
        XCTAssertEqual(s[0], 0)
        XCTAssertEqual(s[1], 1 / (1 + exp(-1.0)), accuracy: 1e-15)
    }

    /// The vectorised Float SiLU (Cephes exp) against Double libm.
    func testFloatSiLUAccuracy() {
        let z = stride(from: -90.0, through: 90.0, by: 0.0137).map { Float($0) }
        let f = Tensor<Float>(shape: [z.count], storage: z).silu().storage
        for (zi, fi) in zip(z, f) {
            let exact = Double(zi) / (1 + exp(-Double(zi)))
            XCTAssertEqual(Double(fi), exact, accuracy: 4e-7 * max(1, abs(exact)), "z=\(zi)")
        }
    }
}

final class ConsistencyTests: XCTestCase {
    /// Float and Double networks with the same parameters agree; two worker
    /// threads give the single-thread result.
    func testFloatMatchesDoubleAndThreadsAgree() throws {
        let config = EGNNConfiguration(particles: 7, dimension: 3, hidden: 16, layers: 3, box: [3, 3, 3],
                                       cutoff: 1.4, coordinateGain: 1)
        let dnet = try EGNN<Double>(configuration: config, seed: 5, threads: 1)
        let fnet = try EGNN<Float>(configuration: config, seed: 5, threads: 2)
        var rng = TestRandom(seed: 6)
        let batch = 5
        let x = randomPositions(config, batch: batch, rng: &rng)
        let t = (0..<batch).map { _ in rng.uniform() }
        let vd = dnet.forward(positions: x, times: t)
        let vf = fnet.forward(positions: x.map { Float($0) }, times: t.map { Float($0) })
        XCTAssertLessThan(maxAbsDiff(vd, vf.map { Double($0) }), 1e-4 * vd.map(abs).max()!)

        let g = (0..<x.count).map { _ in rng.normal() }
        dnet.zeroGradients()
        let gx1 = dnet.backward(outputGradient: g)
        let g1 = dnet.gradients
        dnet.threads = 2
        XCTAssertEqual(dnet.forward(positions: x, times: t), vd)
        dnet.zeroGradients()
        let gx2 = dnet.backward(outputGradient: g)
        XCTAssertEqual(gx1, gx2)
        XCTAssertLessThan(maxAbsDiff(g1, dnet.gradients), 1e-12 * g1.map(abs).max()!)
        // Accumulation: a second backward doubles the gradient.
        _ = dnet.backward(outputGradient: g)
        XCTAssertLessThan(maxAbsDiff(g1.map { 2 * $0 }, dnet.gradients), 1e-12 * g1.map(abs).max()!)
    }

    func testInvalidConfigurationsThrow() {
        XCTAssertThrowsError(try EGNN<Float>(configuration: EGNNConfiguration(particles: 4, dimension: 3, box: [2, 2, 2], cutoff: 1.5)))
        XCTAssertThrowsError(try EGNN<Float>(configuration: EGNNConfiguration(particles: 4, dimension: 3, typeIds: [0, 1])))
        XCTAssertThrowsError(try EGNN<Float>(configuration: EGNNConfiguration(particles: 4, dimension: 2, box: [2, 2, 2])))
    }
}
