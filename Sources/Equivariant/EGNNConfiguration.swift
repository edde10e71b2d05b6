/// How messages and coordinate updates are pooled over a node's neighbours.
public enum Aggregation: String, Codable, Sendable {
    /// Σ_j (DEM `agg="sum"`).
    case sum
    /// (1/deg_i) Σ_j, deg_i the node's neighbour count (EGNN paper's mean
    /// aggregation; keeps updates O(1) as the particle count grows).
    case mean
}

/// How an edge's weight falls to zero at the graph cutoff r_c.
public enum CutoffEnvelope: String, Codable, Sendable {
    /// Every edge inside the cutoff counts fully (the field jumps when a pair crosses r_c).
    case hard
    /// Messages and coordinate weights are multiplied by c(r) = ½(cos(π r/r_c) + 1) of the
    /// input distance (SchNet/DimeNet-style cosine cutoff): the field is continuous (C¹)
    /// across the cutoff.
    case cosine
}

/// How the diffusion time t enters the node features.
public enum TimeEmbedding: Codable, Equatable, Sendable {
    /// t itself as one feature (DEM `EGNN_dynamics`: h = t·1).
    case scalar
    /// [sin(ω_k t), cos(ω_k t)] for k = 0..<frequencies, ω_k = π·2^k.
    case sinusoidal(frequencies: Int)

    /// Number of node features it produces.
    public var featureCount: Int {
        switch self {
        case .scalar: return 1
        case .sinusoidal(let k): return 2 * k
        }
    }
}

/// Everything that fixes the EGNN's parameter layout and its function.
/// Typed and nested; passed explicitly (no globals, no string flags).
public struct EGNNConfiguration: Codable, Equatable, Sendable {
    /// Particles per configuration, n.
    public var particles: Int
    /// Spatial dimension d (2 or 3).
    public var dimension: Int
    /// Hidden width H of every MLP.
    public var hidden: Int = 64
    /// Number of E_GCL layers.
    public var layers: Int = 4
    public var aggregation: Aggregation = .sum
    /// When set, coordinate weights are `tanhRange · tanh(φ)` (EGNN paper's
    /// `tanh=True` with `coords_range`), bounding each step.
    public var tanhRange: Double? = nil
    /// Per-particle type index (0-based), one-hot encoded into the node
    /// features (e.g. the 22 atoms of alanine dipeptide). nil: no types.
    public var typeIds: [Int]? = nil
    /// Periodic box edge lengths (one per axis); nil for a free cluster.
    public var box: [Double]? = nil
    /// Interaction graph cutoff (input-coordinate minimum-image distance);
    /// nil: fully connected. Must be < half of every box edge.
    public var cutoff: Double? = nil
    public var timeEmbedding: TimeEmbedding = .scalar
    /// Subtract the per-configuration mean of the output (zero centre of
    /// mass). nil: true for free clusters, false for periodic boxes.
    public var removeMean: Bool? = nil
    /// Xavier-uniform gain of the last coordinate layer (DEM/EGNN: 0.001, so
    /// the initial vector field is almost zero).
    public var coordinateGain: Double = 0.001
    /// Weight of an edge near the cutoff (nil: `.hard`). Only with a `cutoff`.
    public var envelope: CutoffEnvelope? = nil
    /// Class of every particle pair [n·n] (symmetric, values 0..<K), e.g. bonded, 1–3, 1–4 or
    /// non-bonded along a molecule's bond graph: each class adds its own learned vector to the
    /// first linear of the edge message. nil: no edge classes.
    public var edgeClasses: [Int]? = nil
    /// Per-configuration conditioning scalars fed to every node after the time features (e.g.
    /// ln β of a temperature-conditioned sampler); nil: none.
    public var conditions: Int? = nil
    /// Chiral centres of a molecule, [centre, a, b, c] each: the node `centre` gets one more input
    /// feature, the normalised signed volume v = (x_a−x_i)·((x_b−x_i)×(x_c−x_i)) / (|·||·||·|) of
    /// its three listed neighbours (0 at every other node). v changes sign under a reflection, so
    /// the network is then equivariant under rotations and translations but not reflections
    /// (SE(3), not E(3)): it can tell a molecule from its mirror image and tie the backbone's
    /// torsions to the handedness of its centres. 3-D, free space only. nil: E(3).
    public var chiralCentres: [[Int]]? = nil

    public init(particles: Int, dimension: Int, hidden: Int = 64, layers: Int = 4,
                aggregation: Aggregation = .sum, tanhRange: Double? = nil, typeIds: [Int]? = nil,
                box: [Double]? = nil, cutoff: Double? = nil, timeEmbedding: TimeEmbedding = .scalar,
                removeMean: Bool? = nil, coordinateGain: Double = 0.001, envelope: CutoffEnvelope? = nil) {
        self.particles = particles
        self.dimension = dimension
        self.hidden = hidden
        self.layers = layers
        self.aggregation = aggregation
        self.tanhRange = tanhRange
        self.typeIds = typeIds
        self.box = box
        self.cutoff = cutoff
        self.timeEmbedding = timeEmbedding
        self.removeMean = removeMean
        self.coordinateGain = coordinateGain
        self.envelope = envelope
    }

