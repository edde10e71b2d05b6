import Foundation

/// One thread's share of a batch: its edge list, the activations `backward`
/// needs, scratch space and a private parameter-gradient buffer. Buffers
/// grow to the largest batch seen and are then reused.
final class Worker<S: TensorScalar> {
    let n: Int, d: Int, h: Int, layerCount: Int, features: Int
    let configuration: EGNNConfiguration
    let layout: ParameterLayout
    let box: [S]?
    let cutoffSquared: S?
    let tanhRange: S?
    let mean: Bool
    let removeMean: Bool
    /// Pair classes [n·n] (`EGNNConfiguration.edgeClasses`).
    let edgeClasses: [Int]?

    var nb = 0, nodes = 0, edges = 0
    var src: [Int32] = [], dst: [Int32] = []
    var rowStart: [Int] = []
    var nodeScale: [S] = []

    let feat = Buffer<S>(), xin = Buffer<S>(), x = Buffer<S>(), attribute = Buffer<S>()
    /// Cosine envelope c_e of each edge's input distance and dc/da (a = r²); unused when hard.
    let envelope = Buffer<S>(), envelopeSlope = Buffer<S>()
    let smooth: Bool
    let gradient: Buffer<S>
    // Per layer.
    var hs: [Buffer<S>] = [], diff: [Buffer<S>] = [], radial: [Buffer<S>] = []
    var s1: [Buffer<S>] = [], a1: [Buffer<S>] = [], s2: [Buffer<S>] = [], m: [Buffer<S>] = []
    var s3: [Buffer<S>] = [], c1: [Buffer<S>] = [], psi: [Buffer<S>] = []
    var aggm: [Buffer<S>] = [], s4: [Buffer<S>] = [], a4: [Buffer<S>] = []
    // Scratch.
    let ab = Buffer<S>(), t1 = Buffer<S>(), t2 = Buffer<S>(), gn1 = Buffer<S>(), gn2 = Buffer<S>()
    let wt = Buffer<S>()
    let gh = Buffer<S>(), gx = Buffer<S>(), gdiff = Buffer<S>(), gphi = Buffer<S>(), gattr = Buffer<S>()

    init(configuration c: EGNNConfiguration, layout: ParameterLayout) {
        configuration = c
        self.layout = layout
        n = c.particles; d = c.dimension; h = c.hidden; layerCount = c.layers
        features = c.nodeFeatureCount
        box = c.box.map { $0.map { S($0) } }
        cutoffSquared = c.cutoff.map { S($0 * $0) }
        tanhRange = c.tanhRange.map { S($0) }
        mean = c.aggregation == .mean
        removeMean = c.subtractsMean
        edgeClasses = c.edgeClasses
        smooth = c.envelope == .cosine && c.cutoff != nil
        gradient = Buffer<S>(layout.count)
        func make() -> [Buffer<S>] { (0..<c.layers).map { _ in Buffer<S>() } }
        hs = make(); diff = make(); radial = make(); s1 = make(); a1 = make(); s2 = make(); m = make()
        s3 = make(); c1 = make(); psi = make(); aggm = make(); s4 = make(); a4 = make()
    }

    @inline(__always)
    func minimumImage(_ t: S, _ k: Int) -> S {
        guard let box else { return t }
        return Space.minimumImage(t, edge: box[k])
    }

    /// Edge list sorted by source node: full graph, or the cutoff graph of the input positions.
    func buildGraph(_ pos: UnsafePointer<S>) {
        src.removeAll(keepingCapacity: true)
        dst.removeAll(keepingCapacity: true)
        rowStart.removeAll(keepingCapacity: true)
        nodeScale.removeAll(keepingCapacity: true)
        for b in 0..<nb {
            for i in 0..<n {
                let gi = b * n + i
                rowStart.append(src.count)
                for j in 0..<n where j != i {
                    let gj = b * n + j
                    if let rc2 = cutoffSquared {
                        var r: S = 0
                        for k in 0..<d {
                            let t = minimumImage(pos[gi * d + k] - pos[gj * d + k], k)
                            r += t * t
                        }
                        if r >= rc2 { continue }
                    }
                    src.append(Int32(gi))
                    dst.append(Int32(gj))
                }
                let degree = src.count - rowStart[gi]
                nodeScale.append(mean && degree > 0 ? 1 / S(degree) : 1)
            }
        }
        rowStart.append(src.count)
        edges = src.count
    }

