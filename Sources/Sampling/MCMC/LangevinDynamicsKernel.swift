import Foundation
import PluginHost

/// A fixed distance between two particles (RATTLE / SHAKE), in the plugin's length unit.
public struct BondConstraint: Equatable, Sendable {
    public var i: Int
    public var j: Int
    public var length: Double
    public init(_ i: Int, _ j: Int, length: Double) { self.i = i; self.j = j; self.length = length }
}

/// What dynamics needs beyond u and ∇u: masses, the temperature that turns reduced energies into
/// physical ones, and the constrained bonds.
///
/// Units: masses in amu, lengths in Å (the plugin's unit, `lengthUnitAngstrom` = 1), time in ps,
/// so velocities are Å/ps and energies amu·Å²/ps² (= 0.01 kJ/mol). kT = k_B·T with
/// k_B = 0.0083144626 kJ/(mol·K) = 0.83144626 amu·Å²/(ps²·K).
public struct MolecularTopology: Equatable, Sendable {
    /// Boltzmann's constant in amu·Å²/(ps²·K).
    public static let boltzmann = 0.83144626
    /// Mass of each particle, amu.
    public var masses: [Double]
    /// k_B·T of the plugin's reduced energies u = U/kT, amu·Å²/ps².
    public var kT: Double
    public var constraints: [BondConstraint]

    public init(masses: [Double], temperature: Double, constraints: [BondConstraint] = []) {
        self.masses = masses
        self.kT = Self.boltzmann * temperature
        self.constraints = constraints
    }

    /// Bonds from every hydrogen to its nearest heavy atom closer than `maximumLength` Å in
    /// `positions` [n·3], with that distance as the constraint length (the plugin's ABI carries no
    /// bonds; the shipped alanine start structure has its X–H lengths at the force field's r₀ to
    /// 4e-7 Å, so these are the lengths OpenMM's constraints=HBonds uses).
    public static func hydrogenBonds(elements: [String], positions: [Double], maximumLength: Double = 1.3) -> [BondConstraint] {
        func distance(_ a: Int, _ b: Int) -> Double {
            var s = 0.0
            for k in 0..<3 { let d = positions[3 * a + k] - positions[3 * b + k]; s += d * d }
            return s.squareRoot()
        }
        var result: [BondConstraint] = []
        for h in elements.indices where elements[h].uppercased() == "H" {
            let partner = elements.indices.filter { elements[$0].uppercased() != "H" }.min { distance(h, $0) < distance(h, $1) }
            if let partner, distance(h, partner) < maximumLength {
                result.append(BondConstraint(min(h, partner), max(h, partner), length: distance(h, partner)))
            }
        }
        return result
    }

    /// Hydrogen-mass repartitioning: the hydrogen (lighter atom) of every X–H bond in `bonds` gets
    /// `hydrogenMass` amu, taken from its bonded heavy atom (total mass unchanged). The Boltzmann
    /// distribution of positions does not depend on masses; the fastest vibrations slow down.
    public static func repartition(_ masses: [Double], bonds: [BondConstraint], hydrogenMass: Double) -> [Double] {
        var result = masses
        for c in bonds {
            let (h, heavy) = masses[c.i] < masses[c.j] ? (c.i, c.j) : (c.j, c.i)
            let moved = hydrogenMass - result[h]
            result[h] += moved
            result[heavy] -= moved
        }
        return result
    }
}

