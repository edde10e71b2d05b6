/// Pointer kernels shared by `Tensor` and `EGNN`. Shapes are row-major;
/// "rows × cols" means `cols` contiguous values per row.
enum Kernels {
    /// x[r, :] += bias for every row.
    @inline(__always)
    static func addBias<S: TensorScalar>(_ x: UnsafeMutablePointer<S>, _ bias: UnsafePointer<S>,
                                         rows: Int, cols: Int) {
        for r in 0..<rows {
            let row = x + r * cols
            for c in 0..<cols { row[c] += bias[c] }
        }
    }

    /// x[r, :] = bias for every row.
    @inline(__always)
    static func fillRows<S: TensorScalar>(_ x: UnsafeMutablePointer<S>, _ bias: UnsafePointer<S>,
                                          rows: Int, cols: Int) {
        for r in 0..<rows { (x + r * cols).update(from: bias, count: cols) }
    }

    /// out[c] += Σ_r x[r, c]  (bias gradient).
    @inline(__always)
    static func addColumnSums<S: TensorScalar>(_ x: UnsafePointer<S>, rows: Int, cols: Int,
                                               into out: UnsafeMutablePointer<S>) {
        for r in 0..<rows {
            let row = x + r * cols
            for c in 0..<cols { out[c] += row[c] }
        }
    }

    /// SiLU backward in place: g ← g ⊙ (σ + a·(1 − σ)), σ and a from `siluForward`.
    @inline(__always)
    static func siluBackward<S: TensorScalar>(_ g: UnsafeMutablePointer<S>, sigmoid s: UnsafePointer<S>,
                                              activation a: UnsafePointer<S>, count: Int) {
        for i in 0..<count {
            let si = s[i]
            g[i] *= si + a[i] * (1 - si)
        }
    }

    @inline(__always)
    static func dot<S: TensorScalar>(_ a: UnsafePointer<S>, _ b: UnsafePointer<S>, _ n: Int) -> S {
        var acc: S = 0
        for k in 0..<n { acc += a[k] * b[k] }
        return acc
    }

    /// out[r, :] = x[index[r], :]  (gather rows).
    static func gatherRows<S: TensorScalar>(_ x: UnsafePointer<S>, cols: Int, index: UnsafePointer<Int32>,
                                            count: Int, into out: UnsafeMutablePointer<S>) {
        for r in 0..<count {
            (out + r * cols).update(from: x + Int(index[r]) * cols, count: cols)
        }
    }

    /// out[index[r], :] += x[r, :]  (scatter-add rows; `out` must be initialised).
    static func scatterAddRows<S: TensorScalar>(_ x: UnsafePointer<S>, cols: Int, index: UnsafePointer<Int32>,
                                                count: Int, into out: UnsafeMutablePointer<S>) {
        for r in 0..<count {
            let dst = out + Int(index[r]) * cols, src = x + r * cols
            for c in 0..<cols { dst[c] += src[c] }
        }
    }
}