    /// `conditions`: [batch, conditionCount] scalars, or nil for zeros.
    func forward(parameters p: UnsafePointer<S>, positions: UnsafePointer<S>, times: UnsafePointer<S>,
                 conditions: UnsafePointer<S>?, batch: Int, output: UnsafeMutablePointer<S>) {
        nb = batch
        nodes = nb * n
        let N = nodes, H = h
        buildGraph(positions)
        let E = edges
        // Storage.
        feat.reserve(N * features); xin.reserve(N * d); x.reserve(N * d); attribute.reserve(E)
        envelope.reserve(E); envelopeSlope.reserve(E)
        for l in 0..<layerCount {
            hs[l].reserve(N * H); diff[l].reserve(E * d); radial[l].reserve(E)
            s1[l].reserve(E * H); a1[l].reserve(E * H); s2[l].reserve(E * H); m[l].reserve(E * H)
            s3[l].reserve(E * H); c1[l].reserve(E * H); psi[l].reserve(E)
            if l < layerCount - 1 { aggm[l].reserve(N * H); s4[l].reserve(N * H); a4[l].reserve(N * H) }
        }
        ab.reserve(N * 2 * H)
        xin.p.update(from: positions, count: N * d)
        x.p.update(from: positions, count: N * d)

        // Node features and embedding.
        let tf = configuration.timeEmbedding.featureCount, cc = configuration.conditionCount
        let f = feat.p
        f.update(repeating: 0, count: N * features)
        for b in 0..<nb {
            let t = times[b]
            for i in 0..<n {
                let row = f + (b * n + i) * features
                switch configuration.timeEmbedding {
                case .scalar: row[0] = t
                case .sinusoidal(let k):
                    var w = S.pi
                    for q in 0..<k {
                        row[2 * q] = S.elementarySin(w * t)
                        row[2 * q + 1] = S.elementaryCos(w * t)
                        w += w
                    }
                }
                if let conditions { for q in 0..<cc { row[tf + q] = conditions[b * cc + q] } }
                if let types = configuration.typeIds { row[tf + cc + types[i]] = 1 }
            }
            if let centres = configuration.chiralCentres {
                let column = features - 1
                for q in centres {
                    f[(b * n + q[0]) * features + column] = Self.signedVolume(positions + b * n * d, q).value
                }
            }
        }
        S.gemm(transA: false, transB: false, m: N, n: H, k: features, alpha: 1, a: f, lda: features,
               b: p + layout.embeddingWeight, ldb: H, beta: 0, c: hs[0].p, ldc: H)
        Kernels.addBias(hs[0].p, p + layout.embeddingBias, rows: N, cols: H)

        let srcp = src.withUnsafeBufferPointer { $0.baseAddress! }
        let dstp = dst.withUnsafeBufferPointer { $0.baseAddress! }
        for l in 0..<layerCount {
            let L = layout.layers[l]
            let hl = hs[l].p, xs = x.p, df = diff[l].p, rr = radial[l].p
            // radial: displacements and squared distances.
            for e in 0..<E {
                let i = Int(srcp[e]), j = Int(dstp[e])
                var r: S = 0
                for k in 0..<d {
                    let t = minimumImage(xs[i * d + k] - xs[j * d + k], k)
                    df[e * d + k] = t
                    r += t * t
                }
                rr[e] = r
            }
            if l == 0 {
                attribute.p.update(from: rr, count: E)
                if smooth {
                    // c = ½(cos(πr/r_c) + 1); dc/da = −π sin(πr/r_c) / (4 r_c r), a = r².
                    let rc = S(configuration.cutoff!), env = envelope.p, slope = envelopeSlope.p
                    for e in 0..<E {
                        let r = rr[e].squareRoot(), w = S.pi * r / rc
                        env[e] = (S.elementaryCos(w) + 1) / 2
                        slope[e] = r > 0 ? -S.pi * S.elementarySin(w) / (4 * rc * r) : -S.pi * S.pi / (4 * rc * rc)
                    }
                }
            }
            // edgeMessage, first linear split per node: [A | B] = h · [W_src | W_dst].
            S.gemm(transA: false, transB: false, m: N, n: 2 * H, k: H, alpha: 1, a: hl, lda: H,
                   b: p + L.edgeNode, ldb: 2 * H, beta: 0, c: ab.p, ldc: 2 * H)
            let z1 = s1[l].p, wr = p + L.edgeRadial, wa = p + L.edgeAttribute, b1 = p + L.edgeBias1
            let at = attribute.p, abp = ab.p
            for e in 0..<E {
                let A = abp + Int(srcp[e]) * 2 * H, B = abp + Int(dstp[e]) * 2 * H + H
                let z = z1 + e * H, r = rr[e], a = at[e]
                for k in 0..<H { z[k] = A[k] + B[k] + wr[k] * r + wa[k] * a + b1[k] }
            }
            if let classes = edgeClasses, let wc = L.edgeClass {
                for e in 0..<E {
                    let w = p + wc + classes[(Int(srcp[e]) % n) * n + Int(dstp[e]) % n] * H, z = z1 + e * H
                    for k in 0..<H { z[k] += w[k] }
                }
            }
            S.siluForward(z1, activation: a1[l].p, count: E * H)
            // edgeMessage, second linear.
            S.gemmBiasSiLU(m: E, n: H, k: H, a: a1[l].p, b: p + L.edgeWeight2, bias: p + L.edgeBias2,
                           sigmoid: s2[l].p, activation: m[l].p)
            // coordinateUpdate: φ = w_cᵀ SiLU(W_c m + b_c).
            S.gemmBiasSiLU(m: E, n: H, k: H, a: m[l].p, b: p + L.coordWeight1, bias: p + L.coordBias1,
                           sigmoid: s3[l].p, activation: c1[l].p)
            let wc = p + L.coordWeight2, ps = psi[l].p, cc = c1[l].p
            for e in 0..<E {
                let phi = Kernels.dot(cc + e * H, wc, H)
                if let range = tanhRange { ps[e] = range * S.elementaryTanh(phi) } else { ps[e] = phi }
            }
            for i in 0..<N {
                let scale = nodeScale[i]
                for k in 0..<d {
                    var acc: S = 0
                    for e in rowStart[i]..<rowStart[i + 1] {
                        acc += df[e * d + k] / (rr[e].squareRoot() + 1) * ps[e] * (smooth ? envelope.p[e] : 1)
                    }
                    xs[i * d + k] += scale * acc
                }
            }
            // nodeUpdate (not for the last layer).
            if l < layerCount - 1, let wn1 = L.nodeWeight1, let bn1 = L.nodeBias1,
               let wn2 = L.nodeWeight2, let bn2 = L.nodeBias2 {
                let ag = aggm[l].p, mm = m[l].p
                for i in 0..<N {
                    let out = ag + i * H
                    out.update(repeating: 0, count: H)
                    for e in rowStart[i]..<rowStart[i + 1] {
                        let row = mm + e * H
                        if smooth {
                            let c = envelope.p[e]
                            for k in 0..<H { out[k] += c * row[k] }
                        } else {
                            for k in 0..<H { out[k] += row[k] }
                        }
                    }
                    let scale = nodeScale[i]
                    if scale != 1 { for k in 0..<H { out[k] *= scale } }
                }
                S.gemm(transA: false, transB: false, m: N, n: H, k: H, alpha: 1, a: hl, lda: H,
                       b: p + wn1, ldb: H, beta: 0, c: s4[l].p, ldc: H)
                S.gemm(transA: false, transB: false, m: N, n: H, k: H, alpha: 1, a: ag, lda: H,
                       b: p + wn1 + H * H, ldb: H, beta: 1, c: s4[l].p, ldc: H)
                Kernels.addBias(s4[l].p, p + bn1, rows: N, cols: H)
                S.siluForward(s4[l].p, activation: a4[l].p, count: N * H)
                let hn = hs[l + 1].p
                hn.update(from: hl, count: N * H)
                S.gemm(transA: false, transB: false, m: N, n: H, k: H, alpha: 1, a: a4[l].p, lda: H,
                       b: p + wn2, ldb: H, beta: 1, c: hn, ldc: H)
                Kernels.addBias(hn, p + bn2, rows: N, cols: H)
            }
        }
        // Output: x^L − x^0, centred per configuration.
        for q in 0..<(N * d) { output[q] = x.p[q] - xin.p[q] }
        if removeMean { Self.subtractMean(output, batch: nb, n: n, d: d) }
    }