/// Underdamped Langevin dynamics of a batch of walkers, as a value (jax-md's `(init_fn, step_fn)`,
/// like `MALAKernel`): `initialize` draws Maxwell velocities, `step` moves every walker by one
/// time step of the BAOAB ("middle") splitting that OpenMM's LangevinMiddleIntegrator uses,
///
///     B: v += ½Δt F/m    A: x += ½Δt v    O: v ← a v + √(1−a²) √(kT_w/m) ξ,  a = e^(−γΔt)    A    B,
///
/// F = −kT ∇u. With constraints each A is followed by SHAKE on the positions (the velocity takes
/// the same correction) and every velocity update by RATTLE's projection onto the constraint
/// tangent space (the geodesic g-BAOAB of Leimkuhler & Matthews, Proc. R. Soc. A 472, 20160138
/// (2016), one sub-step). Each walker w has its own thermostat temperature kT·`temperatureScales[w]`
/// (replica exchange); the force always comes from the target's u.
///
/// `trajectory` is the Metropolized variant (generalised HMC, Horowitz 1991): O(½LΔt), L velocity
/// Verlet (RATTLE) steps, accept with min(1, exp(−ΔH/kT_w)), else restore and flip the velocity,
/// O(½LΔt). It leaves the (constrained) Boltzmann distribution exactly invariant; plain `step`
/// has an O(Δt²) bias in exchange for never rejecting.
///
/// As an `MCMCKernel` (`ChainRunner`: Langevin dynamics and REMD, GHMC and its replica
/// exchange) one `step` is one BAOAB step, or with `metropolized` one GHMC `trajectory` of
/// `trajectorySteps` MD steps (its clock ticks: `ticksPerStep`); the time step is fixed.
///
/// 3D systems, lengths in Å. A periodic system (the `openmm` plugin's explicit solvent) is
/// integrated in unwrapped coordinates: positions are never folded into the box, so molecules
/// stay whole, and the plugin applies the periodic boundary conditions, as OpenMM does.
public struct LangevinDynamicsKernel: MCMCKernel {
    public let system: EnergySystem
    public let topology: MolecularTopology
    /// Δt in ps.
    public let timeStep: Double
    /// γ in 1/ps (0: Hamiltonian dynamics).
    public let friction: Double
    /// Generalised HMC (exact) instead of plain BAOAB Langevin dynamics.
    public var metropolized = false
    /// GHMC: velocity Verlet steps per Metropolis test.
    public var trajectorySteps = 10
    /// Relative tolerance of SHAKE (|r² − d²| ≤ tol·d²) and RATTLE (|v_ij·r_ij| ≤ tol·d/Δt).
    public var constraintTolerance = 1e-12
    private let inverseMass: [Double]
    private let sqrtInverseMass: [Double]

    public struct State: WalkerState {
        /// [walkers, n·3] Å, and Å/ps.
        public var positions: [Double]
        public var velocities: [Double]
        /// Reduced energies u (at the target temperature) and ∇u.
        public var energies: [Double]
        var gradients: [Double]
        /// Thermostat temperature of each walker as a multiple of the target's.
        public var temperatureScales: [Double]
        public var walkers: Int { temperatureScales.count }

        /// Swaps positions, gradients and energies, and the velocities rescaled to the new
        /// thermostat temperature (by √(T_new/T_old)).
        public mutating func swapWalkers(_ a: Int, _ b: Int, betas: (a: Double, b: Double)) {
            let n = positions.count / walkers
            let ratio = (betas.a / betas.b).squareRoot()  // √(T_b/T_a)
            energies.swapAt(a, b)
            for k in 0..<n {
                positions.swapAt(a * n + k, b * n + k)
                gradients.swapAt(a * n + k, b * n + k)
                let va = velocities[a * n + k], vb = velocities[b * n + k]
                velocities[a * n + k] = vb / ratio
                velocities[b * n + k] = va * ratio
            }
        }

        /// [positions, gradients, velocities (n·3 each), energy]
        public func packedWalker(_ w: Int) -> [Double] {
            let n = positions.count / walkers, range = (w * n)..<((w + 1) * n)
            return Array(positions[range]) + Array(gradients[range]) + Array(velocities[range]) + [energies[w]]
        }

        public mutating func setWalker(_ w: Int, _ packed: ArraySlice<Double>, from: Double, beta: Double) {
            let n = positions.count / walkers, base = packed.startIndex, ratio = (beta / from).squareRoot()
            precondition(packed.count == 3 * n + 1)
            for k in 0..<n {
                positions[w * n + k] = packed[base + k]
                gradients[w * n + k] = packed[base + n + k]
                velocities[w * n + k] = packed[base + 2 * n + k] / ratio
            }
            energies[w] = packed[base + 3 * n]
        }
    }

    public var stepSizeRule: StepSizeRule { .fixed(timeStep) }
    public var isMetropolized: Bool { metropolized }
    public var ticksPerStep: Int { metropolized ? trajectorySteps : 1 }

