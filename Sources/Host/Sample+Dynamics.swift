import Analysis
import ArgumentParser
import Distributed
import Foundation
import PluginHost
import Sampling

/// The defaults of `sample --sampler langevin|ghmc` (and of `sample` on a molecule without
/// --sampler), measured on alanine dipeptide (ff96 + OBC1, 300 K; README "Molecular dynamics").
enum DynamicsDefaults {
    static let chains = 4
    /// MD steps between frames: 2 ps at 4 fs.
    static let thin = 500
    /// 20 ps at 4 fs.
    static let burnIn = 5000
    /// Replica exchange 300 → 600 K in 4 levels (exchange acceptance ≈ 0.4 for alanine): the
    /// fewest levels; a larger molecule gets `TemperatureLadder.replicas` for its degrees of
    /// freedom (≥ 0.3 predicted per pair), and the ladder adapts during burn-in (docs/mcmc.md).
    static let replicas = 4
    static let maxTemperature = 2.0
    /// 0.2 ps at 4 fs.
    static let exchangeEvery = 50
    /// Hydrogen-mass repartitioning with X–H constraints allows 4 fs (langevin); GHMC keeps 2 fs,
    /// where 90 % of its 10-step trajectories are accepted (58 % at 4 fs).
    static let hydrogenMass = 3.0
    static func timestep(constrained: Bool, metropolized: Bool) -> Double { constrained ? (metropolized ? 2 : 4) : 1 }
}

/// `sample` options of the dynamics samplers.
struct DynamicsOptions: ParsableArguments {
    enum Constraints: String, ExpressibleByArgument, CaseIterable { case hbonds, none }

    @Option(help: ArgumentHelp("Time step Δt in fs (default: 4 for langevin with hbonds and hydrogen-mass repartitioning, 2 for ghmc, 1 without constraints).", valueName: "fs"))
    var timestep: Double?
    @Option(help: ArgumentHelp("Langevin friction γ in 1/ps (0: Hamiltonian dynamics, energy conserved).", valueName: "1/ps"))
    var friction: Double = 1
    @Option(help: ArgumentHelp("hbonds: bonds from hydrogen to its nearest heavy atom (< 1.3 Å in the start structure) held at their start length by SHAKE/RATTLE, as OpenMM's constraints=HBonds; none.", valueName: "hbonds|none"))
    var constraints: Constraints = .hbonds
    @Option(help: ArgumentHelp("Hydrogen-mass repartitioning: every hydrogen bonded to a heavy atom gets this mass (amu), taken from that atom; positions are sampled from the same distribution, the fastest vibrations slow down (default 3 with hbonds; 0: natural masses).", valueName: "amu"))
    var hydrogenMass: Double?
    @Option(help: ArgumentHelp("Temperature in K of the plugin's u = U/kT (sets kT of the dynamics; passed to a plugin that takes temperature=K). Default: --param temperature=K if given, else 300.", valueName: "K"))
    var temperature: Double?
    @Option(help: ArgumentHelp("ghmc: MD steps per Metropolis test.", valueName: "L"))
    var trajectorySteps: Int = 10
}

extension DynamicsOptions {
    /// The dynamics options (langevin/ghmc) given with a value other than their default.
    var given: [String] {
        [("--timestep", timestep != nil), ("--friction", friction != 1), ("--constraints", constraints != .hbonds),
         ("--hydrogen-mass", hydrogenMass != nil), ("--trajectory-steps", trajectorySteps != 10)]
            .filter(\.1).map(\.0)
    }
}

extension SampleCommonOptions {
    /// The temperature given by --param temperature=K, if any.
    var parameterTemperature: Double? {
        parameters.first { $0.hasPrefix("temperature=") }.flatMap { Double($0.dropFirst("temperature=".count)) }
    }
}

