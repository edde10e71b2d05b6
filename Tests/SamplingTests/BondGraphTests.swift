import Foundation
import PluginHost
import Sampling
import TestSupport
import XCTest

/// The bond graph of a molecule: pair classes, the harmonic prior's Gaussian, and what the
/// alanine plugin reports.
final class BondGraphTests: XCTestCase {
    /// Butane's heavy atoms plus a detached atom: 0–1–2–3, 4 alone.
    let graph = BondGraph(particles: 5, bonds: [(1, 0), (1, 2), (3, 2)])

    func testPairClassesFollowBondsApart() {
        let c = graph.pairClasses(), n = 5
        XCTAssertEqual(c[0 * n + 1], 0)
        XCTAssertEqual(c[0 * n + 2], 1)
        XCTAssertEqual(c[0 * n + 3], 2)
        XCTAssertEqual(c[0 * n + 4], 3)
        XCTAssertEqual(c[2 * n + 2], 3)
        let transposed: [Int] = (0..<(n * n)).map { (q: Int) -> Int in c[(q % n) * n + q / n] }
        XCTAssertEqual(c, transposed, "symmetric")
        XCTAssertEqual(graph.bonds, [[0, 1], [1, 2], [2, 3]])
    }

    /// C is symmetric with the translations as its null space and trace n − 1; A² = C; C C⁺ is the
    /// centring projector; the empirical covariance of A ε is C; a bond varies less than a distant
    /// pair; and log N(x; 0, σ²C) integrates correctly: its value is the Gaussian's (checked
    /// against the explicit formula with the eigen-decomposition's log-determinant), and equals the
    /// isotropic density on the centred space for a graph whose C is the projector.
    func testHarmonicPriorIsTheGraphsGaussian() {
        let prior = graph.harmonicPrior(), n = 5
        func product(_ a: [Double], _ b: [Double]) -> [Double] {
            var r = [Double](repeating: 0, count: n * n)
            for i in 0..<n { for j in 0..<n { for k in 0..<n { r[i * n + j] += a[i * n + k] * b[k * n + j] } } }
            return r
        }
        let c = prior.covariance
        XCTAssertEqual((0..<n).map { c[$0 * n + $0] }.reduce(0, +), Double(n - 1), accuracy: 1e-10)
        for i in 0..<n {
            XCTAssertEqual((0..<n).map { c[i * n + $0] }.reduce(0, +), 0, accuracy: 1e-10, "C 1 = 0")
            for j in 0..<n {
                XCTAssertEqual(c[i * n + j], c[j * n + i], accuracy: 1e-12)
                XCTAssertEqual(product(prior.shape, prior.shape)[i * n + j], c[i * n + j], accuracy: 1e-10)
                XCTAssertEqual(product(c, prior.precision)[i * n + j], (i == j ? 1 : 0) - 1 / Double(n), accuracy: 1e-9)
            }
        }
        var rng = SeededGenerator(seed: 5)
        let m = 20000
        let e = prior.noise(batch: m, dimension: 3, rng: &rng)
        var empirical = [Double](repeating: 0, count: n * n)
        let norm = 1 / Double(3 * m)
        for b in 0..<m { for k in 0..<3 { for i in 0..<n { for j in 0..<n {
            let pi: Double = e[b * 15 + i * 3 + k], pj: Double = e[b * 15 + j * 3 + k]
            empirical[i * n + j] += pi * pj * norm
        } } } }
        for q in 0..<(n * n) { XCTAssertEqual(empirical[q], c[q], accuracy: 0.05) }
        func pairVariance(_ i: Int, _ j: Int) -> Double { c[i * n + i] + c[j * n + j] - 2 * c[i * n + j] }
        XCTAssertLessThan(pairVariance(0, 1), 0.5 * pairVariance(0, 3))
        XCTAssertLessThan(pairVariance(0, 3), pairVariance(0, 4))
        // The density at one point: −½ xᵀC⁺x/σ² − ½(n−1)d log(2πσ²) − (d/2) log det⁺C.
        let x = Array(e[0..<15]), variance = 2.5
        var quadratic = 0.0
        for k in 0..<3 { for i in 0..<n { for j in 0..<n { quadratic += x[i * 3 + k] * prior.precision[i * n + j] * x[j * 3 + k] } } }
        let expected = -quadratic / (2 * variance) - 0.5 * 12 * log(2 * Double.pi * variance) - 1.5 * prior.logDeterminant
        XCTAssertEqual(prior.logDensity(x[...], variance: variance, dimension: 3), expected, accuracy: 1e-10)
        // log det⁺ C from the product of C's non-zero eigenvalues, by an independent route:
        // det(C + 11ᵀ/n) = det⁺ C (the translation mode gets eigenvalue 1).
        var shifted = c
        for q in 0..<(n * n) { shifted[q] += 1 / Double(n) }
        XCTAssertEqual(log(determinant(shifted, n)), prior.logDeterminant, accuracy: 1e-9)
    }

