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
        // Random rectangular problems, and rows that all prefer the same column (the row
        // reduction matches only the first; the others need augmenting paths).
        for (rows, columns) in [(2, 5), (3, 4), (4, 6), (5, 5)] {
            for shared in [false, true] {
                let cost = (0..<(rows * columns)).map { k in
                    shared && k % columns == 0 ? -1 + 0.01 * rng.uniform() : rng.uniform()
                }
                let match = Metrics.assignment(cost: cost, rows: rows, columns: columns)
                XCTAssertEqual(Set(match).count, rows)
                let found = (0..<rows).reduce(0) { $0 + cost[$1 * columns + match[$1]] }
                var best = Double.infinity
                func extend(_ prefix: [Int]) {
                    if prefix.count == rows {
                        best = min(best, prefix.enumerated().reduce(0) { $0 + cost[$1.offset * columns + $1.element] })
                        return
                    }
                    for c in 0..<columns where !prefix.contains(c) { extend(prefix + [c]) }
                }
                extend([])
                assertClose(found, best, absolute: 1e-12, "\(rows)×\(columns), shared minimum \(shared)")
            }
        }
        // Ties everywhere: still a permutation.
        XCTAssertEqual(Set(Metrics.assignment(cost: [Double](repeating: 1, count: 16), rows: 4, columns: 4)).count, 4)
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

    // MARK: - Rotation-invariant aligned distance

    /// n points in a ball, no two closer than 0.9 (a Lennard-Jones-like cluster, σ ≈ 1).
    private func cluster(_ n: Int, dimension d: Int = 3, rng: inout TestRandom) -> [Double] {
        let radius = 0.62 * pow(Double(n), 1 / Double(d)) + 0.3
        var points: [[Double]] = []
        while points.count < n {
            let p = (0..<d).map { _ in (2 * rng.uniform() - 1) * radius }
            if p.reduce(0, { $0 + $1 * $1 }) > radius * radius { continue }
            func squaredDistance(_ q: [Double]) -> Double {
                var s = 0.0
                for k in 0..<d { s += (p[k] - q[k]) * (p[k] - q[k]) }
                return s
            }
            if points.contains(where: { squaredDistance($0) < 0.81 }) { continue }
            points.append(p)
        }
        return points.flatMap { $0 }
    }

    /// A uniformly random orthogonal 3×3 matrix (from a random unit quaternion), times −1 when
    /// `reflect` (a rotation-reflection).
    private func randomOrthogonal(_ rng: inout TestRandom, reflect: Bool) -> [Double] {
        var q = (0..<4).map { _ in rng.normal() }
        let norm = q.reduce(0) { $0 + $1 * $1 }.squareRoot()
        q = q.map { $0 / norm }
        let w: Double = q[0], x: Double = q[1], y: Double = q[2], z: Double = q[3]
        var r = [Double](repeating: 0, count: 9)
        r[0] = 1 - 2 * (y * y + z * z); r[1] = 2 * (x * y - w * z); r[2] = 2 * (x * z + w * y)
        r[3] = 2 * (x * y + w * z); r[4] = 1 - 2 * (x * x + z * z); r[5] = 2 * (y * z - w * x)
        r[6] = 2 * (x * z - w * y); r[7] = 2 * (y * z + w * x); r[8] = 1 - 2 * (x * x + y * y)
        return reflect ? r.map { -$0 } : r
    }

    /// Q x_{π(i)} + t for every particle: a rotated (or rotated-reflected), relabelled, moved copy.
    private func transform(_ x: [Double], particles n: Int, rng: inout TestRandom, reflect: Bool) -> [Double] {
        let q = randomOrthogonal(&rng, reflect: reflect)
        var order = Array(0..<n)
        for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        let shift = (0..<3).map { _ in 5 * rng.normal() }
        var out = [Double](repeating: 0, count: n * 3)
        for i in 0..<n { for a in 0..<3 {
            var s = shift[a]
            for b in 0..<3 { s += q[a * 3 + b] * x[order[i] * 3 + b] }
            out[i * 3 + a] = s
        } }
        return out
    }

    /// Configuration c of a set [count, n, 3].
    private func configuration(_ set: [Double], _ c: Int, particles n: Int) -> [Double] {
        Array(set[(c * n * 3)..<((c + 1) * n * 3)])
    }

    /// The exact min over all permutations of Kabsch (brute force, small n).
    private func bruteForceAligned(_ x: [Double], _ y: [Double], particles n: Int, dimension d: Int) -> Double {
        var a = x, b = y
        Space.removeCentreOfMass(&a, particles: n, dimension: d)
        Space.removeCentreOfMass(&b, particles: n, dimension: d)
        var best = Double.infinity
        func extend(_ prefix: [Int]) {
            if prefix.count == n {
                let permuted = prefix.flatMap { Array(b[($0 * d)..<(($0 + 1) * d)]) }
                best = min(best, a.withUnsafeBufferPointer { pa in permuted.withUnsafeBufferPointer { pb in
                    Metrics.kabschSquaredDistance(pa.baseAddress!, pb.baseAddress!, particles: n, dimension: d) } })
                return
            }
            for k in 0..<n where !prefix.contains(k) { extend(prefix + [k]) }
        }
        extend([])
        return best
    }

    func testInvariantAlignmentOfTransformedCopyIsZero() {
        var rng = TestRandom(seed: 17)
        // 13 particles: the search; 4 particles and a flat 5-particle set: every permutation.
        for (n, trials) in [(13, 12), (4, 4), (5, 4)] {
            for trial in 0..<trials {
                var x = cluster(n, rng: &rng)
                if n == 5 { for i in 0..<n { x[i * 3 + 2] = 0 } }  // planar: a singular Kabsch matrix
                let y = transform(x, particles: n, rng: &rng, reflect: trial % 2 == 1)
                let scale = x.reduce(0) { $0 + $1 * $1 }
                assertClose(Metrics.alignedSquaredDistance(x, y, particles: n, dimension: 3), 0, absolute: 1e-10 * scale,
                            "n = \(n), trial \(trial)")
            }
        }
        // Sets: against its own transformed copy, shuffled, the aligned W2 is 0; the old
        // convention is not (the copy is turned).
        let n = 13, count = 6
        var set: [Double] = [], copy: [Double] = []
        for _ in 0..<count { set += cluster(n, rng: &rng) }
        for c in (0..<count).reversed() {
            copy += transform(configuration(set, c, particles: n), particles: n, rng: &rng, reflect: c % 2 == 0)
        }
        XCTAssertEqual(Metrics.coordinateW2(set, copy, particles: n, dimension: 3, aligned: true), 0, accuracy: 1e-6)
        XCTAssertGreaterThan(Metrics.coordinateW2(set, copy, particles: n, dimension: 3, aligned: true,
                                                  alignment: .hungarianThenKabsch), 0.5)
    }

    func testInvariantAlignedW2IgnoresOrientationOfEitherSet() {
        var rng = TestRandom(seed: 23)
        for n in [13, 8] {
            let count = 8
            var a: [Double] = [], b: [Double] = [], a2: [Double] = [], b2: [Double] = []
            for _ in 0..<count { a += cluster(n, rng: &rng); b += cluster(n, rng: &rng) }
            // Every configuration turned by its own random rotation or rotation-reflection.
            for c in 0..<count {
                a2 += transform(configuration(a, c, particles: n), particles: n, rng: &rng, reflect: rng.uniform() < 0.5)
                b2 += transform(configuration(b, c, particles: n), particles: n, rng: &rng, reflect: rng.uniform() < 0.5)
            }
            for alignment in [Metrics.Alignment.invariant, .hungarianThenKabsch] {
                let w = Metrics.coordinateW2(a, b, particles: n, dimension: 3, aligned: true, alignment: alignment)
                let wa = Metrics.coordinateW2(a2, b, particles: n, dimension: 3, aligned: true, alignment: alignment)
                let wb = Metrics.coordinateW2(a, b2, particles: n, dimension: 3, aligned: true, alignment: alignment)
                if alignment == .invariant {
                    assertClose(wa, w, relative: 1e-9, "n = \(n), first set turned")
                    assertClose(wb, w, relative: 1e-9, "n = \(n), second set turned")
                } else {
                    // The check has teeth: the permutation-then-Kabsch convention moves.
                    XCTAssertGreaterThan(abs(wa - w) + abs(wb - w), 1e-3, "n = \(n)")
                }
            }
            // Pair by pair too.
            for c in 0..<count {
                let x = configuration(a, c, particles: n), y = configuration(b, c, particles: n)
                let d = Metrics.alignedSquaredDistance(x, y, particles: n, dimension: 3)
                let turnedX = configuration(a2, c, particles: n)
                assertClose(Metrics.alignedSquaredDistance(turnedX, y, particles: n, dimension: 3), d, relative: 1e-9)
            }
        }
    }

    func testInvariantAlignedW2IsBelowTheOldConventionAndAboveTheTrueMinimum() {
        var rng = TestRandom(seed: 29)
        // Set level: below the permutation-then-Kabsch W2, with the sets as drawn and with every
        // configuration of one set turned (which moves the old value, not the new one).
        for n in [13, 7] {
            let count = 10
            var a: [Double] = [], b: [Double] = [], turned: [Double] = []
            for _ in 0..<count { a += cluster(n, rng: &rng); b += cluster(n, rng: &rng) }
            for c in 0..<count { turned += transform(configuration(b, c, particles: n), particles: n, rng: &rng, reflect: c % 2 == 0) }
            let w = Metrics.coordinateW2(a, b, particles: n, dimension: 3, aligned: true)
            for reference in [b, turned] {
                let old = Metrics.coordinateW2(a, reference, particles: n, dimension: 3, aligned: true,
                                               alignment: .hungarianThenKabsch)
                XCTAssertLessThan(w, 0.95 * old, "n = \(n)")
            }
        }
        // Pair level the old permutation is one candidate of the true minimum, but the search does
        // not try it (that would bring the orientation back), so it can miss: on the LJ-13 test set
        // about 0.5 % of pairs score above it. Here it should win nearly always.
        for n in [13, 7] {
            var below = 0, above = 0
            for _ in 0..<40 {
                let x = cluster(n, rng: &rng), y = transform(cluster(n, rng: &rng), particles: n, rng: &rng, reflect: false)
                let invariant = Metrics.alignedSquaredDistance(x, y, particles: n, dimension: 3)
                let old = Metrics.alignedSquaredDistance(x, y, particles: n, dimension: 3, alignment: .hungarianThenKabsch)
                if invariant < old - 1e-9 { below += 1 }
                if invariant > old + 1e-9 { above += 1 }
            }
            XCTAssertGreaterThanOrEqual(below, 34, "n = \(n)")
            XCTAssertLessThanOrEqual(above, 2, "n = \(n)")
        }
        // Against the exact minimum over all permutations (brute force): never below it (it is a
        // minimum over fewer candidates); equal to it for n ≤ 5 (every permutation), and mostly
        // for n = 6 (the search).
        for n in [4, 5, 6] {
            var exact = 0
            let trials = n == 6 ? 40 : 8
            for _ in 0..<trials {
                let x = cluster(n, rng: &rng), y = transform(cluster(n, rng: &rng), particles: n, rng: &rng, reflect: false)
                let truth = bruteForceAligned(x, y, particles: n, dimension: 3)
                let found = Metrics.alignedSquaredDistance(x, y, particles: n, dimension: 3)
                XCTAssertGreaterThanOrEqual(found, truth - 1e-9 * (1 + truth), "n = \(n)")
                if found <= truth + 1e-9 * (1 + truth) { exact += 1 }
            }
            // n = 6 reaches it for 33 of these 40 pairs (the misses lie 3–43 % above).
            if n < 6 { XCTAssertEqual(exact, trials, "n = \(n)") } else { XCTAssertGreaterThanOrEqual(exact, 30) }
        }
        // In 2-D (the DW-4 case): every permutation, the exact minimum.
        for _ in 0..<5 {
            let x = cluster(4, dimension: 2, rng: &rng), y = cluster(4, dimension: 2, rng: &rng)
            assertClose(Metrics.alignedSquaredDistance(x, y, particles: 4, dimension: 2),
                        bruteForceAligned(x, y, particles: 4, dimension: 2), absolute: 1e-9)
        }
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
