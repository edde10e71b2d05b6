import Foundation

/// What made a trajectory, stored as global attributes of its AMBER NetCDF file (issue 23,
/// "provenance in every trajectory"), so that the analysis commands need not be told again and
/// can tell when they are given the wrong system:
///
/// - `ensemble_chains` (int): how many chains the frames are interleaved from (frame f belongs
///   to chain f mod chains), 1 for the independent draws of a trained sampler;
/// - `ensemble_plugin` (text): the energy plugin's name;
/// - `ensemble_plugin_parameters` (text): the parameter string the plugin was created with
///   (KEY=VALUE pairs joined by ';'; absent when empty);
/// - `ensemble_sampler` (text): e.g. "mala", "pt", "langevin", "ghmc", "model dsm";
/// - `ensemble_length_unit_angstrom` (double): Å per plugin length unit used for the coordinates.
///
/// AMBER readers (cpptraj, MDAnalysis, mdtraj, VMD) ignore global attributes they do not know.
public struct TrajectoryProvenance: Equatable, Sendable {
    public var chains: Int?
    public var plugin: String?
    public var pluginParameters: String?
    public var sampler: String?
    public var lengthUnitAngstrom: Double?

    public init(chains: Int? = nil, plugin: String? = nil, pluginParameters: String? = nil, sampler: String? = nil,
                lengthUnitAngstrom: Double? = nil) {
        self.chains = chains
        self.plugin = plugin
        self.pluginParameters = pluginParameters
        self.sampler = sampler
        self.lengthUnitAngstrom = lengthUnitAngstrom
    }

    public enum Key {
        public static let chains = "ensemble_chains"
        public static let plugin = "ensemble_plugin"
        public static let pluginParameters = "ensemble_plugin_parameters"
        public static let sampler = "ensemble_sampler"
        public static let lengthUnitAngstrom = "ensemble_length_unit_angstrom"
    }

    /// The global attributes to write (empty texts are left out: some readers dislike zero-length attributes).
    public var attributes: [String: AmberNetCDFWriter.Attribute] {
        var result: [String: AmberNetCDFWriter.Attribute] = [:]
        if let chains { result[Key.chains] = .integer(chains) }
        if let plugin, !plugin.isEmpty { result[Key.plugin] = .text(plugin) }
        if let pluginParameters, !pluginParameters.isEmpty { result[Key.pluginParameters] = .text(pluginParameters) }
        if let sampler, !sampler.isEmpty { result[Key.sampler] = .text(sampler) }
        if let lengthUnitAngstrom { result[Key.lengthUnitAngstrom] = .double(lengthUnitAngstrom) }
        return result
    }

    /// The provenance recorded in a file's global attributes (all nil for a file written elsewhere
    /// or before issue 23). A file that names its plugin but no parameters had none.
    public init(attributes: [String: AmberNetCDFWriter.Attribute]) {
        if case .integer(let c)? = attributes[Key.chains], c >= 1 { chains = c }
        if case .text(let p)? = attributes[Key.plugin] { plugin = p }
        if case .text(let p)? = attributes[Key.pluginParameters] { pluginParameters = p }
        else if plugin != nil { pluginParameters = "" }
        if case .text(let s)? = attributes[Key.sampler] { sampler = s }
        if case .double(let u)? = attributes[Key.lengthUnitAngstrom] { lengthUnitAngstrom = u }
    }

    /// Whether two parameter strings set the same KEY=VALUE pairs (order, blanks and empty items
    /// aside; numbers compared by value, so "temperature=300" equals "temperature=300.0").
    public static func sameParameters(_ a: String, _ b: String) -> Bool {
        func pairs(_ s: String) -> [String: String] {
            var result: [String: String] = [:]
            for item in s.split(separator: ";") {
                let trimmed = item.trimmingCharacters(in: .whitespaces)
                guard !trimmed.isEmpty else { continue }
                let parts = trimmed.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                let key = parts[0], value = parts.count > 1 ? parts[1] : ""
                result[key] = Double(value).map { String($0) } ?? value
            }
            return result
        }
        return pairs(a) == pairs(b)
    }
}

extension AmberNetCDFReader {
    /// The provenance `ensemble` recorded in this file's global attributes.
    public var provenance: TrajectoryProvenance { TrajectoryProvenance(attributes: globalAttributes) }
}
