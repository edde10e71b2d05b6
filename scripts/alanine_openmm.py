#!/usr/bin/env python3
"""OpenMM reference energies and forces for the alanine plugin's cross-check.

Loads an AMBER prmtop with openmm.app.AmberPrmtopFile and builds the System the way
the plugin claims to reproduce it: nonbondedMethod=NoCutoff, constraints=None,
rigidWater=False, implicitSolvent None / OBC1 / OBC2 with the default dielectrics
(solute 1, solvent 78.5) and the default ACE surface-area term. Evaluates on the
Reference platform (double precision). With --cutoff R (Å): nonbondedMethod=CutoffNonPeriodic,
nonbondedCutoff=R, createSystem's reaction-field dielectric (78.3 in vacuum, 1 with GB).

Input:  --positions FILE, raw little-endian float64 [frames][atoms][3] in Å.
Output: --output FILE, raw little-endian float64 [frames][1 + 3*atoms]: the potential
        energy in kJ/mol followed by the forces in kJ/mol/nm.

    python scripts/alanine_openmm.py --prmtop data/alanine-dipeptide-ff96.prmtop \
        --solvent obc2 --positions x.f64 --output ef.f64
"""
import argparse
import sys

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit


def make_system(prmtop_path, solvent, cutoff=None):
    """cutoff: None (every pair) or the CutoffNonPeriodic cutoff in Å."""
    prmtop = app.AmberPrmtopFile(prmtop_path)
    implicit = {"vacuum": None, "obc1": app.OBC1, "obc2": app.OBC2}[solvent]
    if cutoff is None:
        system = prmtop.createSystem(nonbondedMethod=app.NoCutoff, constraints=None,
                                     rigidWater=False, implicitSolvent=implicit)
    else:
        system = prmtop.createSystem(nonbondedMethod=app.CutoffNonPeriodic,
                                     nonbondedCutoff=cutoff * 0.1 * unit.nanometer, constraints=None,
                                     rigidWater=False, implicitSolvent=implicit)
    return prmtop, system


def make_context(system, platform="Reference"):
    integrator = openmm.VerletIntegrator(1.0 * unit.femtoseconds)
    platform = openmm.Platform.getPlatformByName(platform)
    return openmm.Context(system, integrator, platform)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prmtop", required=True)
    parser.add_argument("--solvent", choices=["vacuum", "obc1", "obc2"], required=True)
    parser.add_argument("--positions", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--cutoff", type=float, default=None, help="CutoffNonPeriodic cutoff in Å (default: none)")
    args = parser.parse_args(argv)

    prmtop, system = make_system(args.prmtop, args.solvent, args.cutoff)
    n = system.getNumParticles()
    x = np.fromfile(args.positions, dtype="<f8")
    if x.size % (3 * n) != 0:
        sys.exit(f"{args.positions}: {x.size} values is not a multiple of 3*{n}")
    x = x.reshape(-1, n, 3) * 0.1  # Å -> nm
    context = make_context(system)
    out = np.empty((x.shape[0], 1 + 3 * n))
    for k, frame in enumerate(x):
        context.setPositions(frame)
        state = context.getState(getEnergy=True, getForces=True)
        out[k, 0] = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        out[k, 1:] = state.getForces(asNumpy=True).value_in_unit(
            unit.kilojoule_per_mole / unit.nanometer).reshape(-1)
    out.astype("<f8").tofile(args.output)


if __name__ == "__main__":
    main()
