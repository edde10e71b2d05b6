/// Boundary conditions as a value (jax-md's `space`): everything that needs
/// a displacement or moves particles asks the space, so periodicity lives in
/// one place. Positions are flat row-major arrays, `[batch, particles,
/// dimension]` or any multiple of `dimension`.
public protocol Space: Sendable {
    /// Spatial dimension d (2 or 3).
    var dimension: Int { get }
    /// Box edge lengths (one per axis) for a periodic box, nil in free space.
    var boxEdges: [Double]? { get }
    /// Displacement a − b (minimum image in a box), `d` values each.
    func displacement<S: BinaryFloatingPoint>(_ a: UnsafePointer<S>, _ b: UnsafePointer<S>,
                                              into out: UnsafeMutablePointer<S>)
    /// Maps every position into the primary cell [0, L) (identity in free space).
    func wrap<S: BinaryFloatingPoint>(_ positions: inout [S])
}

extension Space {
    /// Displacement a − b for single points given as arrays of length d.
    public func displacement<S: BinaryFloatingPoint>(_ a: [S], _ b: [S]) -> [S] {
        precondition(a.count == dimension && b.count == dimension)
        var out = [S](repeating: 0, count: dimension)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { po in
                    displacement(pa.baseAddress!, pb.baseAddress!, into: po.baseAddress!)
                }
            }
        }
        return out
    }

    /// Adds `delta` (same layout as `positions`) and wraps the result.
    public func shift<S: BinaryFloatingPoint>(_ positions: inout [S], by delta: [S]) {
        precondition(positions.count == delta.count)
        for i in positions.indices { positions[i] += delta[i] }
        wrap(&positions)
    }
}

/// Unbounded Euclidean space: displacement is the plain difference.
public struct FreeSpace: Space {
    public let dimension: Int
    public init(dimension: Int) { self.dimension = dimension }
    public var boxEdges: [Double]? { nil }

    @inline(__always)
    public func displacement<S: BinaryFloatingPoint>(_ a: UnsafePointer<S>, _ b: UnsafePointer<S>,
                                                     into out: UnsafeMutablePointer<S>) {
        for k in 0..<dimension { out[k] = a[k] - b[k] }
    }

    public func wrap<S: BinaryFloatingPoint>(_ positions: inout [S]) {}
}

/// Orthorhombic periodic box [0, L₀) × … × [0, L_{d−1}).
///
/// Displacements are minimum images, d − L·round(d/L) per axis. Caveat: a
/// pair interaction with a cutoff r_c sees at most one image only when
/// r_c < L/2 for every edge; `EGNNConfiguration` enforces that.
public struct PeriodicBox: Space {
    public let edges: [Double]
    public init(edges: [Double]) {
        precondition(edges.allSatisfy { $0 > 0 }, "box edges must be positive")
        self.edges = edges
    }
    /// Cubic box of edge `edge` in `dimension` dimensions.
    public init(edge: Double, dimension: Int) { self.init(edges: [Double](repeating: edge, count: dimension)) }

    public var dimension: Int { edges.count }
    public var boxEdges: [Double]? { edges }

    @inline(__always)
    public func displacement<S: BinaryFloatingPoint>(_ a: UnsafePointer<S>, _ b: UnsafePointer<S>,
                                                     into out: UnsafeMutablePointer<S>) {
        for k in 0..<edges.count {
            let l = S(edges[k])
            let t = a[k] - b[k]
            out[k] = t - l * (t / l).rounded(.toNearestOrEven)
        }
    }

    public func wrap<S: BinaryFloatingPoint>(_ positions: inout [S]) {
        let d = edges.count
        for i in positions.indices {
            let l = S(edges[i % d])
            var x = positions[i] - l * (positions[i] / l).rounded(.down)
            if x >= l { x -= l }  // rounding can land exactly on L
            if x < 0 { x += l }
            positions[i] = x
        }
    }
}
