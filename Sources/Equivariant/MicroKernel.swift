/// Single-precision register-blocked GEMM for the network's thin shapes
/// (M = edges, large; N = hidden, a multiple of 16; K = hidden), with the
/// bias and SiLU fused into the epilogue so the pre-activation never makes a
/// trip through memory. 6×16 micro-tile: 12 AVX accumulators, B panel and A
/// rows stay in L1. No packing: A and B are read in place.
enum FloatMicroKernel {
    /// s = σ(A·B + bias), act = (A·B + bias)·s; A [M×K], B [K×N], row-major.
    /// - Precondition: N % 16 == 0.
    static func gemmBiasSiLU(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                             bias: UnsafePointer<Float>, sigmoid: UnsafeMutablePointer<Float>,
                             activation: UnsafeMutablePointer<Float>) {
        var r0 = 0
        while r0 < m {
            let rows = min(6, m - r0)
            var c0 = 0
            while c0 < n {
                tile(rows: rows, r0: r0, c0: c0, n: n, k: k, a: a, b: b, bias: bias,
                     sigmoid: sigmoid, activation: activation)
                c0 += 16
            }
            r0 += 6
        }
    }

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    static func finish(_ z: SIMD8<Float>, _ s: UnsafeMutablePointer<Float>, _ act: UnsafeMutablePointer<Float>) {
        let sig = 1 / (1 + fastExp(-z))
        UnsafeMutableRawPointer(s).storeBytes(of: sig, as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(act).storeBytes(of: z * sig, as: SIMD8<Float>.self)
    }

    @inline(__always)
    static func tile(rows: Int, r0: Int, c0: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                     bias: UnsafePointer<Float>, sigmoid: UnsafeMutablePointer<Float>,
                     activation: UnsafeMutablePointer<Float>) {
        let bias0 = load(bias + c0), bias1 = load(bias + c0 + 8)
        var c00 = bias0, c01 = bias1, c10 = bias0, c11 = bias1, c20 = bias0, c21 = bias1
        var c30 = bias0, c31 = bias1, c40 = bias0, c41 = bias1, c50 = bias0, c51 = bias1
        // Rows past the end read row 0 (valid memory) and are not stored.
        let a0 = a + r0 * k
        let a1 = rows > 1 ? a0 + k : a0, a2 = rows > 2 ? a0 + 2 * k : a0
        let a3 = rows > 3 ? a0 + 3 * k : a0, a4 = rows > 4 ? a0 + 4 * k : a0, a5 = rows > 5 ? a0 + 5 * k : a0
        var bp = b + c0
        for q in 0..<k {
            let b0 = load(bp), b1 = load(bp + 8)
            bp += n
            var x = SIMD8<Float>(repeating: a0[q])
            c00 = c00.addingProduct(x, b0); c01 = c01.addingProduct(x, b1)
            x = SIMD8<Float>(repeating: a1[q])
            c10 = c10.addingProduct(x, b0); c11 = c11.addingProduct(x, b1)
            x = SIMD8<Float>(repeating: a2[q])
            c20 = c20.addingProduct(x, b0); c21 = c21.addingProduct(x, b1)
            x = SIMD8<Float>(repeating: a3[q])
            c30 = c30.addingProduct(x, b0); c31 = c31.addingProduct(x, b1)
            x = SIMD8<Float>(repeating: a4[q])
            c40 = c40.addingProduct(x, b0); c41 = c41.addingProduct(x, b1)
            x = SIMD8<Float>(repeating: a5[q])
            c50 = c50.addingProduct(x, b0); c51 = c51.addingProduct(x, b1)
        }
        let o = r0 * n + c0
        finish(c00, sigmoid + o, activation + o); finish(c01, sigmoid + o + 8, activation + o + 8)
        if rows > 1 { finish(c10, sigmoid + o + n, activation + o + n); finish(c11, sigmoid + o + n + 8, activation + o + n + 8) }
        if rows > 2 { finish(c20, sigmoid + o + 2 * n, activation + o + 2 * n); finish(c21, sigmoid + o + 2 * n + 8, activation + o + 2 * n + 8) }
        if rows > 3 { finish(c30, sigmoid + o + 3 * n, activation + o + 3 * n); finish(c31, sigmoid + o + 3 * n + 8, activation + o + 3 * n + 8) }
        if rows > 4 { finish(c40, sigmoid + o + 4 * n, activation + o + 4 * n); finish(c41, sigmoid + o + 4 * n + 8, activation + o + 4 * n + 8) }
        if rows > 5 { finish(c50, sigmoid + o + 5 * n, activation + o + 5 * n); finish(c51, sigmoid + o + 5 * n + 8, activation + o + 5 * n + 8) }
    }

    /// C = A·B (β = 0) or C += A·B (β = 1); A [M×K], B [K×N], C [M×N].
    /// - Precondition: N % 16 == 0.
    static func gemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                     accumulate: Bool, c: UnsafeMutablePointer<Float>,
                     siluSigmoid: UnsafePointer<Float>? = nil, siluActivation: UnsafePointer<Float>? = nil) {
        var r0 = 0
        while r0 < m {
            let rows = min(6, m - r0)
            var c0 = 0
            while c0 < n {
                plainTile(rows: rows, r0: r0, c0: c0, n: n, k: k, a: a, b: b, accumulate: accumulate, c: c,
                          siluSigmoid: siluSigmoid, siluActivation: siluActivation)
                c0 += 16
            }
            r0 += 6
        }
    }