    public init(system: EnergySystem, topology: MolecularTopology, timeStep: Double, friction: Double) throws {
        guard system.dimension == 3 else {
            throw SamplingError(step: 0, reason: "molecular dynamics needs a 3D system")
        }
        precondition(topology.masses.count == system.particleCount && topology.masses.allSatisfy { $0 > 0 })
        self.system = system
        self.topology = topology
        self.timeStep = timeStep
        self.friction = friction
        inverseMass = topology.masses.flatMap { Array(repeating: 1 / $0, count: 3) }
        sqrtInverseMass = inverseMass.map { $0.squareRoot() }
    }

    /// The kernel of a dynamics run: Δt, γ and GHMC or not from `settings`.
    public init(system: EnergySystem, topology: MolecularTopology, settings: DynamicsSettings) throws {
        try self.init(system: system, topology: topology, timeStep: settings.timeStep, friction: settings.friction)
        metropolized = settings.metropolized
        trajectorySteps = settings.trajectorySteps
    }

    var stride: Int { system.coordinateCount }

    /// Walkers at `positions` [walkers·n·3] (constrained first), with Maxwell velocities at
    /// kT·`temperatureScales[w]` projected onto the constraints' tangent space.
    public func initialize(_ positions: [Double], temperatureScales: [Double], rng: inout SeededGenerator) throws -> State {
        var state = try initialize(positions)
        try thermalize(&state, temperatureScales: temperatureScales, rng: &rng)
        return state
    }

    /// Walkers at `positions` [walkers·n·3], constrained and evaluated, at rest (`prepare` draws
    /// their velocities).
    public func initialize(_ positions: [Double]) throws -> State {
        let walkers = positions.count / stride
        precondition(positions.count == walkers * stride)
        var state = State(positions: positions, velocities: [Double](repeating: 0, count: positions.count),
                          energies: [], gradients: [], temperatureScales: [Double](repeating: 1, count: walkers))
        for w in 0..<walkers {
            let reference = Array(positions[(w * stride)..<((w + 1) * stride)])
            try shake(&state.positions, &state.velocities, walker: w, reference: reference, referenceOffset: 0, interval: 1)
        }
        state.velocities = [Double](repeating: 0, count: positions.count)
        try evaluate(&state)
        return state
    }

    /// Each walker's thermostat at kT/β_w, and Maxwell velocities at that temperature projected
    /// onto the constraints' tangent space.
    public func prepare(_ state: inout State, betas: [Double], rng: inout SeededGenerator) throws {
        try thermalize(&state, temperatureScales: betas.map { 1 / $0 }, rng: &rng)
    }

    func thermalize(_ state: inout State, temperatureScales: [Double], rng: inout SeededGenerator) throws {
        precondition(temperatureScales.count == state.walkers)
        state.temperatureScales = temperatureScales
        for k in state.velocities.indices { state.velocities[k] = 0 }
        try thermostat(&state, decay: 0, rng: &rng)
    }

    /// One BAOAB step, or with `metropolized` one GHMC trajectory, of every walker at its
    /// thermostat temperature (`prepare`; step sizes unused: Δt is `timeStep`). Returns which
    /// walkers' trajectories were accepted (all, unmetropolized).
    public func step(_ state: inout State, stepSizes: [Double], betas: [Double], rng: inout SeededGenerator) throws -> [Bool] {
        guard metropolized else {
            try step(&state, rng: &rng)
            return [Bool](repeating: true, count: state.walkers)
        }
        return try trajectory(&state, steps: trajectorySteps, rng: &rng)
    }

