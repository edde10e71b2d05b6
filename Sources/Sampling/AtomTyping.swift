import Foundation
import PluginHost

/// How the particles of a molecule are told apart in the EGNN's node features (one-hot types,
/// `EGNNConfiguration.typeIds`). The network stays equivariant under the permutations that keep
/// every particle's type, and only under those.
public enum AtomTyping: String, Codable, CaseIterable, Sendable {
    /// One type per atom, told apart by residue number and atom name: no permutation symmetry is
    /// left (alanine dipeptide: 22 types). The right choice for a force field, whose atoms of one
    /// element carry different charges and bonds.
    case atom
    /// One type per element (H, C, N, O): permutations among atoms of one element stay symmetries
    /// of the network, though not of a force field's energy.
    case element
    /// Identical particles (clusters).
    case none

    /// Type indices [n], numbered in order of first appearance; nil for `.none`.
    public func types(of atoms: [PluginAtom]) -> [Int]? {
        switch self {
        case .none: return nil
        case .atom: return Self.firstAppearance(atoms.map { "\($0.residueNumber):\($0.name)" })
        case .element: return Self.firstAppearance(atoms.map { $0.element.uppercased() })
        }
    }

    /// Each key's index among the distinct keys, in order of first appearance.
    static func firstAppearance(_ keys: [String]) -> [Int] {
        var index: [String: Int] = [:]
        return keys.map { key in
            if let i = index[key] { return i }
            index[key] = index.count
            return index.count - 1
        }
    }
}
