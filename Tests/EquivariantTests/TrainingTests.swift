import Equivariant
import TestSupport
import XCTest

final class TrainingTests: XCTestCase {
    /// Fit the score of an isotropic Gaussian in the zero-CoM subspace,
    /// s(x) = −(x − x̄), on 2D 4-particle clusters (DW-4 size) with Adam.
    func testFitsGaussianScore() throws {
        let config = EGNNConfiguration(particles: 4, dimension: 2, hidden: 16, layers: 2, aggregation: .mean)
        let net = try EGNN<Float>(configuration: config, seed: 7, threads: 1)
        var adam = Adam<Float>(parameterCount: net.parameterCount, learningRate: 3e-3, clipNorm: 10)
        var rng = TestRandom(seed: 8)
        let batch = 64, n = 4, d = 2
        func loss(_ x: [Float], _ t: [Float]) -> (Float, [Float]) {
            let v = net.forward(positions: x, times: t)
            var target = x.map { -$0 }
            for b in 0..<batch {
                for k in 0..<d {
                    let m = (0..<n).map { target[(b * n + $0) * d + k] }.reduce(0, +) / Float(n)
                    for i in 0..<n { target[(b * n + i) * d + k] -= m }
                }
            }
            let count = Float(v.count)
            let l = zip(v, target).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / count
            return (l, zip(v, target).map { 2 * ($0 - $1) / count })
        }
        var evalRng = TestRandom(seed: 9)
        let xe = (0..<(batch * n * d)).map { _ in Float(evalRng.normal()) }
        let te = [Float](repeating: 0.5, count: batch)
        let initial = loss(xe, te).0
        for _ in 0..<300 {
            let x = (0..<(batch * n * d)).map { _ in Float(rng.normal()) }
            let t = (0..<batch).map { _ in Float(rng.uniform()) }
            let (_, g) = loss(x, t)
            net.zeroGradients()
            net.backward(outputGradient: g)
            adam.step(parameters: &net.parameters, gradients: net.gradients)
        }
        let final = loss(xe, te).0
        XCTAssertGreaterThan(initial, 0.5)
        XCTAssertLessThan(final, 0.05 * initial, "loss \(initial) → \(final)")
    }
}