    /// Number of distinct types (max id + 1), 0 without types.
    public var typeCount: Int { (typeIds?.max() ?? -1) + 1 }
    /// Number of edge classes K (0 without).
    public var edgeClassCount: Int { (edgeClasses?.max() ?? -1) + 1 }
    /// Conditioning scalars per configuration (0 without).
    public var conditionCount: Int { conditions ?? 0 }
    /// 1 when the network sees chirality (`chiralCentres`), else 0.
    public var chiralityFeatureCount: Int { chiralCentres?.isEmpty == false ? 1 : 0 }
    /// Node input features: time features, the conditioning scalars, the type one-hot, then the
    /// signed volume of a chiral centre.
    public var nodeFeatureCount: Int { timeEmbedding.featureCount + conditionCount + typeCount + chiralityFeatureCount }
    public var subtractsMean: Bool { removeMean ?? (box == nil) }

    /// The space the network measures displacements in.
    public var space: Space {
        if let box { return Space(particles: particles, box: box) }
        return Space(particles: particles, dimension: dimension, kind: subtractsMean ? .centred : .free)
    }

    /// - Throws: `EquivariantError.invalidConfiguration` naming the field.
    public func validate() throws {
        func fail(_ s: String) throws -> Never { throw EquivariantError.invalidConfiguration(s) }
        if particles < 2 { try fail("particles must be ≥ 2 (got \(particles))") }
        if dimension < 1 || dimension > 3 { try fail("dimension must be 1, 2 or 3 (got \(dimension))") }
        if hidden < 1 { try fail("hidden must be ≥ 1 (got \(hidden))") }
        if layers < 1 { try fail("layers must be ≥ 1 (got \(layers))") }
        if case .sinusoidal(let k) = timeEmbedding, k < 1 { try fail("sinusoidal frequencies must be ≥ 1") }
        if let typeIds {
            if typeIds.count != particles { try fail("typeIds has \(typeIds.count) entries, particles is \(particles)") }
            if typeIds.contains(where: { $0 < 0 }) { try fail("typeIds must be ≥ 0") }
        }
        if let box {
            if box.count != dimension { try fail("box has \(box.count) edges, dimension is \(dimension)") }
            if box.contains(where: { !($0 > 0) }) { try fail("box edges must be positive") }
        }
        if let cutoff {
            if !(cutoff > 0) { try fail("cutoff must be positive") }
            if let box, let minEdge = box.min(), cutoff >= minEdge / 2 {
                try fail("cutoff \(cutoff) must be below half the smallest box edge (\(minEdge / 2))")
            }
        }
        if let r = tanhRange, !(r > 0) { try fail("tanhRange must be positive") }
        if envelope == .cosine && cutoff == nil { try fail("a cosine envelope needs a cutoff") }
        if let centres = chiralCentres {
            if dimension != 3 || box != nil { try fail("chiral centres need 3-D free space") }
            for q in centres where q.count != 4 || Set(q).count != 4 || q.contains(where: { $0 < 0 || $0 >= particles }) {
                try fail("a chiral centre is [centre, a, b, c]: four distinct particles below \(particles) (got \(q))")
            }
            if Set(centres.map { $0[0] }).count != centres.count { try fail("a chiral centre is listed twice") }
        }
        if let conditions, conditions < 0 { try fail("conditions must be ≥ 0 (got \(conditions))") }
        if let edgeClasses {
            if edgeClasses.count != particles * particles { try fail("edgeClasses has \(edgeClasses.count) entries, expected particles² = \(particles * particles)") }
            if edgeClasses.contains(where: { $0 < 0 }) { try fail("edge classes must be ≥ 0") }
            for i in 0..<particles { for j in 0..<i where edgeClasses[i * particles + j] != edgeClasses[j * particles + i] {
                try fail("edgeClasses must be symmetric (pair \(i), \(j))")
            } }
        }
    }
}

/// Errors of this module; each message says what was wrong and where.
public enum EquivariantError: Error, CustomStringConvertible, Equatable {
    case invalidConfiguration(String)
    case invalidInput(String)
    case corruptFile(String)
    case shapeMismatch(String)

    public var description: String {
        switch self {
        case .invalidConfiguration(let s): return "invalid EGNN configuration: \(s)"
        case .invalidInput(let s): return "invalid input: \(s)"
        case .corruptFile(let s): return "corrupt parameter file: \(s)"
        case .shapeMismatch(let s): return "parameter file does not match the model: \(s)"
        }
    }
}

/// SplitMix64: the module's seeded generator for parameter initialisation.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [lower, upper).
    public mutating func uniform(_ lower: Double, _ upper: Double) -> Double {
        lower + (upper - lower) * Double(next() >> 11) * 0x1.0p-53
    }
}
