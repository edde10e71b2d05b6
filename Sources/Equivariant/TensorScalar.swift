import CBLAS
import Foundation

/// The element types the network runs in: `Float` (training, sampling) and
/// `Double` (gradient and equivariance checks). Each conformance routes the
/// dense work to OpenBLAS (`cblas_sgemm` / `cblas_dgemm`) and supplies the
/// SiLU kernel (a vectorised `exp` for `Float`, libm for `Double`).
public protocol TensorScalar: BinaryFloatingPoint, Codable, Sendable {
    /// Name written into parameter files ("Float32", "Float64").
    static var typeName: String { get }

    /// Row-major C ← α·op(A)·op(B) + β·C with op(A) m×k, op(B) k×n.
    static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                     alpha: Self, a: UnsafePointer<Self>, lda: Int,
                     b: UnsafePointer<Self>, ldb: Int,
                     beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)

    /// SiLU forward over `count` values: on return `z[i]` holds σ(z[i]) and
    /// `activation[i]` holds z[i]·σ(z[i]). (σ and SiLU are all the backward
    /// pass needs: SiLU'(z) = σ + a·(1 − σ).)
    static func siluForward(_ z: UnsafeMutablePointer<Self>,
                            activation: UnsafeMutablePointer<Self>, count: Int)

    /// sigmoid ← σ(A·B + bias), activation ← (A·B + bias)·σ(…): one linear
    /// layer and its SiLU. A [m×k], B [k×n], bias [n], outputs [m×n].
    static func gemmBiasSiLU(m: Int, n: Int, k: Int, a: UnsafePointer<Self>, b: UnsafePointer<Self>,
                             bias: UnsafePointer<Self>, sigmoid: UnsafeMutablePointer<Self>,
                             activation: UnsafeMutablePointer<Self>)

    /// c ← (accumulate ? c : 0) + A·B, then c ← c ⊙ SiLU′ given σ and SiLU
    /// outputs of the forward pass. A [m×k], B [k×n], all row-major.
    static func gemmSiLUBackward(m: Int, n: Int, k: Int, a: UnsafePointer<Self>, b: UnsafePointer<Self>,
                                 accumulate: Bool, c: UnsafeMutablePointer<Self>,
                                 sigmoid: UnsafePointer<Self>, activation: UnsafePointer<Self>)

    static func elementaryExp(_ x: Self) -> Self
    static func elementaryTanh(_ x: Self) -> Self
    static func elementarySin(_ x: Self) -> Self
    static func elementaryCos(_ x: Self) -> Self
}

extension TensorScalar {
    @inline(__always)
    public static func gemmSiLUBackward(m: Int, n: Int, k: Int, a: UnsafePointer<Self>, b: UnsafePointer<Self>,
                                        accumulate: Bool, c: UnsafeMutablePointer<Self>,
                                        sigmoid: UnsafePointer<Self>, activation: UnsafePointer<Self>) {
        gemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: n,
             beta: accumulate ? 1 : 0, c: c, ldc: n)
        Kernels.siluBackward(c, sigmoid: sigmoid, activation: activation, count: m * n)
    }

    /// BLAS GEMM with C preset to the bias (β = 1), then the SiLU pass.
    @inline(__always)
    public static func gemmBiasSiLU(m: Int, n: Int, k: Int, a: UnsafePointer<Self>, b: UnsafePointer<Self>,
                                    bias: UnsafePointer<Self>, sigmoid: UnsafeMutablePointer<Self>,
                                    activation: UnsafeMutablePointer<Self>) {
        Kernels.fillRows(sigmoid, bias, rows: m, cols: n)
        gemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: n,
             beta: 1, c: sigmoid, ldc: n)
        siluForward(sigmoid, activation: activation, count: m * n)
    }
}

@inline(__always)
private func cblasTranspose(_ t: Bool) -> CBLAS_TRANSPOSE { t ? CblasTrans : CblasNoTrans }

extension Float: TensorScalar {
    public static var typeName: String { "Float32" }

