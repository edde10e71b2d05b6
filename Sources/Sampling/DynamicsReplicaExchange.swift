import Foundation
import PluginHost

/// How a molecular-dynamics run moves its walkers.
public struct DynamicsSettings: Codable, Equatable, Sendable {
    /// Δt, ps.
    public var timeStep = 0.002
    /// γ, 1/ps.
    public var friction = 1.0
    /// Generalised HMC (exact) instead of plain BAOAB Langevin dynamics.
    public var metropolized = false
    /// GHMC: velocity Verlet steps per Metropolis test.
    public var trajectorySteps = 10
    public init() {}

    /// MD steps per kernel move (1 for Langevin, `trajectorySteps` for GHMC).
    public var stepsPerMove: Int { metropolized ? trajectorySteps : 1 }
}

/// Replica exchange over dynamics moves (REMD): `chains` independent ladders of `replicas`
/// thermostat temperatures T_m = T·maxTemperature^(m/(R−1)) (`MCMCSettings.betas`), each walker
/// moved by `LangevinDynamicsKernel` (BAOAB, or GHMC when metropolized), neighbours exchanged every
/// `exchangeEvery` MD steps by `replicaExchangeSweep`, velocities rescaled by √(T_new/T_old) on a
/// swap. One ladder level (replicas = 1) is plain Langevin dynamics of independent chains.
///
/// `MCMCSettings` counts in MD steps here: `burnIn` steps are discarded (no adaptation), then a
/// frame of every chain's T walker is recorded every `thin` steps.
public struct DynamicsReplicaExchange {
    public var settings: MCMCSettings
    public var dynamics: DynamicsSettings

    public init(settings: MCMCSettings, dynamics: DynamicsSettings) {
        self.settings = settings
        self.dynamics = dynamics
    }

    /// - Parameters:
    ///   - start: one configuration [n·3]; every walker starts there with its own velocities.
    ///   - record: each recorded step's frames ([chains·n·3]), energies and time in ps; frames
    ///     beyond `samples` are not passed.
    public func run(system: EnergySystem, topology: MolecularTopology, start: [Double],
                    record: (_ positions: [Double], _ energies: [Double], _ picoseconds: Double) throws -> Void,
                    progress: (Int, Int) -> Void = { _, _ in }) throws -> MCMCSummary {
        let clock = ContinuousClock.now
        let energyStart = system.energyEvaluations, gradientStart = system.gradientEvaluations
        let betas = settings.betas, levels = betas.count, chains = settings.chains
        let kernel = try LangevinDynamicsKernel(system: system, topology: topology,
                                                timeStep: dynamics.timeStep, friction: dynamics.friction)
        var rng = SeededGenerator(seed: settings.seed)
        let scales = (0..<(chains * levels)).map { 1 / betas[$0 % levels] }
        var state = try kernel.initialize(Array([[Double]](repeating: start, count: scales.count).joined()),
                                          temperatureScales: scales, rng: &rng)
        var exchanges = ExchangeCounters(levels: levels)
        var accepted = [Int](repeating: 0, count: levels), proposed = accepted
        let perMove = dynamics.stepsPerMove
        let production = settings.productionSteps
        let total = settings.burnIn + production
        var step = 0, written = 0
        let reportEvery = max(1, total / perMove / 200)
        var series: [Double] = []
        func move() throws {
            if dynamics.metropolized {
                for (w, ok) in try kernel.trajectory(&state, steps: perMove, rng: &rng).enumerated() {
                    proposed[w % levels] += 1
                    if ok { accepted[w % levels] += 1 }
                }
            } else {
                try kernel.step(&state, rng: &rng)
            }
            let previous = step
            step += perMove
            if levels > 1 && step / settings.exchangeEvery != previous / settings.exchangeEvery {
                exchanges.sweep(&state, betas: betas, ladders: chains, rng: &rng)
            }
        }
        while step < settings.burnIn {
            try move()
            if (step / perMove) % reportEvery == 0 { progress(step, total) }
        }
        accepted = accepted.map { _ in 0 }; proposed = accepted
        exchanges.reset()
        let n = kernel.stride
        while step < total && written < settings.samples {
            try move()
            let done = step - settings.burnIn
            guard done / settings.thin != (done - perMove) / settings.thin else { continue }
            let take = min(chains, settings.samples - written)
            var x: [Double] = [], u: [Double] = []
            for c in 0..<take {
                x += state.positions[(c * levels * n)..<((c * levels + 1) * n)]
                u.append(state.energies[c * levels])
            }
            try record(x, u, Double(step) * dynamics.timeStep)
            series.append(u.reduce(0, +) / Double(u.count))
            written += take
            progress(step, total)
        }
        progress(total, total)
        let (mean, error) = Statistics.meanAndError(series)
        return MCMCSummary(
            frames: written, energyMean: mean, energyError: error,
            acceptance: dynamics.metropolized ? zip(accepted, proposed).map { Double($0) / Double(max($1, 1)) } : [],
            exchangeAcceptance: exchanges.acceptance, stepSizes: [dynamics.timeStep],
            energyEvaluations: system.energyEvaluations - energyStart,
            gradientEvaluations: system.gradientEvaluations - gradientStart,
            seconds: (ContinuousClock.now - clock).inSeconds)
    }
}

/// Exchange bookkeeping of a dynamics ladder (even and odd pairs alternate).
struct ExchangeCounters {
    var attempted: [Int]
    var accepted: [Int]
    var parity = 0

    init(levels: Int) {
        attempted = [Int](repeating: 0, count: max(levels - 1, 0))
        accepted = attempted
    }

    mutating func reset() {
        attempted = attempted.map { _ in 0 }
        accepted = attempted
    }

    var acceptance: [Double] { zip(accepted, attempted).map { $1 > 0 ? Double($0) / Double($1) : .nan } }

    /// One sweep over the ladders; a swap exchanges positions, gradients and energies and rescales
    /// the velocities to the new thermostat temperature.
    mutating func sweep(_ state: inout LangevinDynamicsKernel.State, betas: [Double], ladders: Int, rng: inout SeededGenerator) {
        let n = state.positions.count / state.walkers, levels = betas.count
        var swapped = state
        replicaExchangeSweep(betas: betas, ladders: ladders, parity: parity, energies: state.energies,
                             attempted: &attempted, accepted: &accepted, rng: &rng) { a, b in
            let ratio = (betas[a % levels] / betas[b % levels]).squareRoot()  // √(T_b/T_a)
            swapped.energies.swapAt(a, b)
            for k in 0..<n {
                swapped.positions.swapAt(a * n + k, b * n + k)
                swapped.gradients.swapAt(a * n + k, b * n + k)
                let va = swapped.velocities[a * n + k], vb = swapped.velocities[b * n + k]
                swapped.velocities[a * n + k] = vb / ratio
                swapped.velocities[b * n + k] = va * ratio
            }
        }
        state = swapped
        parity ^= 1
    }
}