    /// The alanine plugin reports the prmtop's 21 bonds of the dipeptide's 22 atoms (a tree), each
    /// between atoms closer than 1.7 Å in the start structure.
    func testAlanineReportsItsBonds() throws {
        try requireBuilt(TestPaths.plugin("Alanine"))
        let plugin = try PluginLoader.load(path: TestPaths.plugin("Alanine").path)
        let system = try plugin.makeSystem(parameters: "")
        let bonds = try XCTUnwrap(system.bonds())
        XCTAssertEqual(bonds.count, 21)
        let x = try XCTUnwrap(system.initialPositions())
        for (i, j) in bonds {
            let r = (0..<3).map { x[3 * i + $0] - x[3 * j + $0] }.map { $0 * $0 }.reduce(0, +).squareRoot()
            XCTAssertLessThan(r, 1.7, "bond \(i)–\(j)")
            XCTAssertGreaterThan(r, 0.9)
        }
        let hops = BondGraph(particles: 22, bonds: bonds).hops()
        XCTAssertFalse(hops.contains(Int.max), "one connected molecule")
        try requireBuilt(TestPaths.plugin("LennardJones"))
        let lj = try PluginLoader.load(path: TestPaths.plugin("LennardJones").path).makeSystem(parameters: "preset=lj13")
        XCTAssertNil(lj.bonds(), "a cluster has no bond graph")
    }

    /// The bond check: the reference itself is whole with zero deviation; stretching one bond by
    /// 30 % breaks that sample and adds its deviation to the rms.
    func testBondCheckCountsBrokenMolecules() {
        let reference: [Double] = [0, 0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0, 10, 0, 0]
        var stretched = reference
        stretched[9] = 3.3  // bond 2–3 from 1.0 to 1.3
        let check = BondCheck(graph: graph, positions: reference + stretched, reference: reference, dimension: 3)
        XCTAssertEqual(check.samples, 2)
        XCTAssertEqual(check.wholeFraction, 0.5)
        XCTAssertEqual(check.rmsDeviation, (0.09 / 6).squareRoot(), accuracy: 1e-12)
    }

    /// An untrained EDM network under the harmonic prior, drawn by Heun's deterministic map with
    /// exact weights (the prior's density included): log Ẑ recovers the analytic log Z of a
    /// harmonic target, as with the isotropic prior.
    func testExactWeightsUnderTheHarmonicPrior() throws {
        let plugin = try PluginLoader.load(path: try buildHarmonicPlugin().path)
        let system = try plugin.makeSystem(parameters: "k=0.5 temperature=1 particles=4 dimension=3 centred=1")
        var c = smallEDMConfiguration(sigmaMax: 5, seed: 4)
        c.bondGraph = BondGraph(particles: 4, bonds: [(0, 1), (1, 2), (2, 3)])
        let m = try untrainedEDMModel(c, space: DiffusionSpace(particles: 4, dimension: 3, kind: .centred), sigmaData: 1.4)
        XCTAssertNotNil(m.harmonicPrior)
        // The harmonic plugin's u = k|x|²/2 on the centred space of 4 particles in 3-D: D' = 9.
        try assertExactWeightsRecover(logZ: 4.5 * log(2 * Double.pi / 0.5), model: m, system: system,
                                      seed: 11, label: "harmonic prior")
    }

    /// det of an n × n matrix by Gaussian elimination with partial pivoting.
    func determinant(_ m: [Double], _ n: Int) -> Double {
        var a = m, det = 1.0
        for col in 0..<n {
            let pivot = (col..<n).max { abs(a[$0 * n + col]) < abs(a[$1 * n + col]) }!
            if pivot != col { for k in 0..<n { a.swapAt(col * n + k, pivot * n + k) }; det = -det }
            det *= a[col * n + col]
            for r in (col + 1)..<n {
                let f = a[r * n + col] / a[col * n + col]
                for k in col..<n { a[r * n + k] -= f * a[col * n + k] }
            }
        }
        return det
    }
}
