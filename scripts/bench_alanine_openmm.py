#!/usr/bin/env python3
"""OpenMM energy+force throughput for alanine dipeptide, called as a user would.

One configuration at a time through a Context: setPositions, then
getState(getEnergy=True, getForces=True). Platforms CPU and Reference, solvent vacuum,
OBC1 and OBC2, the same prmtop and createSystem options as scripts/alanine_openmm.py.
Configurations are the start structure plus Gaussian noise (0.05 Å), made up front.

    .venv/bin/python scripts/bench_alanine_openmm.py [--prmtop data/alanine-dipeptide-ff96.prmtop]
        [--seconds 3] [--threads N]

Prints configurations/s per platform and solvent: per wall-clock second, and per CPU-second
of this process (all its threads), which is the fairer number on a busy machine for the
single-threaded Reference platform.
"""
import argparse
import os
import time

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit

HERE = os.path.dirname(os.path.abspath(__file__))


def bench(system, positions, platform_name, seconds, threads):
    integrator = openmm.VerletIntegrator(1.0 * unit.femtoseconds)
    platform = openmm.Platform.getPlatformByName(platform_name)
    properties = {}
    if platform_name == "CPU" and threads:
        properties["Threads"] = str(threads)
    context = openmm.Context(system, integrator, platform, properties)
    # Warm up.
    for frame in positions[:10]:
        context.setPositions(frame)
        context.getState(getEnergy=True, getForces=True)
    count = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    while True:
        for frame in positions:
            context.setPositions(frame)
            state = context.getState(getEnergy=True, getForces=True)
            state.getPotentialEnergy()
            state.getForces(asNumpy=True)
            count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed, count / (time.process_time() - cpu_start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prmtop", default=os.path.join(HERE, "..", "data", "alanine-dipeptide-ff96.prmtop"))
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--threads", type=int, default=0, help="CPU platform threads (0: OpenMM default)")
    args = parser.parse_args()

    prmtop = app.AmberPrmtopFile(args.prmtop)
    inpcrd = app.AmberInpcrdFile(os.path.splitext(args.prmtop)[0] + ".inpcrd")
    x0 = np.array(inpcrd.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
    rng = np.random.default_rng(0)
    positions = [x0 + 0.005 * rng.standard_normal(x0.shape) for _ in range(256)]

    print(f"OpenMM {openmm.__version__}, {os.path.basename(args.prmtop)}, "
          f"{prmtop.topology.getNumAtoms()} atoms, energy+forces, one configuration per call")
    print(f"{'platform':<10} {'solvent':<8} {'configurations/s':>17} {'us/config':>10} {'per CPU-second':>15}")
    for solvent, implicit in [("vacuum", None), ("obc1", app.OBC1), ("obc2", app.OBC2)]:
        system = prmtop.createSystem(nonbondedMethod=app.NoCutoff, constraints=None,
                                     rigidWater=False, implicitSolvent=implicit)
        for platform in ["CPU", "Reference"]:
            rate, cpu_rate = bench(system, positions, platform, args.seconds, args.threads)
            print(f"{platform:<10} {solvent:<8} {rate:>17.0f} {1e6 / rate:>10.1f} {cpu_rate:>15.0f}", flush=True)


if __name__ == "__main__":
    main()