    /// out = wᵀ for a square h×h matrix.
    /// v = a·(b×c) / (|a||b||c|), a = x_a − x_i etc. for q = [i, a, b, c] in one configuration's
    /// positions [n·3], and dv/dx of the four atoms in q's order [4·3].
    static func signedVolume(_ x: UnsafePointer<S>, _ q: [Int]) -> (value: S, gradient: [S]) {
        func vector(_ atom: Int) -> (S, S, S) {
            (x[3 * atom] - x[3 * q[0]], x[3 * atom + 1] - x[3 * q[0] + 1], x[3 * atom + 2] - x[3 * q[0] + 2])
        }
        func cross(_ u: (S, S, S), _ v: (S, S, S)) -> (S, S, S) {
            (u.1 * v.2 - u.2 * v.1, u.2 * v.0 - u.0 * v.2, u.0 * v.1 - u.1 * v.0)
        }
        func dot(_ u: (S, S, S), _ v: (S, S, S)) -> S { u.0 * v.0 + u.1 * v.1 + u.2 * v.2 }
        let a = vector(q[1]), b = vector(q[2]), c = vector(q[3])
        let aa = dot(a, a), bb = dot(b, b), cc = dot(c, c)
        let norm = (aa * bb * cc).squareRoot()
        guard norm > 0 else { return (0, [S](repeating: 0, count: 12)) }
        let bc = cross(b, c), ca = cross(c, a), ab = cross(a, b)
        let v = dot(a, bc) / norm
        // dv/da = (b×c)/(|a||b||c|) − v a/|a|², and cyclically.
        let ga = (bc.0 / norm - v * a.0 / aa, bc.1 / norm - v * a.1 / aa, bc.2 / norm - v * a.2 / aa)
        let gb = (ca.0 / norm - v * b.0 / bb, ca.1 / norm - v * b.1 / bb, ca.2 / norm - v * b.2 / bb)
        let gc = (ab.0 / norm - v * c.0 / cc, ab.1 / norm - v * c.1 / cc, ab.2 / norm - v * c.2 / cc)
        let gi = (-(ga.0 + gb.0 + gc.0), -(ga.1 + gb.1 + gc.1), -(ga.2 + gb.2 + gc.2))
        return (v, [gi.0, gi.1, gi.2, ga.0, ga.1, ga.2, gb.0, gb.1, gb.2, gc.0, gc.1, gc.2])
    }