extension Ensemble.Sample {
    func validateDynamics() throws {
        let o = dynamicsOptions
        guard o.timestep ?? 1 > 0, o.friction >= 0, o.trajectorySteps >= 1 else {
            throw ValidationError("--timestep must be > 0 fs, --friction ≥ 0 /ps, --trajectory-steps ≥ 1")
        }
        if let t = o.temperature, let p = common.parameterTemperature, t != p {
            throw ValidationError("--temperature \(t) differs from --param temperature=\(p); give one of them")
        }
        if let m = o.hydrogenMass, !(m >= 0) { throw ValidationError("--hydrogen-mass must be ≥ 0 amu (0: natural masses), got \(m)") }
        if let sampler = mcmc.sampler, sampler == .langevin || sampler == .ghmc {
            guard Communicator.world.size == 1 else { throw ValidationError("--sampler \(sampler.rawValue) runs as one rank (no mpirun)") }
            if let r = mcmc.replicasOption, r < 1 { throw ValidationError("--replicas must be ≥ 1, got \(r)") }
            if sampler == .ghmc, let thin = mcmc.thinOption, thin < o.trajectorySteps {
                // A frame can only be taken between trajectories: a shorter --thin would record
                // fewer frames than --samples asks for.
                throw ValidationError("--thin \(thin) is shorter than one GHMC trajectory (--trajectory-steps \(o.trajectorySteps) MD steps); frames are taken between trajectories: give --thin ≥ \(o.trajectorySteps)")
            }
            if mcmc.replicasOption ?? DynamicsDefaults.replicas > 1, !(mcmc.maxTemperatureOption ?? DynamicsDefaults.maxTemperature > 1) {
                throw ValidationError("--max-temperature must be > 1 for replica exchange")
            }
        }
    }
}

extension MCMCSampling {
    /// The temperature given by --param temperature=K, if any.
    var parameterTemperature: Double? { common.parameterTemperature }

    /// The dynamics temperature in K.
    var dynamicsTemperature: Double { dynamicsOptions.temperature ?? parameterTemperature ?? 300 }

    /// `temperature=K` for the plugin when --temperature is given without --param temperature and
    /// the plugin takes that key.
    func temperatureParameter() throws -> [String] {
        guard let t = dynamicsOptions.temperature, parameterTemperature == nil else { return [] }
        let help = try common.search.discover().plugin(named: plugin).parametersHelp
        return help.contains("temperature=") ? ["temperature=\(t)"] : []
    }

    /// The molecule's masses, kT and constraints from the plugin's atom table and start structure.
    func molecularTopology(_ system: EnergySystem, start: [Double]) throws -> MolecularTopology {
        guard let atoms = system.atoms(), atoms.allSatisfy({ $0.mass > 0 }), system.dimension == 3,
              system.lengthUnitAngstrom == 1 else {
            throw FailureMessage("--sampler langevin/ghmc needs a 3D plugin in Å whose atom table gives masses (the optional `atom` callback)")
        }
        let bonds = MolecularTopology.hydrogenBonds(elements: atoms.map(\.element), positions: start)
        var topology = MolecularTopology(masses: atoms.map(\.mass), temperature: dynamicsTemperature,
                                         constraints: dynamicsOptions.constraints == .hbonds ? bonds : [])
        if let mass = hydrogenMass, mass > 0 {
            topology.masses = MolecularTopology.repartition(topology.masses, bonds: bonds, hydrogenMass: mass)
        }
        return topology
    }

    /// The hydrogen mass of repartitioning (nil or 0: natural masses).
    var hydrogenMass: Double? {
        dynamicsOptions.hydrogenMass ?? (dynamicsOptions.constraints == .hbonds && sampler != .ghmc ? DynamicsDefaults.hydrogenMass : nil)
    }

    /// Whether the ladder is the default one (sized to the molecule, adapted during burn-in).
    var defaultLadder: Bool { mcmc.replicasOption == nil && mcmc.maxTemperatureOption == nil }

    /// The settings of a dynamics run: the options given, else `DynamicsDefaults` (the replica
    /// count sized to the molecule's `degreesOfFreedom`).
    func dynamicsSettings(degreesOfFreedom: Int? = nil) -> (MCMCSettings, DynamicsSettings) {
        var settings = MCMCSettings()
        settings.chains = mcmc.chainsOption ?? DynamicsDefaults.chains
        settings.burnIn = mcmc.burnInOption ?? DynamicsDefaults.burnIn
        settings.thin = mcmc.thinOption ?? DynamicsDefaults.thin
        settings.samples = samples
        settings.seed = seed
        settings.maxTemperature = mcmc.maxTemperatureOption ?? DynamicsDefaults.maxTemperature
        settings.replicas = mcmc.replicasOption ?? degreesOfFreedom.map {
            TemperatureLadder.replicas(degreesOfFreedom: $0, maxTemperature: settings.maxTemperature, minimum: DynamicsDefaults.replicas)
        } ?? DynamicsDefaults.replicas
        settings.exchangeEvery = mcmc.exchangeEveryOption ?? DynamicsDefaults.exchangeEvery
        var dynamics = DynamicsSettings()
        dynamics.timeStep = (dynamicsOptions.timestep ?? DynamicsDefaults.timestep(
            constrained: dynamicsOptions.constraints == .hbonds, metropolized: sampler == .ghmc)) / 1000
        dynamics.friction = dynamicsOptions.friction
        dynamics.metropolized = sampler == .ghmc
        dynamics.trajectorySteps = dynamicsOptions.trajectorySteps
        return (settings, dynamics)
    }

