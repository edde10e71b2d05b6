import CBLAS
import Dispatch
import Foundation

/// E(n)-equivariant graph network (Satorras, Hoogeboom & Welling 2021) as a
/// time-conditioned vector field, in the form of iDEM/DEM `EGNN_dynamics`:
///
///     h⁰_i = Embed([time features(t), one-hot(type_i)])
///     per layer l (E_GCL):
///       radial       r_ij = |x_i − x_j|²  (x_i − x_j a minimum image in a box)
///       edgeMessage  m_ij = SiLU(W₂ SiLU(W_src h_i + W_dst h_j + w_r r_ij + w_a a_ij + b₁) + b₂)
///       coordinateUpdate
///                    x_i ← x_i + agg_j (x_i − x_j)/(|x_i − x_j| + 1) · φ(m_ij)
///                    φ(m) = w_cᵀ SiLU(W_c m + b_c)   [· range·tanh when `tanhRange`]
///       nodeUpdate   h_i ← h_i + W_n2 SiLU(W_n1 [h_i, agg_j m_ij] + b_n1) + b_n2
///     output v_i = x_i^L − x_i^0, minus its per-configuration mean for free clusters.
///
/// a_ij is the input's squared distance (DEM's `edge_attr`). Stability
/// tricks, as in the references: the displacement normalisation d/(|d|+1)
/// (DEM `norm_diff`), the small-gain (0.001) Xavier init of w_c (EGNN code),
/// optional tanh with a range (EGNN `tanh=True`, `coords_range`), mean
/// aggregation (paper, sec. 3). The last layer's node update is omitted: it
/// cannot reach the output.
///
/// All parameters live in one flat buffer (`parameters`), all gradients in
/// one flat buffer of the same layout (`gradients`, see `ParameterLayout`),
/// ready for an all-reduce or a checkpoint.
///
/// Usage: `forward` a batch (it keeps what `backward` needs), then
/// `backward(outputGradient:)` accumulates dL/dθ into `gradients` and
/// returns dL/dx. Not thread-safe: one model per thread, or serialise.
public final class EGNN<Scalar: TensorScalar> {
    public let configuration: EGNNConfiguration
    public let layout: ParameterLayout
    /// Flat parameters (layout: `layout`).
    public var parameters: [Scalar]
    /// Flat parameter gradients, same layout; `backward` adds into it.
    public var gradients: [Scalar]
    /// Worker threads the batch is split over (configurations are
    /// independent). OpenBLAS runs single-threaded inside `forward` and
    /// `backward` (set with `openblas_set_num_threads(1)` and restored on
    /// return): splitting the batch beats BLAS threading on these shapes.
    public var threads: Int

    private var workers: [Worker<Scalar>] = []
    private var chunks: [Range<Int>] = []
    private var batch = 0

    /// - Parameters:
    ///   - configuration: architecture; validated.
    ///   - seed: initialisation seed (same seed, same parameters).
    ///   - threads: batch split (default: up to 2, the machine's cores).
    /// - Throws: `EquivariantError.invalidConfiguration`.
    public init(configuration: EGNNConfiguration, seed: UInt64 = 0,
                threads: Int = min(2, ProcessInfo.processInfo.activeProcessorCount)) throws {
        try configuration.validate()
        self.configuration = configuration
        self.layout = ParameterLayout(configuration: configuration)
        self.threads = max(1, threads)
        self.parameters = [Scalar](repeating: 0, count: layout.count)
        self.gradients = [Scalar](repeating: 0, count: layout.count)
        initialize(seed: seed)
    }

    /// Number of scalar parameters.
    public var parameterCount: Int { layout.count }

    /// PyTorch `nn.Linear` defaults (weights and biases U(±1/√fan_in), fan_in of
    /// the unsplit layer) and Xavier-uniform with `coordinateGain` for w_c.
    public func initialize(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let h = configuration.hidden
        func fill(_ offset: Int, _ count: Int, bound: Double) {
            for i in 0..<count { parameters[offset + i] = Scalar(rng.uniform(-bound, bound)) }
        }
        let f = configuration.nodeFeatureCount
        fill(layout.embeddingWeight, f * h, bound: 1 / Double(f).squareRoot())
        fill(layout.embeddingBias, h, bound: 1 / Double(f).squareRoot())
        for l in layout.layers {
            let b1 = 1 / Double(2 * h + 2).squareRoot(), bh = 1 / Double(h).squareRoot()
            fill(l.edgeNode, 2 * h * h, bound: b1)
            fill(l.edgeRadial, h, bound: b1)
            fill(l.edgeAttribute, h, bound: b1)
            fill(l.edgeBias1, h, bound: b1)
            fill(l.edgeWeight2, h * h, bound: bh)
            fill(l.edgeBias2, h, bound: bh)
            fill(l.coordWeight1, h * h, bound: bh)
            fill(l.coordBias1, h, bound: bh)
            fill(l.coordWeight2, h, bound: configuration.coordinateGain * (6 / Double(h + 1)).squareRoot())
            if let w = l.edgeClass { fill(w, configuration.edgeClassCount * h, bound: b1) }
            if let w1 = l.nodeWeight1, let b = l.nodeBias1, let w2 = l.nodeWeight2, let b2 = l.nodeBias2 {
                let bn = 1 / Double(2 * h).squareRoot()
                fill(w1, 2 * h * h, bound: bn)
                fill(b, h, bound: bn)
                fill(w2, h * h, bound: bh)
                fill(b2, h, bound: bh)
            }
        }
    }

