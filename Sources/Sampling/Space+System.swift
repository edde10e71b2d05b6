import Equivariant
import Foundation
import PluginHost

/// The sampling layer's name for the one `Space` (kept so that code written against it reads on).
public typealias DiffusionSpace = Space

extension Space {
    /// The space a sampler of `system` moves in, decided once for every command: the torus
    /// when the plugin reports a box, centred for translation-invariant clusters (tested at
    /// `start`, else the system's initial positions, else a seeded Gaussian draw), else free.
    public static func of(_ system: EnergySystem, at start: [Double]? = nil) -> Space {
        if let box = system.box { return Space(particles: system.particleCount, box: box) }
        var x = start ?? system.initialPositions()
        if x == nil {
            var rng = SeededGenerator(seed: 99)
            x = (0..<system.coordinateCount).map { _ in rng.normal() }
        }
        return Space(particles: system.particleCount, dimension: system.dimension,
                     kind: isTranslationInvariant(system, at: x!) ? .centred : .free)
    }

    /// The space MCMC moves `system` in, decided once: the torus when the plugin reports a
    /// box, else free; the centre of mass fixed when `fixCentreOfMass` says so, by default when
    /// the energy is translation invariant at `start` — on a torus too, where the diffusion
    /// processes keep it (`of(_:at:)`).
    public static func forMCMC(_ system: EnergySystem, at start: [Double], fixCentreOfMass: Bool? = nil) -> Space {
        let fixed = fixCentreOfMass ?? isTranslationInvariant(system, at: start)
        let space = system.box.map { Space(particles: system.particleCount, box: $0) }
            ?? Space(particles: system.particleCount, dimension: system.dimension, kind: .free)
        return space.fixingCentreOfMass(fixed)
    }

    /// Whether moves of `system` belong in the zero-centre-of-mass subspace: its energy is
    /// invariant under translations at `start` (a failed evaluation counts as no).
    public static func isTranslationInvariant(_ system: EnergySystem, at start: [Double]) -> Bool {
        (try? system.isTranslationInvariant(at: start)) ?? false
    }

    /// Standard normal noise of `batch` configurations, projected.
    public func noise(batch: Int, rng: inout SeededGenerator) -> [Double] {
        var e = [Double](repeating: 0, count: batch * coordinateCount)
        rng.fillNormal(&e)
        project(&e)
        return e
    }

    /// Start states x_0 of the PIS process: the origin, or uniform on the box when periodic.
    public func initialStates(batch: Int, rng: inout SeededGenerator) -> [Double] {
        var x = [Double](repeating: 0, count: batch * coordinateCount)
        if let box { for j in x.indices { x[j] = rng.uniform() * box[j % dimension] } }
        return x
    }

}
