import Foundation

/// Coordinates of a batch of configurations, [batch, particles, dimension] row-major,
/// and the operations samplers need on them: centre-of-mass projection and wrapping.
public enum Geometry {
    /// Subtract each configuration's particle mean (zero centre of mass; equal weights).
    /// - Parameters:
    ///   - x: [batch, particles, dimension], modified in place.
    public static func removeCentreOfMass(_ x: inout [Double], particles n: Int, dimension d: Int) {
        let stride = n * d
        let batch = x.count / stride
        x.withUnsafeMutableBufferPointer { p in
            for b in 0..<batch {
                let base = b * stride
                for k in 0..<d {
                    var mean = 0.0
                    for i in 0..<n { mean += p[base + i * d + k] }
                    mean /= Double(n)
                    for i in 0..<n { p[base + i * d + k] -= mean }
                }
            }
        }
    }

    /// Wrap every coordinate into [0, L_k).
    public static func wrap(_ x: inout [Double], box: [Double]) {
        let d = box.count
        for i in x.indices {
            let l = box[i % d]
            var v = x[i] - l * (x[i] / l).rounded(.down)
            if v >= l { v -= l }
            x[i] = v
        }
    }

    /// The minimum-image difference a − b on a box edge of length l.
    @inline(__always)
    public static func minimumImage(_ delta: Double, edge l: Double) -> Double {
        delta - l * (delta / l).rounded()
    }
}
