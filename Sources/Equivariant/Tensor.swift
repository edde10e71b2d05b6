/// A small dense row-major tensor: a shape and a flat array. It carries the
/// operations an EGNN is made of (matmul through OpenBLAS, bias, SiLU,
/// gather/scatter over edge lists, segment sum/mean, elementwise ops) for
/// code outside the network; `EGNN` itself runs the same kernels on
/// preallocated buffers.
public struct Tensor<Scalar: TensorScalar>: Equatable {
    public var shape: [Int]
    public var storage: [Scalar]

    /// - Precondition: `storage.count` is the product of `shape`.
    public init(shape: [Int], storage: [Scalar]) {
        precondition(shape.reduce(1, *) == storage.count, "storage count \(storage.count) ≠ shape \(shape)")
        self.shape = shape
        self.storage = storage
    }

    public init(shape: [Int], repeating value: Scalar = 0) {
        self.init(shape: shape, storage: [Scalar](repeating: value, count: shape.reduce(1, *)))
    }

    public var count: Int { storage.count }
    public var rows: Int { shape[0] }
    /// Elements per leading index (the product of the trailing dimensions).
    public var rowWidth: Int { shape.dropFirst().reduce(1, *) }

    public subscript(_ r: Int, _ c: Int) -> Scalar {
        get { storage[r * rowWidth + c] }
        set { storage[r * rowWidth + c] = newValue }
    }

    /// [m, k] · [k, n] → [m, n] (BLAS GEMM).
    public func matmul(_ other: Tensor) -> Tensor {
        precondition(shape.count == 2 && other.shape.count == 2 && shape[1] == other.shape[0],
                     "matmul shapes \(shape) · \(other.shape)")
        let m = shape[0], k = shape[1], n = other.shape[1]
        var out = Tensor(shape: [m, n])
        storage.withUnsafeBufferPointer { a in
            other.storage.withUnsafeBufferPointer { b in
                out.storage.withUnsafeMutableBufferPointer { c in
                    Scalar.gemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1,
                                a: a.baseAddress!, lda: k, b: b.baseAddress!, ldb: n,
                                beta: 0, c: c.baseAddress!, ldc: n)
                }
            }
        }
        return out
    }

    /// Adds `bias` (shape [cols]) to every row.
    public func addingBias(_ bias: Tensor) -> Tensor {
        precondition(bias.count == rowWidth)
        var out = self
        out.storage.withUnsafeMutableBufferPointer { x in
            bias.storage.withUnsafeBufferPointer { b in
                Kernels.addBias(x.baseAddress!, b.baseAddress!, rows: rows, cols: rowWidth)
            }
        }
        return out
    }

    /// SiLU(x) = x·σ(x), elementwise.
    public func silu() -> Tensor {
        var sig = storage, act = storage
        sig.withUnsafeMutableBufferPointer { s in
            act.withUnsafeMutableBufferPointer { a in
                Scalar.siluForward(s.baseAddress!, activation: a.baseAddress!, count: count)
            }
        }
        return Tensor(shape: shape, storage: act)
    }

    /// out[r] = self[index[r]] over the leading dimension.
    public func gatherRows(_ index: [Int32]) -> Tensor {
        var out = Tensor(shape: [index.count] + shape.dropFirst())
        let w = rowWidth
        storage.withUnsafeBufferPointer { x in
            index.withUnsafeBufferPointer { i in
                out.storage.withUnsafeMutableBufferPointer { o in
                    Kernels.gatherRows(x.baseAddress!, cols: w, index: i.baseAddress!, count: index.count,
                                       into: o.baseAddress!)
                }
            }
        }
        return out
    }

    /// out[index[r]] += self[r]; `segments` rows in the result (segment sum
    /// over an edge list: rows of `self` are edges, `index` their source node).
    public func segmentSum(_ index: [Int32], segments: Int) -> Tensor {
        precondition(index.count == rows)
        var out = Tensor(shape: [segments] + shape.dropFirst())
        let w = rowWidth
        storage.withUnsafeBufferPointer { x in
            index.withUnsafeBufferPointer { i in
                out.storage.withUnsafeMutableBufferPointer { o in
                    Kernels.scatterAddRows(x.baseAddress!, cols: w, index: i.baseAddress!, count: rows,
                                           into: o.baseAddress!)
                }
            }
        }
        return out
    }

    /// Segment mean: the segment sum divided by the segment's size (empty
    /// segments stay zero, as `unsorted_segment_mean` with a clamped count).
    public func segmentMean(_ index: [Int32], segments: Int) -> Tensor {
        var out = segmentSum(index, segments: segments)
        var counts = [Int](repeating: 0, count: segments)
        for i in index { counts[Int(i)] += 1 }
        let w = rowWidth
        for s in 0..<segments where counts[s] > 1 {
            let inv = 1 / Scalar(counts[s])
            for c in 0..<w { out.storage[s * w + c] *= inv }
        }
        return out
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor { a.zip(b, +) }
    public static func - (a: Tensor, b: Tensor) -> Tensor { a.zip(b, -) }
    /// Elementwise (Hadamard) product.
    public static func * (a: Tensor, b: Tensor) -> Tensor { a.zip(b, *) }
    public static func * (s: Scalar, a: Tensor) -> Tensor { a.map { s * $0 } }

    public func map(_ f: (Scalar) -> Scalar) -> Tensor { Tensor(shape: shape, storage: storage.map(f)) }

    private func zip(_ other: Tensor, _ f: (Scalar, Scalar) -> Scalar) -> Tensor {
        precondition(shape == other.shape, "shape mismatch \(shape) vs \(other.shape)")
        var out = storage
        for i in out.indices { out[i] = f(storage[i], other.storage[i]) }
        return Tensor(shape: shape, storage: out)
    }
}
