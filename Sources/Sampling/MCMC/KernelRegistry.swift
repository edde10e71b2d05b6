import Equivariant
import Foundation
import PluginHost

/// A kernel that `ensemble sample --sampler NAME` runs: its name, a line of help, whether it runs
/// on a temperature ladder, and how it is built for a system. The chain machinery (`ChainRunner`:
/// burn-in, step-size adaptation, exchanges, counters, recording, MPI) is the same for every one.
public struct KernelRegistration: Sendable {
    /// The value of `--sampler`.
    public let name: String
    /// One line for `--help`.
    public let summary: String
    /// Whether the walkers form temperature ladders with replica exchange (`--replicas`,
    /// `--max-temperature`, `--exchange-every`, `--distribute replicas` apply); else one temperature.
    public let tempered: Bool
    /// The kernel on `space` (`Space.forMCMC`) and `system`; a configuration the plugin refuses stops the run.
    public let make: @Sendable (_ space: Space, _ system: EnergySystem) -> any MCMCKernel

    public init(name: String, summary: String, tempered: Bool = false,
                make: @escaping @Sendable (_ space: Space, _ system: EnergySystem) -> any MCMCKernel) {
        self.name = name
        self.summary = summary
        self.tempered = tempered
        self.make = make
    }
}

/// Every kernel of `ensemble sample --sampler`, in the order of `--help`. A new kernel is its
/// own file (the `MCMCKernel` and its `KernelRegistration`) plus one line here.
public enum KernelRegistry {
    public static let all: [KernelRegistration] = [
        .mala,
        .parallelTempering,
        .randomWalk,
    ]

    /// The registration called `name`, if any.
    public static func named(_ name: String) -> KernelRegistration? { all.first { $0.name == name } }
}