    static func transpose(_ w: UnsafePointer<S>, _ h: Int, into out: UnsafeMutablePointer<S>) {
        for r in 0..<h { for c in 0..<h { out[c * h + r] = w[r * h + c] } }
    }

    static func subtractMean(_ v: UnsafeMutablePointer<S>, batch: Int, n: Int, d: Int) {
        for b in 0..<batch {
            let base = v + b * n * d
            for k in 0..<d {
                var s: S = 0
                for i in 0..<n { s += base[i * d + k] }
                s /= S(n)
                for i in 0..<n { base[i * d + k] -= s }
            }
        }
    }

    func backward(parameters p: UnsafePointer<S>, outputGradient: UnsafePointer<S>,
                  inputGradient: UnsafeMutablePointer<S>) {
        let N = nodes, E = edges, H = h
        let G = gradient.p
        G.update(repeating: 0, count: layout.count)
        t1.reserve(E * H); t2.reserve(E * H); gn1.reserve(N * H); gn2.reserve(N * H)
        gh.reserve(N * H); gx.reserve(N * d); gdiff.reserve(E * d); gphi.reserve(E); gattr.reserve(E)
        ab.reserve(N * 2 * H); wt.reserve(H * H)
        let gxp = gx.p, ghp = gh.p, ga = gattr.p
        // dL/dx^L = P·g (P the mean projection, symmetric).
        gxp.update(from: outputGradient, count: N * d)
        if removeMean { Self.subtractMean(gxp, batch: nb, n: n, d: d) }
        // Direct path v = x^L − x^0: dL/dx^0 gets −P·g.
        for q in 0..<(N * d) { inputGradient[q] = -gxp[q] }
        ghp.update(repeating: 0, count: N * H)
        ga.update(repeating: 0, count: E)
        let srcp = src.withUnsafeBufferPointer { $0.baseAddress! }
        let dstp = dst.withUnsafeBufferPointer { $0.baseAddress! }

        for l in stride(from: layerCount - 1, through: 0, by: -1) {
            let L = layout.layers[l]
            let hl = hs[l].p, df = diff[l].p, rr = radial[l].p, ps = psi[l].p
            let gm = t2.p, gc = t1.p
            // nodeUpdate backward: gh holds dL/dh^{l+1} on entry, dL/dh^l after.
            if l < layerCount - 1, let wn1 = L.nodeWeight1, let bn1 = L.nodeBias1,
               let wn2 = L.nodeWeight2, let bn2 = L.nodeBias2 {
                S.gemm(transA: true, transB: false, m: H, n: H, k: N, alpha: 1, a: a4[l].p, lda: H,
                       b: ghp, ldb: H, beta: 1, c: G + wn2, ldc: H)
                Kernels.addColumnSums(ghp, rows: N, cols: H, into: G + bn2)
                S.gemm(transA: false, transB: true, m: N, n: H, k: H, alpha: 1, a: ghp, lda: H,
                       b: p + wn2, ldb: H, beta: 0, c: gn1.p, ldc: H)
                Kernels.siluBackward(gn1.p, sigmoid: s4[l].p, activation: a4[l].p, count: N * H)
                S.gemm(transA: true, transB: false, m: H, n: H, k: N, alpha: 1, a: hl, lda: H,
                       b: gn1.p, ldb: H, beta: 1, c: G + wn1, ldc: H)
                S.gemm(transA: true, transB: false, m: H, n: H, k: N, alpha: 1, a: aggm[l].p, lda: H,
                       b: gn1.p, ldb: H, beta: 1, c: G + wn1 + H * H, ldc: H)
                Kernels.addColumnSums(gn1.p, rows: N, cols: H, into: G + bn1)
                S.gemm(transA: false, transB: true, m: N, n: H, k: H, alpha: 1, a: gn1.p, lda: H,
                       b: p + wn1 + H * H, ldb: H, beta: 0, c: gn2.p, ldc: H)
                S.gemm(transA: false, transB: true, m: N, n: H, k: H, alpha: 1, a: gn1.p, lda: H,
                       b: p + wn1, ldb: H, beta: 1, c: ghp, ldc: H)
                // dL/dm_e from the aggregation.
                let g2 = gn2.p
                let mm = m[l].p
                for i in 0..<N {
                    let scale = nodeScale[i], gi = g2 + i * H
                    for e in rowStart[i]..<rowStart[i + 1] {
                        let row = gm + e * H
                        if smooth {
                            // agg_i = scale Σ_e c_e m_e: dL/dm_e = scale c_e g_i, dL/dc_e = scale g_i·m_e.
                            let c = envelope.p[e], me = mm + e * H
                            var gcE: S = 0
                            for k in 0..<H { row[k] = scale * c * gi[k]; gcE += gi[k] * me[k] }
                            ga[e] += scale * gcE * envelopeSlope.p[e]
                        } else {
                            for k in 0..<H { row[k] = scale * gi[k] }
                        }
                    }
                }
            } else {
                gm.update(repeating: 0, count: E * H)
            }
            // coordinateUpdate backward.
            let gd = gdiff.p, gp = gphi.p
            for i in 0..<N {
                let scale = nodeScale[i]
                for e in rowStart[i]..<rowStart[i + 1] {
                    let q = rr[e].squareRoot(), s = 1 / (q + 1)
                    var gpsi: S = 0, gnd: S = 0
                    for k in 0..<d {
                        let g = scale * gxp[i * d + k]
                        gpsi += g * df[e * d + k] * s
                        gnd += g * df[e * d + k]  // g_nd · diff (before ψ)
                    }
                    // nd = diff·s, ∂nd/∂diff = s·I − (s²/q)·diff diffᵀ. With the envelope the
                    // weight is ψ_e c_e: dL/dψ_e = c_e·gpsi, dL/dc_e = ψ_e·gpsi.
                    let c: S = smooth ? envelope.p[e] : 1
                    if smooth { ga[e] += ps[e] * gpsi * envelopeSlope.p[e]; gpsi *= c }
                    let psiE = ps[e] * c
                    let radialTerm = q > 0 ? psiE * s * s / q * gnd : 0
                    for k in 0..<d {
                        gd[e * d + k] = psiE * s * scale * gxp[i * d + k] - radialTerm * df[e * d + k]
                    }
                    if let range = tanhRange {
                        let t = ps[e] / range
                        gp[e] = gpsi * range * (1 - t * t)
                    } else {
                        gp[e] = gpsi
                    }
                }
            }
            let wc = p + L.coordWeight2, cc = c1[l].p, gwc = G + L.coordWeight2, sg3 = s3[l].p
            for e in 0..<E {
                let g = gp[e], row = gc + e * H, crow = cc + e * H, srow = sg3 + e * H
                for k in 0..<H {
                    let si = srow[k], ai = crow[k]
                    row[k] = g * wc[k] * (si + ai * (1 - si))  // SiLU backward fused
                    gwc[k] += g * ai
                }
            }
            S.gemm(transA: true, transB: false, m: H, n: H, k: E, alpha: 1, a: m[l].p, lda: H,
                   b: gc, ldb: H, beta: 1, c: G + L.coordWeight1, ldc: H)
            Kernels.addColumnSums(gc, rows: E, cols: H, into: G + L.coordBias1)
            // E-row products with Wᵀ: transpose the small weight once, so the
            // product is a plain row-major GEMM (micro-kernel for Float).
            Self.transpose(p + L.coordWeight1, H, into: wt.p)
            // … and edgeMessage's second SiLU backward fused into it.
            S.gemmSiLUBackward(m: E, n: H, k: H, a: gc, b: wt.p, accumulate: true, c: gm,
                               sigmoid: s2[l].p, activation: m[l].p)
            S.gemm(transA: true, transB: false, m: H, n: H, k: E, alpha: 1, a: a1[l].p, lda: H,
                   b: gm, ldb: H, beta: 1, c: G + L.edgeWeight2, ldc: H)
            Kernels.addColumnSums(gm, rows: E, cols: H, into: G + L.edgeBias2)
            Self.transpose(p + L.edgeWeight2, H, into: wt.p)
            S.gemmSiLUBackward(m: E, n: H, k: H, a: gm, b: wt.p, accumulate: false, c: gc,
                               sigmoid: s1[l].p, activation: a1[l].p)
            // First linear: bias, radial and attribute weights, per-node split.
            let wr = p + L.edgeRadial, wa = p + L.edgeAttribute, at = attribute.p
            let gwr = G + L.edgeRadial, gwa = G + L.edgeAttribute, gb1 = G + L.edgeBias1
            let gab = ab.p
            gab.update(repeating: 0, count: N * 2 * H)
            for i in 0..<N {
                let gA = gab + i * 2 * H
                for e in rowStart[i]..<rowStart[i + 1] {
                    let row = gc + e * H, r = rr[e], a = at[e]
                    let gB = gab + Int(dstp[e]) * 2 * H + H
                    var gr: S = 0, gat: S = 0
                    for k in 0..<H {
                        let g = row[k]
                        gwr[k] += g * r
                        gwa[k] += g * a
                        gr += g * wr[k]
                        gat += g * wa[k]
                        gA[k] += g
                        gB[k] += g
                    }
                    ga[e] += gat
                    for k in 0..<d { gd[e * d + k] += 2 * gr * df[e * d + k] }
                }
            }
            if let classes = edgeClasses, let wc = L.edgeClass {
                for e in 0..<E {
                    let g = G + wc + classes[(Int(srcp[e]) % n) * n + Int(dstp[e]) % n] * H, row = gc + e * H
                    for k in 0..<H { g[k] += row[k] }
                }
            }
            // b₁'s gradient is Σ_e g_z1 = Σ_i (gA)_i.
            for i in 0..<N {
                let gA = gab + i * 2 * H
                for k in 0..<H { gb1[k] += gA[k] }
            }
            S.gemm(transA: true, transB: false, m: H, n: 2 * H, k: N, alpha: 1, a: hl, lda: H,
                   b: gab, ldb: 2 * H, beta: 1, c: G + L.edgeNode, ldc: 2 * H)
            S.gemm(transA: false, transB: true, m: N, n: H, k: 2 * H, alpha: 1, a: gab, lda: 2 * H,
                   b: p + L.edgeNode, ldb: 2 * H, beta: 1, c: ghp, ldc: H)
            // Displacements back to positions (minimum image is locally the identity).
            for e in 0..<E {
                let i = Int(srcp[e]), j = Int(dstp[e])
                for k in 0..<d {
                    let g = gd[e * d + k]
                    gxp[i * d + k] += g
                    gxp[j * d + k] -= g
                }
            }
        }
        // Embedding.
        S.gemm(transA: true, transB: false, m: features, n: H, k: N, alpha: 1, a: feat.p, lda: features,
               b: ghp, ldb: H, beta: 1, c: G + layout.embeddingWeight, ldc: H)
        Kernels.addColumnSums(ghp, rows: N, cols: H, into: G + layout.embeddingBias)
        // A chiral centre's signed volume: dL/dv = dL/dh⁰_i · W_emb[v's row], then dv/dx.
        if let centres = configuration.chiralCentres {
            let w = p + layout.embeddingWeight + (features - 1) * H
            for b in 0..<nb {
                for q in centres {
                    let node = b * n + q[0]
                    var g: S = 0
                    for k in 0..<H { g += ghp[node * H + k] * w[k] }
                    let (_, dv) = Self.signedVolume(xin.p + b * n * d, q)
                    for (slot, atom) in q.enumerated() {
                        for k in 0..<3 { gxp[(b * n + atom) * d + k] += g * dv[3 * slot + k] }
                    }
                }
            }
        }
        // Edge attribute a_ij = |x⁰_i − x⁰_j|².
        let d0 = diff[0].p
        for e in 0..<E {
            let i = Int(srcp[e]), j = Int(dstp[e]), g = 2 * ga[e]
            for k in 0..<d {
                gxp[i * d + k] += g * d0[e * d + k]
                gxp[j * d + k] -= g * d0[e * d + k]
            }
        }
        for q in 0..<(N * d) { inputGradient[q] += gxp[q] }
    }
}