    /// Sets every gradient to zero.
    public func zeroGradients() {
        gradients.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
    }

    /// Evaluates the vector field and keeps the intermediates for `backward`.
    ///
    /// - Parameters:
    ///   - positions: [batch, particles, dimension] row-major. In a box they
    ///     need not be wrapped (the network only sees minimum images).
    ///   - times: [batch] diffusion times.
    ///   - conditions: [batch, `configuration.conditionCount`] conditioning scalars (e.g. ln β);
    ///     empty: zeros.
    /// - Returns: v, [batch, particles, dimension].
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    public func forward(positions: [Scalar], times: [Scalar], conditions: [Scalar] = []) -> [Scalar] {
        let n = configuration.particles, d = configuration.dimension, cc = configuration.conditionCount
        precondition(positions.count == times.count * n * d,
                     "positions has \(positions.count) values, expected batch \(times.count) × \(n) × \(d)")
        precondition(conditions.isEmpty || conditions.count == times.count * cc,
                     "conditions has \(conditions.count) values, expected batch \(times.count) × \(cc)")
        batch = times.count
        let workerCount = max(1, min(threads, batch))
        let blasThreads = openblas_get_num_threads()
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(blasThreads) }
        while workers.count < workerCount { workers.append(Worker(configuration: configuration, layout: layout)) }
        chunks = (0..<workerCount).map { w in (batch * w / workerCount)..<(batch * (w + 1) / workerCount) }
        var output = [Scalar](repeating: 0, count: positions.count)
        let stride = n * d
        parameters.withUnsafeBufferPointer { p in
            positions.withUnsafeBufferPointer { x in
                times.withUnsafeBufferPointer { t in
                  conditions.withUnsafeBufferPointer { cb in
                    output.withUnsafeMutableBufferPointer { ob in
                        let o = ob.baseAddress!
                        let work = { (w: Int) in
                            let c = self.chunks[w]
                            self.workers[w].forward(parameters: p.baseAddress!,
                                                    positions: x.baseAddress! + c.lowerBound * stride,
                                                    times: t.baseAddress! + c.lowerBound,
                                                    conditions: cb.isEmpty ? nil : cb.baseAddress! + c.lowerBound * cc,
                                                    batch: c.count, output: o + c.lowerBound * stride)
                        }
                        if workerCount == 1 { work(0) } else { DispatchQueue.concurrentPerform(iterations: workerCount, execute: work) }
                    }
                  }
                }
            }
        }
        return output
    }

    /// Back-propagates dL/dv through the last `forward`.
    ///
    /// - Parameter outputGradient: dL/dv, [batch, particles, dimension].
    /// - Returns: dL/dx for the input positions, same shape.
    /// - Note: adds dL/dθ into `gradients` (call `zeroGradients` between steps).
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    @discardableResult
    public func backward(outputGradient: [Scalar]) -> [Scalar] {
        let n = configuration.particles, d = configuration.dimension, stride = n * d
        precondition(outputGradient.count == batch * stride, "backward: gradient shape differs from the last forward")
        var inputGradient = [Scalar](repeating: 0, count: outputGradient.count)
        let workerCount = chunks.count
        let blasThreads = openblas_get_num_threads()
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(blasThreads) }
        parameters.withUnsafeBufferPointer { p in
            outputGradient.withUnsafeBufferPointer { g in
                inputGradient.withUnsafeMutableBufferPointer { gxb in
                    let gx = gxb.baseAddress!
                    let work = { (w: Int) in
                        let c = self.chunks[w]
                        self.workers[w].backward(parameters: p.baseAddress!,
                                                 outputGradient: g.baseAddress! + c.lowerBound * stride,
                                                 inputGradient: gx + c.lowerBound * stride)
                    }
                    if workerCount == 1 { work(0) } else { DispatchQueue.concurrentPerform(iterations: workerCount, execute: work) }
                }
            }
        }
        let count = layout.count
        gradients.withUnsafeMutableBufferPointer { g in
            for w in 0..<workerCount {
                let local = workers[w].gradient.p
                for i in 0..<count { g[i] += local[i] }
            }
        }
        return inputGradient
    }
}