    /// Langevin dynamics or GHMC (with replica exchange when --replicas ≥ 2); `time` in ps.
    func runDynamics(system: EnergySystem, world: Communicator) throws {
        let method = sampler ?? .langevin
        let start = try startPositions(system)
        let topology = try molecularTopology(system, start: start)
        let (settings, dynamics) = dynamicsSettings(degreesOfFreedom: TemperatureLadder.degreesOfFreedom(
            atoms: topology.masses.count, constraints: topology.constraints.count))
        try checkMemory(system: system, temperatures: settings.replicas)
        let output = try TrajectoryOutput(
            path: out, system: system, variables: ["energy"], units: ["energy": "kT"],
            title: "ensemble sample \(method.rawValue) \(system.plugin.name) \(system.parameters)", overwrite: overwrite,
            sampler: method.rawValue, chains: settings.chains)
        let progress = ProgressBar(label: "sampling", total: settings.burnIn + settings.productionSteps)
        system.interruption = { Interrupt.isRequested }  // one rank: Ctrl-C ends burn-in too
        let series = ChainSeries(), angles = try? AngleSeries(system: system)
        let summary: MCMCSummary
        do {
            let kernel = try LangevinDynamicsKernel(system: system, topology: topology, settings: dynamics)
            var runner = ChainRunner(settings: settings)
            runner.adaptsLadder = defaultLadder
            summary = try runner.run(
                kernel: kernel, start: start,
                record: { x, u, tick in
                    series.append(u)
                    angles?.append(x)
                    let stride = system.coordinateCount
                    for c in 0..<u.count {
                        try output.append(Array(x[(c * stride)..<((c + 1) * stride)]), time: Double(tick) * dynamics.timeStep,
                                          values: ["energy": u[c]])
                    }
                },
                stop: { Interrupt.isRequested },
                progress: { done, _ in progress.update(done) })
        } catch {
            progress.finish()
            try handleFailure(error, output: output)
            return
        }
        try output.close()
        printDynamicsSummary(summary, method: method, system: system, topology: topology, settings: settings, dynamics: dynamics)
        try reportMCMC(summary, series: series, angles: angles, system: system, project: false, ranks: 1,
                       sampler: method, settings: settings, dynamics: dynamics)
    }

    func printDynamicsSummary(_ s: MCMCSummary, method: Sampler, system: EnergySystem, topology: MolecularTopology,
                              settings: MCMCSettings, dynamics: DynamicsSettings) {
        print("wrote \(s.frames) frames to \(out) (topology \(URL(fileURLWithPath: out).deletingPathExtension().path).pdb; time in ps)")
        print(String(format: "energy u = U/kT: %.4f ± %.4f (batch-means standard error)", s.energyMean, s.energyError))
        print(String(format: "%@ dynamics: Δt %.3g fs, γ %.3g/ps, %.1f K, %d constraints%@, %d chains × %.1f ps, frame every %.3g ps",
                     method == .ghmc ? "GHMC (Metropolized BAOAB-Verlet)" : "Langevin (BAOAB)", dynamics.timeStep * 1000,
                     dynamics.friction, topology.kT / MolecularTopology.boltzmann, topology.constraints.count,
                     hydrogenMass.map { $0 > 0 ? String(format: ", H mass %.3g amu", $0) : "" } ?? "",
                     settings.chains, Double(settings.burnIn + settings.productionSteps) * dynamics.timeStep,
                     Double(settings.thin) * dynamics.timeStep))
        if method == .ghmc {
            print(String(format: "GHMC acceptance (target level): %.4f (%d MD steps per test)", s.acceptance[0], dynamics.trajectorySteps))
        }
        if settings.replicas > 1 {
            let pairs = s.exchangeAcceptance.enumerated().map { String(format: "%d↔%d %.2f", $0, $0 + 1, $1) }
            print("replica exchange acceptance: \(pairs.joined(separator: ", "))")
            print("temperatures (K): \(s.betas.map { String(format: "%.1f", topology.kT / MolecularTopology.boltzmann / $0) }.joined(separator: ", "))")
        }
        print("energy evaluations: \(s.energyEvaluations), gradient evaluations: \(s.gradientEvaluations)")
        print(String(format: "wall time: %.2f s (%d threads)", s.seconds, system.threads))
    }
}
