/// A periodic cell as AMBER NetCDF stores it: edge lengths a, b, c in Å and
/// angles α, β, γ in degrees (α between b and c, β between a and c, γ between a and b).
public struct UnitCell: Equatable, Sendable {
    /// Edge lengths (a, b, c) in Å.
    public var lengths: SIMD3<Double>
    /// Angles (α, β, γ) in degrees.
    public var angles: SIMD3<Double>

    public init(lengths: SIMD3<Double>, angles: SIMD3<Double> = SIMD3(90, 90, 90)) {
        self.lengths = lengths
        self.angles = angles
    }

    /// A rectangular box with edges `a`, `b`, `c` in Å and all angles 90°.
    public static func orthorhombic(_ a: Double, _ b: Double, _ c: Double) -> UnitCell {
        UnitCell(lengths: SIMD3(a, b, c))
    }

    /// A cubic box of edge `edge` Å.
    public static func cubic(_ edge: Double) -> UnitCell { .orthorhombic(edge, edge, edge) }
}
