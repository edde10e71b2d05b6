import PluginHost

extension EnergySystem {
    /// A plugin system is treated as a molecule when its atoms include hydrogen: `sample` then runs
    /// dynamics by default (and folds a model's mirror images), `train` types atoms by element.
    var isMolecule: Bool {
        box == nil && dimension == 3 && (atoms()?.contains { $0.element.uppercased() == "H" } ?? false)
    }
}