    /// One step of every walker (one gradient evaluation of the batch) in the leapfrog form of
    /// OpenMM's LangevinMiddleIntegrator (Zhang et al., J. Phys. Chem. A 123, 6056 (2019)): the
    /// B half kicks of consecutive BAOAB steps merged, velocities at half steps v_{n−½} → v_{n+½},
    ///
    ///     v += Δt F(x_n)/m, RATTLE;   x′ = x_n + ½Δt v;   O;   x′ += ½Δt v;   SHAKE x′ (v takes δx/Δt).
    ///
    /// Positions follow BAOAB's; one RATTLE and one SHAKE per step.
    public func step(_ state: inout State, rng: inout SeededGenerator) throws {
        let h = timeStep
        try kick(&state, by: h)
        let start = state.positions
        for k in state.positions.indices { state.positions[k] += 0.5 * h * state.velocities[k] }
        try thermostat(&state, decay: exp(-friction * h), rng: &rng, project: false)
        for k in state.positions.indices { state.positions[k] += 0.5 * h * state.velocities[k] }
        if !topology.constraints.isEmpty {
            for w in 0..<state.walkers {
                try shake(&state.positions, &state.velocities, walker: w, reference: start, referenceOffset: w * stride, interval: h)
            }
        }
        try evaluate(&state)
    }

    /// `steps` velocity Verlet (RATTLE) steps of every walker: Hamiltonian dynamics, the part of
    /// `trajectory` that is Metropolis-tested. Velocities are at whole steps.
    public func verlet(_ state: inout State, steps: Int) throws {
        for _ in 0..<steps {
            try kick(&state, by: timeStep / 2)
            try drift(&state, by: timeStep)
            try evaluate(&state)
            try kick(&state, by: timeStep / 2)
        }
    }

    /// One generalised-HMC proposal of every walker: `steps` velocity Verlet steps between two
    /// half thermostat steps, Metropolis-accepted per walker. Returns whether each walker's was.
    @discardableResult
    public func trajectory(_ state: inout State, steps: Int, rng: inout SeededGenerator) throws -> [Bool] {
        let h = timeStep, decay = exp(-friction * h * Double(steps) / 2)
        try thermostat(&state, decay: decay, rng: &rng)
        let before = state
        let h0 = (0..<state.walkers).map { totalEnergy(state, walker: $0) }
        try verlet(&state, steps: steps)
        var accepted = [Bool](repeating: false, count: state.walkers)
        for w in 0..<state.walkers {
            let logAlpha = -(totalEnergy(state, walker: w) - h0[w]) / (topology.kT * state.temperatureScales[w])
            accepted[w] = logAlpha.isFinite && log(rng.uniform()) < logAlpha
            if !accepted[w] { restore(&state, walker: w, from: before, flipVelocity: true) }
        }
        try thermostat(&state, decay: decay, rng: &rng)
        return accepted
    }

    /// Kinetic energy ½ Σ m v² of walker `w`, amu·Å²/ps².
    public func kineticEnergy(_ state: State, walker w: Int) -> Double {
        var sum = 0.0
        for k in (w * stride)..<((w + 1) * stride) {
            sum += state.velocities[k] * state.velocities[k] / inverseMass[k - w * stride]
        }
        return 0.5 * sum
    }

    /// H = kT·u + ½ Σ m v² of walker `w`, amu·Å²/ps².
    public func totalEnergy(_ state: State, walker w: Int) -> Double {
        topology.kT * state.energies[w] + kineticEnergy(state, walker: w)
    }

    /// Degrees of freedom of one walker: 3n − constraints.
    public var degreesOfFreedom: Int { stride - topology.constraints.count }

    // MARK: - The pieces of the splitting

    /// B: v += τ F/m, F = −kT∇u; then RATTLE.
    func kick(_ state: inout State, by tau: Double) throws {
        let scale = -tau * topology.kT, n = stride
        for w in 0..<state.walkers {
            for k in 0..<n { state.velocities[w * n + k] += scale * state.gradients[w * n + k] * inverseMass[k] }
            try rattle(&state, walker: w)
        }
    }

    /// A: x += τ v; then SHAKE (the velocity takes the same correction) and RATTLE.
    func drift(_ state: inout State, by tau: Double) throws {
        let n = stride
        for w in 0..<state.walkers {
            let reference = topology.constraints.isEmpty ? [] : Array(state.positions[(w * n)..<((w + 1) * n)])
            for k in (w * n)..<((w + 1) * n) { state.positions[k] += tau * state.velocities[k] }
            guard !topology.constraints.isEmpty else { continue }
            try shake(&state.positions, &state.velocities, walker: w, reference: reference, referenceOffset: 0, interval: tau)
            try rattle(&state, walker: w)
        }
    }

