#!/usr/bin/env python3
"""OpenMM Langevin MD of the alanine plugin's prmtop: the reference the `ensemble` dynamics
sampler is compared with (README, "Molecular dynamics: alanine dipeptide").

LangevinMiddleIntegrator (BAOAB "middle" splitting), 2 fs, bonds to hydrogen constrained
(constraints=HBonds), friction 1/ps, 300 K, ff96 + OBC1 (implicitSolvent=OBC1, NoCutoff) from
the same prmtop the plugin reads, CPU platform. The system is built as scripts/alanine_openmm.py
builds it, except for the constraints. Starts from the prmtop's .inpcrd, minimised, then
--equilibrate ps are discarded. Writes one frame every --interval ps to an AMBER NetCDF file
(Å, `time` in ps) and, beside it, <out>.json with the wall time, the steps and the ns/day.

    .venv/bin/python scripts/alanine_openmm_md.py --ns 20 --out out/alanine-openmm.nc
        [--seed 1] [--threads 1] [--solvent obc1] [--temperature 300] [--interval 1]

`ensemble ramachandran out/alanine-openmm.nc --reference out/alanine-reference.nc --plugin alanine`
then compares φ/ψ histograms.
"""
import argparse
import json
import os
import time

import mdtraj
import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit

HERE = os.path.dirname(os.path.abspath(__file__))


def make_simulation(args):
    prmtop = app.AmberPrmtopFile(args.prmtop)
    implicit = {"vacuum": None, "obc1": app.OBC1, "obc2": app.OBC2}[args.solvent]
    system = prmtop.createSystem(nonbondedMethod=app.NoCutoff, constraints=app.HBonds,
                                 rigidWater=False, implicitSolvent=implicit)
    integrator = openmm.LangevinMiddleIntegrator(args.temperature * unit.kelvin, args.friction / unit.picosecond,
                                                 args.timestep * unit.femtoseconds)
    integrator.setRandomNumberSeed(args.seed)
    platform = openmm.Platform.getPlatformByName("CPU")
    simulation = app.Simulation(prmtop.topology, system, integrator, platform, {"Threads": str(args.threads)})
    inpcrd = app.AmberInpcrdFile(os.path.splitext(args.prmtop)[0] + ".inpcrd")
    simulation.context.setPositions(inpcrd.positions)
    simulation.minimizeEnergy()
    simulation.context.setVelocitiesToTemperature(args.temperature * unit.kelvin, args.seed)
    return simulation


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prmtop", default=os.path.join(HERE, "..", "data", "alanine-dipeptide-ff96.prmtop"))
    parser.add_argument("--solvent", choices=["vacuum", "obc1", "obc2"], default="obc1")
    parser.add_argument("--ns", type=float, required=True, help="production length, ns")
    parser.add_argument("--equilibrate", type=float, default=100, help="discarded ps before production")
    parser.add_argument("--interval", type=float, default=1.0, help="ps between frames")
    parser.add_argument("--timestep", type=float, default=2.0, help="fs")
    parser.add_argument("--friction", type=float, default=1.0, help="1/ps")
    parser.add_argument("--temperature", type=float, default=300.0, help="K")
    parser.add_argument("--threads", type=int, default=1, help="CPU platform threads")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", required=True, help="AMBER NetCDF (.nc)")
    args = parser.parse_args()

    simulation = make_simulation(args)
    per_frame = int(round(args.interval * 1000 / args.timestep))
    frames = int(round(args.ns * 1000 / args.interval))
    simulation.step(int(round(args.equilibrate * 1000 / args.timestep)))
    start = time.perf_counter()
    with mdtraj.formats.NetCDFTrajectoryFile(args.out, "w", force_overwrite=True) as out:
        for k in range(frames):
            simulation.step(per_frame)
            x = simulation.context.getState(getPositions=True).getPositions(asNumpy=True)
            out.write(np.asarray(x.value_in_unit(unit.angstrom))[None].astype(np.float32),
                      time=np.array([(k + 1) * args.interval], dtype=np.float32))
            if (k + 1) % 1000 == 0:
                out.flush()
                print(f"{(k + 1) * args.interval / 1000:.1f} ns, {time.perf_counter() - start:.0f} s", flush=True)
    seconds = time.perf_counter() - start
    steps = frames * per_frame
    summary = {"openmm": openmm.__version__, "integrator": "LangevinMiddleIntegrator", "timestep_fs": args.timestep,
               "constraints": "HBonds", "friction_per_ps": args.friction, "temperature_k": args.temperature,
               "solvent": args.solvent, "ns": args.ns, "frames": frames, "steps": steps, "threads": args.threads,
               "seed": args.seed, "wall_seconds": seconds, "steps_per_second": steps / seconds,
               "ns_per_day": args.ns / seconds * 86400}
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
