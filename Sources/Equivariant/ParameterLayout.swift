/// Where each weight lives in the flat parameter buffer. Weights are stored
/// [in, out] row-major (y = x·W + b), so a layer is one GEMM on row batches.
/// The gradient buffer has the same layout.
public struct ParameterLayout: Equatable, Sendable {
    /// One named block: offset into the flat buffer and its shape.
    public struct Entry: Equatable, Sendable {
        public var name: String
        public var offset: Int
        public var shape: [Int]
        public var count: Int { shape.reduce(1, *) }
    }

    /// Offsets of one E_GCL layer (`nodeMLP` fields are nil for the last
    /// layer: its node update would not reach the coordinate output).
    public struct Layer: Equatable, Sendable {
        /// radial / edgeMessage, first linear split per docs/equivariant.md (the engine):
        /// W·[h_i, h_j, d²_ij, a_ij] = (h·W_src)_i + (h·W_dst)_j + w_r d²_ij + w_a a_ij.
        /// `edgeNode` is [H, 2H] = [W_src | W_dst].
        public var edgeNode: Int, edgeRadial: Int, edgeAttribute: Int, edgeBias1: Int
        /// edgeMessage second linear [H, H] + bias.
        public var edgeWeight2: Int, edgeBias2: Int
        /// coordinateUpdate: [H, H] + bias, then [H, 1] without bias.
        public var coordWeight1: Int, coordBias1: Int, coordWeight2: Int
        /// nodeUpdate: [2H, H] + bias (input [h, Σm]), then [H, H] + bias.
        public var nodeWeight1: Int?, nodeBias1: Int?, nodeWeight2: Int?, nodeBias2: Int?
        /// edgeMessage, first linear: one vector per edge class [K, H] (with `edgeClasses`).
        public var edgeClass: Int? = nil
    }

    public private(set) var entries: [Entry] = []
    public private(set) var embeddingWeight = 0, embeddingBias = 0
    public private(set) var layers: [Layer] = []
    public private(set) var count = 0

    public init(configuration c: EGNNConfiguration) {
        let h = c.hidden
        func add(_ name: String, _ shape: [Int]) -> Int {
            let e = Entry(name: name, offset: count, shape: shape)
            entries.append(e)
            count += e.count
            return e.offset
        }
        embeddingWeight = add("embedding.weight", [c.nodeFeatureCount, h])
        embeddingBias = add("embedding.bias", [h])
        for l in 0..<c.layers {
            let p = "layer\(l)."
            var layer = Layer(
                edgeNode: add(p + "edge.nodeWeight", [h, 2 * h]),
                edgeRadial: add(p + "edge.radialWeight", [h]),
                edgeAttribute: add(p + "edge.attributeWeight", [h]),
                edgeBias1: add(p + "edge.bias1", [h]),
                edgeWeight2: add(p + "edge.weight2", [h, h]),
                edgeBias2: add(p + "edge.bias2", [h]),
                coordWeight1: add(p + "coordinate.weight1", [h, h]),
                coordBias1: add(p + "coordinate.bias1", [h]),
                coordWeight2: add(p + "coordinate.weight2", [h, 1]))
            if l < c.layers - 1 {
                layer.nodeWeight1 = add(p + "node.weight1", [2 * h, h])
                layer.nodeBias1 = add(p + "node.bias1", [h])
                layer.nodeWeight2 = add(p + "node.weight2", [h, h])
                layer.nodeBias2 = add(p + "node.bias2", [h])
            }
            if c.edgeClassCount > 0 { layer.edgeClass = add(p + "edge.classWeight", [c.edgeClassCount, h]) }
            layers.append(layer)
        }
    }

    public func entry(named name: String) -> Entry? { entries.first { $0.name == name } }
}