    /// O: v ← a v + √(1−a²) √(kT_w/m) ξ (exact Ornstein–Uhlenbeck); then RATTLE when `project`.
    func thermostat(_ state: inout State, decay a: Double, rng: inout SeededGenerator, project: Bool = true) throws {
        let n = stride, noise = (1 - a * a).squareRoot()
        guard noise > 0 else { return }
        for w in 0..<state.walkers {
            let sigma = noise * (topology.kT * state.temperatureScales[w]).squareRoot()
            for k in 0..<n { state.velocities[w * n + k] = a * state.velocities[w * n + k] + sigma * sqrtInverseMass[k] * rng.normal() }
            if project { try rattle(&state, walker: w) }
        }
    }

    func evaluate(_ state: inout State) throws {
        (state.energies, state.gradients) = try system.evaluate(state.positions, batch: state.walkers, withGradients: true)
    }

    func restore(_ state: inout State, walker w: Int, from old: State, flipVelocity: Bool) {
        let n = stride
        state.energies[w] = old.energies[w]
        for k in (w * n)..<((w + 1) * n) {
            state.positions[k] = old.positions[k]
            state.gradients[k] = old.gradients[k]
            state.velocities[k] = flipVelocity ? -old.velocities[k] : old.velocities[k]
        }
    }

    // MARK: - Constraints

    /// SHAKE: moves walker `w`'s positions along the bond vectors of `reference` (its constrained
    /// positions before the drift, from `referenceOffset` on) until every |r_ij|² = d²; the
    /// velocity takes the same change / τ.
    func shake(_ x: inout [Double], _ v: inout [Double], walker w: Int, reference: [Double], referenceOffset o: Int,
               interval tau: Double) throws {
        let base = w * stride
        for _ in 0..<1000 {
            var done = true
            for c in topology.constraints {
                let i = 3 * c.i, j = 3 * c.j
                var r = SIMD3<Double>(), ref = SIMD3<Double>()
                for k in 0..<3 {
                    r[k] = x[base + i + k] - x[base + j + k]
                    ref[k] = reference[o + i + k] - reference[o + j + k]
                }
                let d2 = c.length * c.length, diff = d2 - (r * r).sum()
                guard abs(diff) > constraintTolerance * d2 else { continue }
                done = false
                let wi = inverseMass[i], wj = inverseMass[j]
                let g = diff / (2 * (r * ref).sum() * (wi + wj))
                for k in 0..<3 {
                    x[base + i + k] += g * wi * ref[k]
                    x[base + j + k] -= g * wj * ref[k]
                    v[base + i + k] += g * wi * ref[k] / tau
                    v[base + j + k] -= g * wj * ref[k] / tau
                }
            }
            if done { return }
        }
        throw SamplingError(step: 0, reason: "SHAKE did not converge in 1000 iterations for walker \(w) (time step too large?)")
    }

    /// RATTLE's velocity half: removes each bond's relative velocity along the bond.
    func rattle(_ state: inout State, walker w: Int) throws {
        guard !topology.constraints.isEmpty else { return }
        let base = w * stride
        for _ in 0..<1000 {
            var done = true
            for c in topology.constraints {
                let i = 3 * c.i, j = 3 * c.j
                var r = SIMD3<Double>(), dv = SIMD3<Double>()
                for k in 0..<3 {
                    r[k] = state.positions[base + i + k] - state.positions[base + j + k]
                    dv[k] = state.velocities[base + i + k] - state.velocities[base + j + k]
                }
                let projection = (r * dv).sum()
                guard abs(projection) > constraintTolerance * c.length * c.length / timeStep else { continue }
                done = false
                let wi = inverseMass[i], wj = inverseMass[j]
                let k0 = projection / ((r * r).sum() * (wi + wj))
                for k in 0..<3 {
                    state.velocities[base + i + k] -= k0 * wi * r[k]
                    state.velocities[base + j + k] += k0 * wj * r[k]
                }
            }
            if done { return }
        }
        throw SamplingError(step: 0, reason: "RATTLE did not converge in 1000 iterations")
    }
}
