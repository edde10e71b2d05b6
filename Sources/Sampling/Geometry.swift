import Equivariant

/// The coordinate operations of `Space` under their older names, for code written against
/// them (the algorithms live in `Space` only).
public enum Geometry {
    /// `Space.removeCentreOfMass`: subtract each configuration's particle mean, x [batch, n, d].
    @inline(__always)
    public static func removeCentreOfMass(_ x: inout [Double], particles n: Int, dimension d: Int) {
        Space.removeCentreOfMass(&x, particles: n, dimension: d)
    }

    /// `Space.wrap(_:box:)`: every coordinate into [0, L_k).
    @inline(__always)
    public static func wrap(_ x: inout [Double], box: [Double]) { Space.wrap(&x, box: box) }

    /// `Space.minimumImage`: the minimum-image difference on an edge of length l.
    @inline(__always)
    public static func minimumImage(_ delta: Double, edge l: Double) -> Double { Space.minimumImage(delta, edge: l) }
}
