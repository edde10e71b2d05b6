import ArgumentParser
import Distributed
import Equivariant
import Foundation
import PluginHost
import Sampling

extension Ensemble {
    /// `ensemble sample`: MCMC samples of a plugin's Boltzmann distribution into AMBER NetCDF.
    struct Sample: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Draw equilibrium samples with MALA, parallel tempering or Langevin dynamics (REMD); write AMBER NetCDF + PDB.",
            discussion: """
                Chains start from the plugin's initial positions (plus 0.01 noise each). During --burn-in \
                the MALA step size adapts toward 0.574 acceptance, then it is frozen. With --sampler pt \
                each chain is a ladder of --replicas temperatures T_m = kT·max^(m/(R−1)), exchanging \
                neighbours every --exchange-every steps; the kT replica is recorded. Clusters whose energy \
                is translation invariant move in the zero-centre-of-mass subspace.

                Molecules (a plugin whose atom table has hydrogens, e.g. alanine) are sampled by default with \
                --sampler langevin: Langevin dynamics in OpenMM's LangevinMiddle (BAOAB) form with masses from \
                the atom table, X–H bonds held by SHAKE/RATTLE, hydrogen masses repartitioned to 3 amu and a \
                4 fs step, γ = 1/ps, in replica exchange over 300–600 K (4 temperatures for alanine dipeptide, more for larger molecules; exchanges every 0.2 ps) \
                for 4 chains, a frame every 2 ps after 20 ps of burn-in. --sampler ghmc Metropolizes each \
                --trajectory-steps trajectory (exact: no time-step bias; 2 fs, natural masses by default). \
                Every run prints the energy's τ, ESS and split-R̂, and for a peptide the αR, β/PII and αL \
                basin populations with errors; "NOT CONVERGED" says which check failed.

                Frames are written chain-interleaved (step 1: chains 0..C−1, step 2: ...). The NetCDF \
                `time` is the MCMC step for mala/pt and the simulated time in ps for langevin/ghmc, `energy` \
                the reduced energy u = U/kT of each frame. The same --seed gives byte-identical coordinates.

                Many ranks (README, "Many ranks (MPI)"): under `mpirun -np R ensemble sample ...` each rank runs \
                its share of the chains (or, with --sampler pt, of every ladder's temperatures: --distribute) \
                with a seed derived from (--seed, rank); rank 0 gathers the frames into the one --out file, in \
                the order of a one-rank run, and counts energy evaluations over all ranks. With --model each \
                rank draws its share of --samples. Without mpirun the binary runs as one rank.

                Example:
                  ensemble sample --plugin alanine --samples 2000 --out ala.nc
                  ensemble sample --plugin double-well --sampler pt --samples 5000 --out dw4.nc
                  mpirun -np 2 ensemble sample --plugin double-well --samples 5000 \\
                    --threads 1 --out dw4.nc
                """)

        /// A value of `--sampler`: a kernel of `KernelRegistry` (run by `ChainRunner` in
        /// Sample+MCMC.swift) or one of the dynamics samplers (langevin, ghmc: Sample+Dynamics.swift).
        struct Sampler: RawRepresentable, Hashable, ExpressibleByArgument, CaseIterable {
            let rawValue: String
            init?(rawValue: String) {
                guard Self.allCases.contains(where: { $0.rawValue == rawValue }) else { return nil }
                self.rawValue = rawValue
            }
            private init(named name: String) { rawValue = name }
            init?(argument: String) { self.init(rawValue: argument) }

            static let mala = Sampler(named: KernelRegistration.mala.name)
            static let langevin = Sampler(named: "langevin")
            static let ghmc = Sampler(named: "ghmc")
            static var allCases: [Sampler] { KernelRegistry.all.map { Sampler(named: $0.name) } + [.langevin, .ghmc] }

            /// Its registered kernel (nil for the dynamics samplers).
            var kernel: KernelRegistration? { KernelRegistry.named(rawValue) }
            /// Langevin dynamics or GHMC, with their own options (`DynamicsOptions`).
            var isDynamics: Bool { kernel == nil }
            /// A kernel on temperature ladders (PT).
            var isTempered: Bool { kernel?.tempered ?? false }
        }
        enum CentreOfMass: String, ExpressibleByArgument, CaseIterable { case auto, on, off }

        // One group per mode (SampleOptions.swift): `mode` hands a run only its own groups.
        @OptionGroup var common: SampleCommonOptions
        @OptionGroup(title: "MCMC and dynamics (--plugin)") var mcmc: MCMCOptions
        @OptionGroup(title: "Molecular dynamics (--sampler langevin|ghmc)") var dynamicsOptions: DynamicsOptions
        @OptionGroup(title: "Trained sampler (--model)") var modelOptions: ModelOptions
        @OptionGroup(title: "Correction of a trained sampler's draws (--model with --correct-steps)") var correction: CorrectionOptions

        func validate() throws {
            let m = modelOptions, c = correction
            let model = m.model, samples = common.samples, out = common.out
            if model == nil && common.plugin == nil { throw ValidationError("give --plugin NAME (MCMC) or --model MODEL.ckpt") }
            if m.resample && model == nil { throw ValidationError("--resample needs --model") }
            if c.steps != 0 && model == nil { throw ValidationError("--correct-steps needs --model") }
            if let timeSteps = m.timeSteps, model == nil || timeSteps < 2 { throw ValidationError("--time-steps needs --model and at least 2 steps, got \(timeSteps)") }
            if let leapfrog = c.leapfrog, leapfrog < 0 { throw ValidationError("--correct-leapfrog must be ≥ 0, got \(leapfrog)") }
            guard c.anneal >= 0, c.anneal == 0 || c.steps > 0 else { throw ValidationError("--correct-anneal needs --correct-steps and must be ≥ 0, got \(c.anneal)") }
            guard c.global >= 0, c.global == 0 || c.steps > 0 else { throw ValidationError("--correct-global needs --correct-steps and must be ≥ 0, got \(c.global)") }
            guard c.stepSize == nil || c.steps > 0 else { throw ValidationError("--correct-step-size needs --correct-steps") }
            guard c.threshold == CorrectionOptions.defaultThreshold || c.steps > 0 else { throw ValidationError("--correct-threshold needs --correct-steps") }
            if let t = m.modelTemperature {
                guard model != nil, t > 0 else { throw ValidationError("--model-temperature needs --model and a temperature > 0 (× kT), got \(t)") }
                if c.steps > 0 && t != 1 { throw ValidationError("--correct-steps corrects towards the target (temperature 1): leave --model-temperature out") }
            }
            if m.draws != nil && c.steps == 0 { throw ValidationError("--draws goes with --correct-steps (it corrects draws written by --raw-out)") }
            if m.draws != nil && m.rawOut != nil { throw ValidationError("--draws and --raw-out together would copy the draws: give one") }
            if m.draws != nil && Communicator.world.size > 1 { throw ValidationError("--draws runs on one rank") }
            if m.rawOut != nil && c.steps == 0 { throw ValidationError("--raw-out goes with --correct-steps (without it --out holds the raw draws)") }
            guard c.steps == 0 || c.steps >= 2 else { throw ValidationError("--correct-steps must be 0 (none) or ≥ 2, got \(c.steps)") }
            try SystemOptions.checkParameters(common.parameters)
            guard common.threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(common.threads)") }
            for (name, value) in [("--samples", samples), ("--thin", mcmc.thin), ("--chains", mcmc.chains),
                                  ("--exchange-every", mcmc.exchangeEvery)] where value <= 0 {
                throw ValidationError("\(name) must be a positive integer, got \(value)")
            }
            guard mcmc.burnIn >= 0 else { throw ValidationError("--burn-in must be ≥ 0, got \(mcmc.burnIn)") }
            if mcmc.mcmcSampler.isTempered {
                guard mcmc.replicas >= 2 else { throw ValidationError("--replicas must be ≥ 2 for pt, got \(mcmc.replicas)") }
                guard mcmc.maxTemperature > 1 else {
                    throw ValidationError("--max-temperature must be > 1, got \(mcmc.maxTemperature)")
                }
            }
            guard mcmc.stepSize > 0 else { throw ValidationError("--step-size must be > 0") }
            try validateDynamics()
            try validateOptionsAreUsed()
            let ranks = Communicator.world.size
            if model == nil && ranks > 1 {
                if mcmc.distribution == .replicas {
                    guard mcmc.replicas >= ranks else {
                        throw ValidationError("--replicas \(mcmc.replicas) is fewer than the \(ranks) ranks; give at least one temperature per rank, or --distribute chains")
                    }
                } else if mcmc.chains < ranks {
                    throw ValidationError("--chains \(mcmc.chains) is fewer than the \(ranks) ranks; give at least one chain per rank")
                }
            }
            guard out.hasSuffix(".nc") else { throw ValidationError("--out must end in .nc (AMBER NetCDF), got \(out)") }
            if Communicator.world.isRoot {  // rank 0 writes them
                var files = OutputFiles()
                files.output("--out", out)
                files.output("the topology", topologyPath(of: out), note: "written beside --out")
                files.output("--json", common.json)
                files.output("--raw-out", m.rawOut)
                files.output("the topology", m.rawOut.map(topologyPath(of:)), note: "written beside --raw-out")
                files.output("the correction summary", c.steps > 0 ? ModelSampling.correctionSummaryPath(out: out) : nil,
                             note: "written beside --out")
                files.input("--model", model)
                files.input("--draws", m.draws)
                try files.check(overwrite: common.overwrite)
            }
        }

        func run() throws {
            let world = Communicator.world
            Interrupt.install()
            try onEveryRank(world) {
                switch mode {
                case .model(let run): try run.run(world: world)
                case .mcmc(let run): try run.run(world: world)
                }
            }
        }
    }
}
