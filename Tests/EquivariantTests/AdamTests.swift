import Equivariant
import TestSupport
import XCTest

final class AdamTests: XCTestCase {
    /// Two steps by hand: lr 0.1, β = (0.9, 0.999), ε = 1e-8.
    func testMatchesHandComputedSteps() {
        var adam = Adam<Double>(parameterCount: 2, learningRate: 0.1)
        var p = [1.0, -2.0]
        adam.step(parameters: &p, gradients: [0.5, -3.0])
        // Step 1: m̂ = g, v̂ = g², update = lr·g/(|g| + ε).
        assertClose(p[0], 1 - 0.1 * 0.5 / (0.5 + 1e-8), relative: 1e-15)
        assertClose(p[1], -2 + 0.1 * 3 / (3 + 1e-8), relative: 1e-15)
        let p1 = p
        adam.step(parameters: &p, gradients: [1.0, 2.0])
        for (i, (g1, g2)) in [(0.5, 1.0), (-3.0, 2.0)].enumerated() {
            let m = 0.9 * (0.1 * g1) + 0.1 * g2
            let v = 0.999 * (0.001 * g1 * g1) + 0.001 * g2 * g2
            let mhat = m / (1 - 0.81), vhat = v / (1 - 0.999 * 0.999)
            assertClose(p[i], p1[i] - 0.1 * mhat / (vhat.squareRoot() + 1e-8), relative: 1e-14)
        }
    }

    func testGlobalNormClippingAndEMA() {
        var adam = Adam<Double>(parameterCount: 2, learningRate: 0.1, clipNorm: 1, emaDecay: 0.5)
        var p = [0.0, 0.0]
        let norm = adam.step(parameters: &p, gradients: [3.0, 4.0])
        XCTAssertEqual(norm, 5, accuracy: 1e-15)
        // Clipped to (0.6, 0.8); first Adam step is sign-like anyway.
        XCTAssertEqual(adam.firstMoment[0], 0.1 * 0.6, accuracy: 1e-15)
        XCTAssertEqual(adam.firstMoment[1], 0.1 * 0.8, accuracy: 1e-15)
        XCTAssertEqual(adam.ema, p)
        let before = p
        adam.step(parameters: &p, gradients: [0.3, 0.4])
        XCTAssertEqual(adam.firstMoment[0], 0.9 * 0.06 + 0.1 * 0.3, accuracy: 1e-15)
        XCTAssertEqual(adam.ema[0], 0.5 * before[0] + 0.5 * p[0], accuracy: 1e-15)
    }
}
