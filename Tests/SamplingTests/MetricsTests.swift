import Equivariant
import Foundation
import Sampling
import TestSupport
import XCTest

/// Metrics against hand-computed values on tiny inputs.
final class MetricsTests: XCTestCase {
    func testEnergyW2OfKnownSamples() {
        // Sorted pairs (0,1),(1,2),(5,3): W2² = (1 + 1 + 4)/3 = 2.
        let (w2, sq) = Metrics.wasserstein1D([5, 0, 1], [3, 1, 2])
        assertClose(sq, 2, absolute: 1e-12)
        assertClose(w2, 2.0.squareRoot(), absolute: 1e-12)
        // A shift by c: W2 = c, also with unequal counts.
        assertClose(Metrics.wasserstein1D([0, 1, 2, 3], [0.5, 2.5]).squared, 0.25 + 0, absolute: 1e-12,
                    "quantiles [0,1]→0.5, [2,3]→2.5")
        assertClose(Metrics.wasserstein1D([1, 2, 3], [11, 12, 13]).w2, 10, absolute: 1e-12)
    }

    func testAssignmentMatchesBruteForce() {
        var rng = TestRandom(seed: 3)
        for size in 1...6 {
            let cost = (0..<(size * size)).map { _ in rng.uniform() }
            let match = Metrics.assignment(cost: cost, rows: size, columns: size)
            XCTAssertEqual(Set(match).count, size)
            let found = (0..<size).reduce(0) { $0 + cost[$1 * size + match[$1]] }
            var best = Double.infinity
            func permute(_ prefix: [Int], _ rest: Set<Int>) {
                if rest.isEmpty {
                    best = min(best, prefix.enumerated().reduce(0) { $0 + cost[$1.offset * size + $1.element] })
                    return
                }
                for r in rest { permute(prefix + [r], rest.subtracting([r])) }
            }
            permute([], Set(0..<size))
            assertClose(found, best, absolute: 1e-12, "size \(size)")
        }
        // A hand example: [[4,1,3],[2,0,5],[3,2,2]] → 1 + 2 + 2 = 5.
        let m = Metrics.assignment(cost: [4, 1, 3, 2, 0, 5, 3, 2, 2], rows: 3, columns: 3)
        XCTAssertEqual(m, [1, 0, 2])
        // Rectangular: 2 rows, 3 columns.
        XCTAssertEqual(Metrics.assignment(cost: [5, 1, 9, 1, 5, 9], rows: 2, columns: 3), [1, 0])
    }

    func testKabschAndPermutationAlignRotatedPermutedCopyToZero() {
        var rng = TestRandom(seed: 5)
        let n = 5, d = 3
        let x = (0..<(n * d)).map { _ in 2 * rng.normal() }
        // Big rotation (no permutation): Kabsch alone.
        let angle = 1.1
        let c = cos(angle), s = sin(angle)
        func rotate(_ p: [Double], mirror: Bool) -> [Double] {
            var out = p
            for i in 0..<n {
                let a = p[i * d], b = p[i * d + 1]
                out[i * d] = c * a - s * b + 0.3
                out[i * d + 1] = s * a + c * b - 0.7
                out[i * d + 2] = (mirror ? -1 : 1) * p[i * d + 2] + 1.5
            }
            return out
        }
        for mirror in [false, true] {
            var a = x, b = rotate(x, mirror: mirror)
            Space.removeCentreOfMass(&a, particles: n, dimension: d)
            Space.removeCentreOfMass(&b, particles: n, dimension: d)
            let distance = a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
                Metrics.kabschSquaredDistance(pa.baseAddress!, pb.baseAddress!, particles: n, dimension: d) } }
            assertClose(distance, 0, absolute: 1e-9)
        }
        // Small rotation + a permutation + translation: Hungarian then Kabsch → 0.
        let small = 0.05
        var y = x
        for i in 0..<n {
            let a = x[i * d], b = x[i * d + 1]
            y[i * d] = cos(small) * a - sin(small) * b + 3
            y[i * d + 1] = sin(small) * a + cos(small) * b
        }
        let permutation = [3, 0, 4, 1, 2]
        var permuted = y
        for i in 0..<n { for k in 0..<d { permuted[permutation[i] * d + k] = y[i * d + k] } }
        assertClose(Metrics.alignedSquaredDistance(x, permuted, particles: n, dimension: d), 0, absolute: 1e-9)
        // And the set-level W2 of a set against its aligned copies is 0.
        XCTAssertEqual(Metrics.coordinateW2(x + y, permuted + x, particles: n, dimension: d, aligned: true), 0,
                       accuracy: 1e-5)
        // Unaligned W2 of two 1-particle-per-set copies shifted: centring removes the shift.
        XCTAssertEqual(Metrics.coordinateW2(x, x.map { $0 + 1 }, particles: n, dimension: d, aligned: false), 0,
                       accuracy: 1e-9)
    }

    func testHistogramTV() {
        let a = [0.1, 0.2, 0.3, 0.9]
        XCTAssertEqual(Metrics.histogramTV(a, a), 0)
        XCTAssertEqual(Metrics.histogramTV([0, 0.1, 0.2], [5, 5.5, 6]), 1, accuracy: 1e-12)
        // Two particles in 1-D: one distance per configuration.
        XCTAssertEqual(Metrics.pairDistances([0, 3, 1, -1], particles: 2, dimension: 1), [3, 2])
    }

    func testImportanceWeightSummaries() {
        let equal = ImportanceWeights(logWeights: [2, 2, 2, 2])
        assertClose(equal.effectiveSampleSize, 4, absolute: 1e-12)
        assertClose(equal.logZ, 2, absolute: 1e-12)
        XCTAssertEqual(equal.logZError(), 0, accuracy: 1e-12)
        // Weights 1 and 3: ESS = 16/10; log Ẑ = log 2; mean of f weighted.
        let w = ImportanceWeights(logWeights: [0, log(3)])
        assertClose(w.effectiveSampleSize, 1.6, absolute: 1e-12)
        assertClose(w.logZ, log(2), absolute: 1e-12)
        assertClose(w.reweightedMean([10, 20]), 17.5, absolute: 1e-12)
        var rng = SeededGenerator(seed: 1)
        let draws = w.resample(count: 40_000, rng: &rng)
        let fraction = Double(draws.filter { $0 == 1 }.count) / 40_000
        assertClose(fraction, 0.75, absolute: 0.01)
    }
}