    /// Thin row-major products (no transposes, α = 1, β ∈ {0, 1}, n % 16 == 0,
    /// contiguous operands) go to the micro-kernel; the rest to OpenBLAS.
    @inline(__always)
    public static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                            alpha: Float, a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        if useMicroKernel && !transA && !transB && alpha == 1 && (beta == 0 || beta == 1) && n % 16 == 0
            && lda == k && ldb == n && ldc == n && m >= 64 {
            FloatMicroKernel.gemm(m: m, n: n, k: k, a: a, b: b, accumulate: beta == 1, c: c)
            return
        }
        cblas_sgemm(CblasRowMajor, cblasTranspose(transA), cblasTranspose(transB),
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
                    beta, c, Int32(ldc))
    }

    /// The fused micro-kernel when n is a multiple of 16 (see `FloatMicroKernel`).
    public static func gemmBiasSiLU(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                                    bias: UnsafePointer<Float>, sigmoid: UnsafeMutablePointer<Float>,
                                    activation: UnsafeMutablePointer<Float>) {
        if n % 16 == 0 && useMicroKernel {
            FloatMicroKernel.gemmBiasSiLU(m: m, n: n, k: k, a: a, b: b, bias: bias, sigmoid: sigmoid,
                                          activation: activation)
        } else {
            Kernels.fillRows(sigmoid, bias, rows: m, cols: n)
            gemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: n,
                 beta: 1, c: sigmoid, ldc: n)
            siluForward(sigmoid, activation: activation, count: m * n)
        }
    }

    public static func gemmSiLUBackward(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                                        accumulate: Bool, c: UnsafeMutablePointer<Float>,
                                        sigmoid: UnsafePointer<Float>, activation: UnsafePointer<Float>) {
        if n % 16 == 0 && useMicroKernel {
            FloatMicroKernel.gemm(m: m, n: n, k: k, a: a, b: b, accumulate: accumulate, c: c,
                                  siluSigmoid: sigmoid, siluActivation: activation)
        } else {
            gemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: n,
                 beta: accumulate ? 1 : 0, c: c, ldc: n)
            Kernels.siluBackward(c, sigmoid: sigmoid, activation: activation, count: m * n)
        }
    }

    public static func siluForward(_ z: UnsafeMutablePointer<Float>,
                                   activation: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        let one = SIMD8<Float>(repeating: 1)
        while i + 8 <= count {
            let x = UnsafeRawPointer(z + i).loadUnaligned(as: SIMD8<Float>.self)
            let s = one / (one + fastExp(-x))
            UnsafeMutableRawPointer(z + i).storeBytes(of: s, as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(activation + i).storeBytes(of: x * s, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count {
            let x = z[i]
            let s = 1 / (1 + Foundation.exp(-x))
            z[i] = s
            activation[i] = x * s
            i += 1
        }
    }

    @inline(__always) public static func elementaryExp(_ x: Float) -> Float { Foundation.exp(x) }
    @inline(__always) public static func elementaryTanh(_ x: Float) -> Float { Foundation.tanh(x) }
    @inline(__always) public static func elementarySin(_ x: Float) -> Float { Foundation.sin(x) }
    @inline(__always) public static func elementaryCos(_ x: Float) -> Float { Foundation.cos(x) }
}

extension Double: TensorScalar {
    public static var typeName: String { "Float64" }

    @inline(__always)
    public static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                            alpha: Double, a: UnsafePointer<Double>, lda: Int,
                            b: UnsafePointer<Double>, ldb: Int,
                            beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int) {
        if m == 0 || n == 0 { return }
        cblas_dgemm(CblasRowMajor, cblasTranspose(transA), cblasTranspose(transB),
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
                    beta, c, Int32(ldc))
    }

    public static func siluForward(_ z: UnsafeMutablePointer<Double>,
                                   activation: UnsafeMutablePointer<Double>, count: Int) {
        for i in 0..<count {
            let x = z[i]
            let s = 1 / (1 + Foundation.exp(-x))
            z[i] = s
            activation[i] = x * s
        }
    }

    @inline(__always) public static func elementaryExp(_ x: Double) -> Double { Foundation.exp(x) }
    @inline(__always) public static func elementaryTanh(_ x: Double) -> Double { Foundation.tanh(x) }
    @inline(__always) public static func elementarySin(_ x: Double) -> Double { Foundation.sin(x) }
    @inline(__always) public static func elementaryCos(_ x: Double) -> Double { Foundation.cos(x) }
}

/// Vectorised single-precision exp (Cephes `expf` polynomial, ≤ 2 ulp on
/// [−87, 88]; inputs outside are clamped, so exp(−∞) → ~1e−38, never NaN).
@inline(__always)
public func fastExp(_ input: SIMD8<Float>) -> SIMD8<Float> {
    let lo = SIMD8<Float>(repeating: -87.3), hi = SIMD8<Float>(repeating: 88.3)
    var x = input
    x.replace(with: lo, where: x .< lo)
    x.replace(with: hi, where: x .> hi)
    let n = (x * 1.442_695_04).rounded(.toNearestOrEven)
    var r = x - n * 0.693_359_375
    r = r + n * 2.121_944_4e-4
    var p = SIMD8<Float>(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_12e-1
    p = p * (r * r) + r + 1
    // 2^n through the exponent field: (n + 127 + 1.5·2^23) keeps n + 127 in
    // the low mantissa bits; shifting by 23 moves it into the exponent.
    let biased = n + 12_583_039 // 1.5·2^23 + 127
    let bits = unsafeBitCast(biased, to: SIMD8<UInt32>.self) &<< 23
    return p * unsafeBitCast(bits, to: SIMD8<Float>.self)
}

/// Whether `Float.gemmBiasSiLU` uses the fused micro-kernel (default on;
/// `EQUIVARIANT_BLAS_ONLY=1` in the environment turns it off, for comparison).
let useMicroKernel: Bool = ProcessInfo.processInfo.environment["EQUIVARIANT_BLAS_ONLY"] != "1"