    @inline(__always)
    static func plainTile(rows: Int, r0: Int, c0: Int, n: Int, k: Int, a: UnsafePointer<Float>,
                          b: UnsafePointer<Float>, accumulate: Bool, c: UnsafeMutablePointer<Float>,
                          siluSigmoid: UnsafePointer<Float>?, siluActivation: UnsafePointer<Float>?) {
        let z = SIMD8<Float>()
        var c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z
        var c30 = z, c31 = z, c40 = z, c41 = z, c50 = z, c51 = z
        let a0 = a + r0 * k
        let a1 = rows > 1 ? a0 + k : a0, a2 = rows > 2 ? a0 + 2 * k : a0
        let a3 = rows > 3 ? a0 + 3 * k : a0, a4 = rows > 4 ? a0 + 4 * k : a0, a5 = rows > 5 ? a0 + 5 * k : a0
        var bp = b + c0
        for q in 0..<k {
            let b0 = load(bp), b1 = load(bp + 8)
            bp += n
            var x = SIMD8<Float>(repeating: a0[q])
            c00 = c00.addingProduct(x, b0); c01 = c01.addingProduct(x, b1)
            x = SIMD8<Float>(repeating: a1[q])
            c10 = c10.addingProduct(x, b0); c11 = c11.addingProduct(x, b1)
            x = SIMD8<Float>(repeating: a2[q])
            c20 = c20.addingProduct(x, b0); c21 = c21.addingProduct(x, b1)
            x = SIMD8<Float>(repeating: a3[q])
            c30 = c30.addingProduct(x, b0); c31 = c31.addingProduct(x, b1)
            x = SIMD8<Float>(repeating: a4[q])
            c40 = c40.addingProduct(x, b0); c41 = c41.addingProduct(x, b1)
            x = SIMD8<Float>(repeating: a5[q])
            c50 = c50.addingProduct(x, b0); c51 = c51.addingProduct(x, b1)
        }
        let offset = r0 * n + c0
        let o = c + offset
        @inline(__always) func put(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
            var w = accumulate ? v + load(p) : v
            if let sg = siluSigmoid, let ac = siluActivation {
                // SiLU backward epilogue: g ⊙ (σ + a(1 − σ)).
                let q = p - o + offset
                let sv = load(sg + q), av = load(ac + q)
                w = w * (sv + av * (1 - sv))
            }
            UnsafeMutableRawPointer(p).storeBytes(of: w, as: SIMD8<Float>.self)
        }
        put(c00, o); put(c01, o + 8)
        if rows > 1 { put(c10, o + n); put(c11, o + n + 8) }
        if rows > 2 { put(c20, o + 2 * n); put(c21, o + 2 * n + 8) }
        if rows > 3 { put(c30, o + 3 * n); put(c31, o + 3 * n + 8) }
        if rows > 4 { put(c40, o + 4 * n); put(c41, o + 4 * n + 8) }
        if rows > 5 { put(c50, o + 5 * n); put(c51, o + 5 * n + 8) }
    }
}
