#!/usr/bin/env python3
"""Tests of the `openmm` energy plugin (docs/openmm.md), run by `make openmm-test`.

1. Energies and forces of the plugin, called through its C table (ctypes, in a process that
   does not import openmm), against OpenMM's Python API on the same System XML and the same
   platform, at perturbed configurations of alanine dipeptide (vacuum, OBC1) and of a solvated,
   periodic (PME) alanine dipeptide; the gradient against central finite differences; concurrent
   calls from several threads against sequential ones; energies through `ensemble energy`.
2. Alanine dipeptide from an OpenMM-built System (AmberPrmtopFile of the shipped ff96 prmtop,
   NoCutoff, no constraints; vacuum, OBC1, OBC2) against the `alanine` plugin, both through
   `ensemble energy` on the same frames.
3. The solvated periodic system sampled with the host's Langevin dynamics, written as AMBER
   NetCDF; MDAnalysis, mdtraj and cpptraj read it with the PDB topology and find the box; the recorded
   energies are OpenMM's energies of the written coordinates; the X–H constraints hold.
4. Every sampler (langevin REMD, mala, pt, ghmc, a tiny dsm model using the plugin's bonds)
   runs on the alanine System.
5. Clear errors for bad input (missing file, not a System, atom count mismatch, unknown key,
   triclinic box).

Every input is made here from the shipped prmtop and OpenMM's own force-field files; nothing
large is committed. Usage:

    .venv/bin/python scripts/openmm_plugin_test.py --ensemble .build/release/ensemble \
        --plugin-dir .build/release [--work DIR] [--keep]

The `driver` subcommand is the ctypes caller (internal).
"""
import argparse
import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

R = 8.31446261815324e-3  # kJ/(mol·K), as the plugin
T = 300.0
KT = R * T
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "data")


# ---------------------------------------------------------------------------------------------
# The ctypes driver: the plugin's C table (Sources/EnsemblePluginABI/include/ensemble_plugin.h)

class Atom(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * 8), ("element", ctypes.c_char * 4), ("residue", ctypes.c_char * 8),
                ("residue_number", ctypes.c_int32), ("mass", ctypes.c_double)]


SYSTEM = ctypes.c_void_p
DPTR = ctypes.POINTER(ctypes.c_double)


class Table(ctypes.Structure):
    _fields_ = [
        ("abi_version", ctypes.c_uint32), ("struct_size", ctypes.c_uint32),
        ("name", ctypes.c_char_p), ("version", ctypes.c_char_p), ("description", ctypes.c_char_p),
        ("parameters_help", ctypes.c_char_p),
        ("create", ctypes.CFUNCTYPE(SYSTEM, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t)),
        ("destroy", ctypes.CFUNCTYPE(None, SYSTEM)),
        ("particle_count", ctypes.CFUNCTYPE(ctypes.c_int32, SYSTEM)),
        ("dimension", ctypes.CFUNCTYPE(ctypes.c_int32, SYSTEM)),
        ("box", ctypes.CFUNCTYPE(ctypes.c_int32, SYSTEM, DPTR)),
        ("length_unit_angstrom", ctypes.CFUNCTYPE(ctypes.c_double, SYSTEM)),
        ("evaluate", ctypes.CFUNCTYPE(ctypes.c_int32, SYSTEM, ctypes.c_int64, DPTR, DPTR, DPTR,
                                      ctypes.c_char_p, ctypes.c_size_t)),
        ("atom", ctypes.CFUNCTYPE(ctypes.c_int32, SYSTEM, ctypes.c_int32, ctypes.POINTER(Atom))),
        ("initial_positions", ctypes.CFUNCTYPE(ctypes.c_int32, SYSTEM, DPTR)),
        ("bonds", ctypes.CFUNCTYPE(ctypes.c_int32, SYSTEM, ctypes.POINTER(ctypes.c_int32), ctypes.c_int32)),
    ]


def ptr(a):
    return a.ctypes.data_as(DPTR)


class Plugin:
    def __init__(self, so, parameters):
        lib = ctypes.CDLL(so)
        lib.ensemble_plugin_entry.restype = ctypes.POINTER(Table)
        self.t = lib.ensemble_plugin_entry().contents
        assert self.t.abi_version == 1 and self.t.struct_size >= ctypes.sizeof(Table), "ABI"
        error = ctypes.create_string_buffer(4096)
        self.s = self.t.create(parameters.encode(), error, 4096)
        if not self.s:
            raise RuntimeError(error.value.decode())
        self.n = self.t.particle_count(self.s)

    def evaluate(self, x, gradients=True):
        x = np.ascontiguousarray(x, dtype=np.float64).reshape(-1, self.n, 3)
        u = np.empty(len(x))
        g = np.empty_like(x) if gradients else None
        error = ctypes.create_string_buffer(4096)
        rc = self.t.evaluate(self.s, len(x), ptr(x), ptr(u), ptr(g) if gradients else None, error, 4096)
        if rc != 0:
            raise RuntimeError(error.value.decode())
        return u, g

    def start(self):
        x = np.empty((self.n, 3))
        assert self.t.initial_positions(self.s, ptr(x)) == 0
        return x

    def box(self):
        b = np.empty(3)
        return b if self.t.box(self.s, ptr(b)) == 1 else None

    def bonds(self):
        count = self.t.bonds(self.s, None, 0)
        pairs = (ctypes.c_int32 * (2 * count))()
        self.t.bonds(self.s, pairs, count)
        return np.array(pairs).reshape(-1, 2)

    def atoms(self):
        out = []
        for i in range(self.n):
            a = Atom()
            assert self.t.atom(self.s, i, ctypes.byref(a)) == 0
            out.append((a.name.decode(), a.element.decode(), a.residue.decode(), a.residue_number, a.mass))
        return out


def driver(args):
    """Evaluates --positions (.npy [frames][n][3], Å) through the plugin's table; writes
    energies, gradients, topology and the results of the concurrency check to --out (.npz)."""
    plugin = Plugin(args.so, args.parameters)
    x = np.load(args.positions)
    u, g = plugin.evaluate(x)
    u_only, _ = plugin.evaluate(x, gradients=False)
    atoms = plugin.atoms()
    result = dict(u=u, g=g, u_only=u_only, start=plugin.start(), bonds=plugin.bonds(),
                  masses=np.array([a[4] for a in atoms]), elements=np.array([a[1] for a in atoms]),
                  box=plugin.box() if plugin.box() is not None else np.zeros(0))
    if args.threads > 1:
        # The same frames split over threads that call evaluate concurrently (ctypes drops the GIL).
        parts = np.array_split(np.arange(len(x)), args.threads)
        out = [None] * len(parts)

        def work(k):
            out[k] = plugin.evaluate(x[parts[k]])

        for _ in range(3):
            threads = [threading.Thread(target=work, args=(k,)) for k in range(len(parts))]
            [t.start() for t in threads]
            [t.join() for t in threads]
        result["u_threads"] = np.concatenate([o[0] for o in out])
        result["g_threads"] = np.concatenate([o[1] for o in out])
    if args.fd:
        # Central finite differences of u on a few coordinates of the first frame.
        rng = np.random.default_rng(5)
        h = args.fd
        x0 = x[0].reshape(-1)
        idx = rng.choice(x0.size, size=12, replace=False)
        fd = []
        for i in idx:
            xp, xm = x0.copy(), x0.copy()
            xp[i] += h
            xm[i] -= h
            fd.append((plugin.evaluate(xp, False)[0][0] - plugin.evaluate(xm, False)[0][0]) / (2 * h))
        result["fd_index"] = idx
        result["fd"] = np.array(fd)
    np.savez(args.out, **result)


# ---------------------------------------------------------------------------------------------
# Inputs, made with OpenMM's Python API

def prepare_alanine(work):
    """ff96 alanine dipeptide from the shipped prmtop (as the `alanine` plugin reads it):
    NoCutoff, no constraints, vacuum / OBC1 / OBC2; the PDB from the inpcrd."""
    import openmm
    import openmm.app as app
    prmtop = app.AmberPrmtopFile(os.path.join(DATA, "alanine-dipeptide-ff96.prmtop"))
    inpcrd = app.AmberInpcrdFile(os.path.join(DATA, "alanine-dipeptide-ff96.inpcrd"))
    for name, implicit in [("vacuum", None), ("obc1", app.OBC1), ("obc2", app.OBC2)]:
        system = prmtop.createSystem(nonbondedMethod=app.NoCutoff, constraints=None, rigidWater=False,
                                     implicitSolvent=implicit)
        with open(os.path.join(work, f"ala-{name}.xml"), "w") as f:
            f.write(openmm.XmlSerializer.serialize(system))
    with open(os.path.join(work, "ala.pdb"), "w") as f:
        app.PDBFile.writeFile(prmtop.topology, inpcrd.positions, f)
    return np.array(inpcrd.getPositions(asNumpy=True).value_in_unit(openmm.unit.angstrom))


def prepare_solvated(work, edge_nm):
    """Alanine dipeptide (ff14SB prmtop's topology) in a cubic TIP3P box with amber14 and PME,
    cutoff 0.9 nm, flexible water (rigidWater=False) and no constraints, minimized; writes the
    System XML, a PDB (with CRYST1) and a State XML (positions and box)."""
    import openmm
    import openmm.app as app
    import openmm.unit as unit
    prmtop = app.AmberPrmtopFile(os.path.join(DATA, "alanine-dipeptide-ff14SB.prmtop"))
    inpcrd = app.AmberInpcrdFile(os.path.join(DATA, "alanine-dipeptide-ff14SB.inpcrd"))
    forcefield = app.ForceField("amber14-all.xml", "amber14/tip3p.xml")
    modeller = app.Modeller(prmtop.topology, inpcrd.positions)
    modeller.addSolvent(forcefield, model="tip3p", boxSize=openmm.Vec3(edge_nm, edge_nm, edge_nm) * unit.nanometer)
    system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.PME,
                                     nonbondedCutoff=0.9 * unit.nanometer, constraints=None, rigidWater=False)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("CPU"),
                             {"Threads": "1"})
    context.setPositions(modeller.positions)
    openmm.LocalEnergyMinimizer.minimize(context, 10.0, 300)
    state = context.getState(getPositions=True, getEnergy=True)
    with open(os.path.join(work, "water.xml"), "w") as f:
        f.write(openmm.XmlSerializer.serialize(system))
    with open(os.path.join(work, "water-state.xml"), "w") as f:
        f.write(openmm.XmlSerializer.serialize(state))
    with open(os.path.join(work, "water.pdb"), "w") as f:
        app.PDBFile.writeFile(modeller.topology, state.getPositions(), f)
    waters = sum(1 for r in modeller.topology.residues() if r.name == "HOH")
    return np.array(state.getPositions(asNumpy=True).value_in_unit(unit.angstrom)), waters


def openmm_reference(xml, frames, platform):
    """u = U/kT and ∇u = −F/kT/10 (1/Å) by OpenMM's Python API at frames [k][n][3] Å."""
    import openmm
    import openmm.unit as unit
    with open(xml) as f:
        system = openmm.XmlSerializer.deserialize(f.read())
    properties = {"Threads": "1"} if platform == "CPU" else {}
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(platform),
                             properties)
    u, g = [], []
    for x in frames:
        context.setPositions(x * 0.1)
        state = context.getState(getEnergy=True, getForces=True)
        u.append(state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole) / KT)
        g.append(-state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer) / KT / 10)
    return np.array(u), np.array(g)


def perturbed(x0, seed, sigmas=(0.0, 0.02, 0.05, 0.1, 0.2), each=2):
    rng = np.random.default_rng(seed)
    return np.stack([x0 + rng.normal(0, s, x0.shape) for s in sigmas for _ in range(each if s > 0 else 1)])


# ---------------------------------------------------------------------------------------------

class Checks:
    def __init__(self):
        self.failures = []
        self.report = {}

    def check(self, ok, what):
        print(("ok      " if ok else "FAILED  ") + what, flush=True)
        if not ok:
            self.failures.append(what)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def ensemble_energy(args, plugin, params, npy, extra=()):
    cmd = [args.ensemble, "energy", "--plugin-dir", args.plugin_dir, "--plugin", plugin] + \
          [a for p in params for a in ("--param", p)] + list(extra) + [npy]
    r = run(cmd)
    if r.returncode != 0:
        raise RuntimeError(" ".join(cmd) + "\n" + r.stderr)
    lines = r.stdout.strip().split("\n")[1:]
    return np.array([float(line.split(",")[1]) for line in lines])


def call_driver(args, work, tag, params, frames, threads=1, fd=0.0):
    npy = os.path.join(work, f"{tag}-frames.npy")
    np.save(npy, frames.reshape(len(frames), -1))
    out = os.path.join(work, f"{tag}-driver.npz")
    cmd = [sys.executable, os.path.abspath(__file__), "driver", "--so", args.so, "--parameters", params,
           "--positions", npy, "--out", out, "--threads", str(threads), "--fd", str(fd)]
    r = run(cmd)
    if r.returncode != 0:
        raise RuntimeError(" ".join(cmd) + "\n" + r.stdout + r.stderr)
    return dict(np.load(out)), npy


def relative_energy(a, b):
    """max |a − b| / max(|b|, 1) over frames (u in kT; the 1 keeps near-zero energies honest)."""
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1.0)))


def relative_gradient(a, b):
    """max over frames of max |a − b| / max |b| (per-frame force scale)."""
    return float(max(np.max(np.abs(x - y)) / np.max(np.abs(y)) for x, y in zip(a, b)))


def test_against_python(args, work, c, ala_x0, water_x0):
    """(1) the plugin's table against OpenMM's Python API on the same XML and platform."""
    cases = [("ala-vacuum", ala_x0, "ala.pdb", 0.1, 0.2), ("ala-obc1", ala_x0, "ala.pdb", 0.1, 0.2),
             ("water", water_x0, "water.pdb", 0.02, 0.05)]
    for name, x0, pdb, small, large in cases:
        frames = perturbed(x0, seed=len(name), sigmas=(0.0, small, large))
        for platform in ("Reference", "CPU"):
            params = f"system={work}/{name}.xml positions={work}/{pdb} platform={platform}"
            started = time.time()
            out, npy = call_driver(args, work, f"{name}-{platform}", params, frames,
                                   threads=3 if platform == "Reference" else 1,
                                   fd=1e-4 if (platform == "Reference" and name != "water") else 0.0)
            elapsed = time.time() - started
            u_ref, g_ref = openmm_reference(f"{work}/{name}.xml", frames, platform)
            eu, eg = relative_energy(out["u"], u_ref), relative_gradient(out["g"], g_ref)
            c.report[f"python_api/{name}/{platform}"] = dict(frames=len(frames), energy_relative=eu,
                                                             gradient_relative=eg, u=out["u"].tolist())
            # Reference: double precision, deterministic. CPU: OpenMM's own Contexts differ from one
            # another with PME (FFTW plans each Context's FFTs by timing): up to 3.8e-9 in energy and
            # 7.4e-7 in forces between two Python Contexts on the same frames, measured 2026-12-03.
            te, tg = (1e-9, 1e-9) if platform == "Reference" else (1e-7, 1e-5)
            c.check(eu <= te and eg <= tg,
                    f"{name} {platform}: plugin vs OpenMM Python API, {len(frames)} frames: "
                    f"energy {eu:.1e} (≤ {te:g}), gradient {eg:.1e} (≤ {tg:g}) relative [{elapsed:.1f} s]")
            # Reference is deterministic: bit for bit. OpenMM's CPU platform is not (PME's
            # reciprocal sum differs run to run at ~1e-9), so there the tolerance above applies.
            same_u = (np.array_equal(out["u_only"], out["u"]) if platform == "Reference"
                      else relative_energy(out["u_only"], out["u"]) <= te)
            c.check(same_u, f"{name} {platform}: energy-only calls give the same u")
            if name == "water" and platform == "Reference":  # the host splits the batch over 2 threads
                twice = os.path.join(work, "water-twice.npy")
                np.save(twice, np.concatenate([frames, frames]).reshape(2 * len(frames), -1))
                one, two = (ensemble_energy(args, "openmm", [f"system={work}/{name}.xml", f"positions={work}/{pdb}",
                                                             "platform=Reference"], twice, extra=["--threads", t])
                            for t in ("1", "2"))
                c.check(np.array_equal(one, two) and np.array_equal(one[:len(frames)], out["u"]),
                        f"{name} Reference: `ensemble energy --threads 2` (two Contexts) gives the --threads 1 "
                        f"numbers bit for bit")
            if "u_threads" in out:
                same = np.array_equal(out["u_threads"], out["u"]) and np.array_equal(out["g_threads"], out["g"])
                c.check(same, f"{name} {platform}: 3 threads calling evaluate concurrently give the sequential numbers")
            if "fd" in out:
                g0 = out["g"][0].reshape(-1)
                err = float(np.max(np.abs(out["fd"] - g0[out["fd_index"]])) / np.max(np.abs(g0)))
                c.report[f"finite_difference/{name}"] = err
                c.check(err <= 1e-6, f"{name}: ∇u against central differences (h = 1e-4 Å, 12 coordinates): "
                                     f"{err:.1e} of max |∇u| (≤ 1e-6)")
            if platform == "CPU":
                host = ensemble_energy(args, "openmm", ["system=" + f"{work}/{name}.xml", f"positions={work}/{pdb}"], npy,
                                       extra=["--threads", "1"])
                c.check(relative_energy(host, out["u"]) <= te,
                        f"{name}: `ensemble energy --plugin openmm` gives the table's u ({relative_energy(host, out['u']):.1e})")
    # topology of the solvated system: masses, box, bonds
    out = dict(np.load(os.path.join(work, "water-CPU-driver.npz")))
    import openmm
    with open(f"{work}/water.xml") as f:
        system = openmm.XmlSerializer.deserialize(f.read())
    masses = np.array([system.getParticleMass(i)._value for i in range(system.getNumParticles())])
    a, b, cc = system.getDefaultPeriodicBoxVectors()
    box = np.array([a[0]._value, b[1]._value, cc[2]._value]) * 10
    c.check(np.array_equal(out["masses"], masses), "water: masses from the System")
    import openmm.app as app
    pdb = app.PDBFile(f"{work}/water.pdb")
    pdb_x = np.array(pdb.getPositions(asNumpy=True).value_in_unit(openmm.unit.angstrom))
    c.check(np.allclose(out["start"], pdb_x, rtol=0, atol=1e-9), "water: start positions (Å) from the PDB")
    symbols = [a.element.symbol for a in pdb.topology.atoms()]
    c.check(list(out["elements"]) == symbols, f"water: elements from the PDB ({symbols.count('H')} H, {symbols.count('O')} O)")
    c.check(np.allclose(out["box"], box, rtol=0, atol=1e-12), f"water: box {out['box']} Å from the System")
    bonds = {tuple(sorted(p)) for f in system.getForces() if isinstance(f, openmm.HarmonicBondForce)
             for p in (f.getBondParameters(k)[:2] for k in range(f.getNumBonds()))}
    c.check({tuple(p) for p in out["bonds"]} == bonds, f"water: {len(out['bonds'])} bonds = the HarmonicBondForce pairs")
    # state= alone: the State's positions, elements from the masses.
    state_only = Plugin(args.so, f"system={work}/water.xml state={work}/water-state.xml")
    c.check(np.allclose(state_only.start(), water_x0, rtol=0, atol=1e-9)
            and [a[1] for a in state_only.atoms()] == symbols,
            "water, state= alone: start positions from the State, elements from the masses")
    # Rigid water and HBonds: the bonds come from the constraints, without water's H–H side.
    rigid = app.ForceField("amber14-all.xml", "amber14/tip3p.xml").createSystem(
        pdb.topology, nonbondedMethod=app.PME, nonbondedCutoff=0.9 * openmm.unit.nanometer,
        constraints=app.HBonds, rigidWater=True)
    with open(f"{work}/rigid.xml", "w") as f:
        f.write(openmm.XmlSerializer.serialize(rigid))
    topology = {tuple(sorted((b[0].index, b[1].index))) for b in pdb.topology.bonds()}
    reported = {tuple(p) for p in Plugin(args.so, f"system={work}/rigid.xml positions={work}/water.pdb").bonds()}
    c.check(reported == topology, f"rigid water + HBonds ({rigid.getNumConstraints()} constraints): "
                                  f"{len(reported)} bonds = the topology's {len(topology)}")


def test_alanine(args, work, c, ala_x0):
    """(2) OpenMM-built ff96 System through the openmm plugin against the alanine plugin."""
    frames = perturbed(ala_x0, seed=7, sigmas=(0.0, 0.02, 0.05, 0.1, 0.2), each=3)
    npy = os.path.join(work, "ala-compare.npy")
    np.save(npy, frames.reshape(len(frames), -1))
    for solvent in ("vacuum", "obc1", "obc2"):
        ours = ensemble_energy(args, "alanine", ["prmtop=" + os.path.join(DATA, "alanine-dipeptide-ff96.prmtop"),
                                      f"solvent={solvent}"], npy)
        for platform in ("Reference", "CPU"):
            omm = ensemble_energy(args, "openmm", [f"system={work}/ala-{solvent}.xml", f"positions={work}/ala.pdb",
                                         f"platform={platform}"], npy)
            err, absolute = relative_energy(omm, ours), float(np.max(np.abs(omm - ours)))
            c.report[f"alanine/{solvent}/{platform}"] = dict(frames=len(frames), relative=err, absolute_kT=absolute,
                                                             u_range=[float(ours.min()), float(ours.max())])
            bound = 1e-6 if platform == "Reference" else 1e-5
            c.check(err <= bound, f"alanine {solvent}, openmm platform={platform} vs `--plugin alanine`, "
                                  f"{len(frames)} frames (u {ours.min():.1f}…{ours.max():.1f}): {err:.1e} relative, "
                                  f"{absolute:.1e} kT (≤ {bound:g})")


def test_dynamics(args, work, c, waters):
    """(3) Langevin dynamics of the solvated periodic system; MDAnalysis/mdtraj read the result."""
    out = os.path.join(work, "water-md.nc")
    steps = dict(burn_in=args.md_burn_in, thin=args.md_thin, samples=args.md_samples)
    cmd = [args.ensemble, "sample", "--plugin-dir", args.plugin_dir, "--plugin", "openmm",
           "--param", f"system={work}/water.xml", "--param", f"positions={work}/water.pdb",
           "--param", f"state={work}/water-state.xml",
           "--sampler", "langevin", "--replicas", "1", "--chains", "1", "--timestep", "2",
           "--burn-in", str(steps["burn_in"]), "--thin", str(steps["thin"]), "--samples", str(steps["samples"]),
           "--threads", "1", "--seed", "3", "--out", out, "--overwrite"]
    started = time.time()
    r = run(cmd)
    wall = time.time() - started
    print(r.stdout, r.stderr, sep="\n")
    c.check(r.returncode == 0, f"ensemble sample --sampler langevin on the solvated periodic system exits 0 ({wall:.1f} s)")
    if r.returncode != 0:
        return
    import MDAnalysis
    import openmm
    pdb = out.replace(".nc", ".pdb")
    with open(f"{work}/water.xml") as f:
        system = openmm.XmlSerializer.deserialize(f.read())
    a, b, cc = system.getDefaultPeriodicBoxVectors()
    box = np.array([a[0]._value, b[1]._value, cc[2]._value]) * 10
    universe = MDAnalysis.Universe(pdb, out)
    dims = np.array([ts.dimensions.copy() for ts in universe.trajectory])
    n_atoms = universe.atoms.n_atoms
    c.check(n_atoms == system.getNumParticles() and len(dims) == steps["samples"],
            f"MDAnalysis reads {len(dims)} frames of {n_atoms} atoms ({waters} waters)")
    c.check(np.allclose(dims[:, :3], box, atol=1e-4) and np.allclose(dims[:, 3:], 90),
            f"MDAnalysis finds the box {dims[0, :3]} Å, angles {dims[0, 3:]} (System: {box})")
    try:
        import mdtraj
        traj = mdtraj.load(out, top=pdb)
        c.check(np.allclose(traj.unitcell_lengths * 10, box, atol=1e-4) and traj.n_atoms == n_atoms,
                f"mdtraj reads {traj.n_frames} frames, box {traj.unitcell_lengths[0] * 10} Å")
    except ImportError:
        print("mdtraj not installed: its check skipped")
    cpptraj = shutil.which("cpptraj", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if cpptraj:  # AmberTools' reader, as VMD reads AMBER NetCDF
        boxes = os.path.join(work, "cpptraj-box.dat")
        script = f"parm {pdb}\ntrajin {out}\nvector v box out {boxes}\nrun\n"
        r = run([cpptraj], input=script)
        rows = np.loadtxt(boxes, comments="#")[:, 1:4] if r.returncode == 0 and os.path.exists(boxes) else np.zeros((0, 3))
        c.check(len(rows) == len(dims) and np.allclose(rows, box, atol=1e-3) and f"{waters} solvent" in r.stdout,
                f"cpptraj reads {len(rows)} frames, box {rows[0] if len(rows) else None} Å, "
                f"{waters} solvent molecules")
    else:
        print("cpptraj not installed: its check skipped")
    # The recorded energies are OpenMM's energies of the written (float32) coordinates.
    from netCDF4 import Dataset
    with Dataset(out) as nc:
        x = np.array(nc["coordinates"][:], dtype=np.float64)
        recorded = np.array(nc["energy"][:])
    u_ref, _ = openmm_reference(f"{work}/water.xml", x, "CPU")
    err = relative_energy(recorded, u_ref)
    c.check(err <= 1e-5, f"the trajectory's energies are OpenMM's of its coordinates: {err:.1e} relative "
                         f"(float32 coordinates; u {recorded.min():.0f}…{recorded.max():.0f})")
    # X–H constraints: every O–H and C–H stays at its start length.
    hydrogens = universe.select_atoms("element H")
    heavy = universe.select_atoms("not element H")
    universe.trajectory[0]  # each hydrogen's partner: the nearest heavy atom in the first frame
    d = np.linalg.norm(hydrogens.positions[:, None, :] - heavy.positions[None, :, :], axis=2)
    bonded = list(zip(hydrogens.indices, heavy.indices[np.argmin(d, axis=1)]))
    i, j = np.array(bonded).T
    lengths = np.array([np.linalg.norm(universe.atoms.positions[i] - universe.atoms.positions[j], axis=1)
                        for _ in universe.trajectory])
    spread = float(np.max(np.abs(lengths - lengths[0])))
    c.check(spread < 1e-4, f"{len(bonded)} X–H bond lengths constant over the run to {spread:.1e} Å (≤ 1e-4, float32)")
    c.report["dynamics"] = dict(atoms=int(n_atoms), waters=waters, frames=len(dims), wall_s=wall,
                                md_steps=steps["burn_in"] + steps["thin"] * steps["samples"], timestep_fs=2,
                                box_angstrom=dims[0, :3].tolist(), u_first=float(recorded[0]),
                                u_last=float(recorded[-1]),
                                command=" ".join(cmd))


def test_samplers(args, work, c):
    """Every sampler takes the plugin: short runs on the OBC1 alanine System (langevin REMD, the
    molecular default; mala; pt; ghmc), then a tiny dsm model whose bond graph comes from the
    plugin's bonds, drawn from with `sample --model`."""
    base = [args.ensemble, "sample", "--plugin-dir", args.plugin_dir, "--plugin", "openmm",
            "--param", f"system={work}/ala-obc1.xml", "--param", f"positions={work}/ala.pdb",
            "--chains", "2", "--seed", "1", "--threads", "1", "--overwrite"]
    runs = {"langevin (default)": ["--burn-in", "100", "--thin", "10", "--samples", "64", "--json", f"{work}/s-data.json",
                                   "--out", f"{work}/s-data.nc"],
            "mala": ["--sampler", "mala", "--burn-in", "200", "--thin", "10", "--samples", "10", "--out", f"{work}/s.nc"],
            "pt": ["--sampler", "pt", "--replicas", "4", "--burn-in", "200", "--thin", "10", "--samples", "10",
                   "--out", f"{work}/s.nc"],
            "ghmc": ["--sampler", "ghmc", "--burn-in", "20", "--thin", "20", "--samples", "10", "--out", f"{work}/s.nc"]}
    for name, extra in runs.items():
        r = run(base + extra)
        c.check(r.returncode == 0 and "wrote" in r.stdout, f"sample {name} on the openmm plugin: "
                + (next((line for line in r.stdout.split("\n") if line.startswith("energy u")), "") or r.stderr[-300:]))
    r = run([args.ensemble, "train", "--plugin-dir", args.plugin_dir, "--plugin", "openmm",
             "--param", f"system={work}/ala-obc1.xml", "--param", f"positions={work}/ala.pdb", "--method", "dsm",
             "--data", f"{work}/s-data.nc", "--steps", "3", "--batch", "8", "--hidden", "8", "--layers", "1",
             "--seed", "1", "--out", f"{work}/m.ckpt"])
    c.check(r.returncode == 0 and "bond graph: 21 bonds from plugin openmm" in r.stdout + r.stderr,
            "train --method dsm finds the 21 bonds of alanine dipeptide in the plugin" + ("" if r.returncode == 0 else r.stderr[-300:]))
    r = run([args.ensemble, "sample", "--plugin-dir", args.plugin_dir, "--model", f"{work}/m.ckpt", "--samples", "8",
             "--out", f"{work}/m.nc", "--overwrite"])
    c.check(r.returncode == 0 and "wrote 8 frames" in r.stdout, "sample --model draws from it")


def batch_means(values, batches=10):
    """Mean and batch-means standard error."""
    values = np.asarray(values)
    means = np.array([b.mean() for b in np.array_split(values, batches)])
    return float(values.mean()), float(means.std(ddof=1) / np.sqrt(batches))


def compare_md(args, work, c):
    """(optional, --md-compare PS) ⟨u⟩ of the host's Langevin dynamics of the solvated box against
    OpenMM's LangevinMiddleIntegrator on the same System with the same protocol: X–H bonds
    constrained at their start lengths (as the host's --constraints hbonds), hydrogens at 3 amu
    taken from their heavy atom, 2 fs, γ = 1/ps, 300 K; the same 10 ps burn-in, a frame every 0.1 ps."""
    import openmm
    import openmm.unit as unit
    thin, burn_in = 50, 5000
    samples = int(round(args.md_compare / 0.002 / thin))
    out = os.path.join(work, "water-long.nc")
    cmd = [args.ensemble, "sample", "--plugin-dir", args.plugin_dir, "--plugin", "openmm",
           "--param", f"system={work}/water.xml", "--param", f"positions={work}/water.pdb",
           "--param", f"state={work}/water-state.xml", "--sampler", "langevin", "--replicas", "1", "--chains", "1",
           "--timestep", "2", "--burn-in", str(burn_in), "--thin", str(thin), "--samples", str(samples),
           "--threads", "1", "--seed", "11", "--out", out, "--overwrite"]
    ours = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with open(f"{work}/water.xml") as f:
        system = openmm.XmlSerializer.deserialize(f.read())
    with open(f"{work}/water-state.xml") as f:
        x = openmm.XmlSerializer.deserialize(f.read()).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    masses = [system.getParticleMass(i).value_in_unit(unit.dalton) for i in range(system.getNumParticles())]
    hydrogens = [i for i, m in enumerate(masses) if m < 1.5]
    heavy = np.array([i for i, m in enumerate(masses) if m >= 1.5])
    for h in hydrogens:
        d = np.linalg.norm(x[heavy] - x[h], axis=1)
        j = int(heavy[np.argmin(d)])
        system.addConstraint(h, j, float(d.min()))
        moved = 3.0 - masses[h]
        masses[h] += moved
        masses[j] -= moved
    for i, m in enumerate(masses):
        system.setParticleMass(i, m)
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, 2 * unit.femtosecond)
    integrator.setRandomNumberSeed(11)
    integrator.setConstraintTolerance(1e-8)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("CPU"), {"Threads": "1"})
    context.setPositions(x)
    context.applyConstraints(1e-8)
    context.setVelocitiesToTemperature(300 * unit.kelvin, 11)
    started = time.time()
    integrator.step(burn_in)
    u_openmm = []
    for _ in range(samples):
        integrator.step(thin)
        u_openmm.append(context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole) / KT)
    openmm_wall = time.time() - started
    text, _ = ours.communicate()
    print(text)
    from netCDF4 import Dataset
    with Dataset(out) as nc:
        u_ours = np.array(nc["energy"][:])
    (m1, e1), (m2, e2) = batch_means(u_ours), batch_means(u_openmm)
    z = abs(m1 - m2) / np.hypot(e1, e2)
    c.report["md_compare"] = dict(ps=args.md_compare, frames=samples, ensemble=[m1, e1], openmm=[m2, e2], z=z,
                                  openmm_wall_s=openmm_wall, command=" ".join(cmd))
    c.check(z < 3, f"⟨u⟩ over {args.md_compare:g} ps: ensemble {m1:.1f} ± {e1:.1f}, OpenMM LangevinMiddle "
                   f"{m2:.1f} ± {e2:.1f} kT ({z:.1f}σ; OpenMM {openmm_wall:.0f} s)")


def test_errors(args, work, c):
    """(4) bad input gives a clear message."""
    npy = os.path.join(work, "ala-compare.npy")
    bad_xml = os.path.join(work, "bad.xml")
    with open(bad_xml, "w") as f:
        f.write("<System version='1'><Particles><Particle mass='1'/>")
    import openmm
    import openmm.app as app
    with open(f"{work}/water.xml") as f:
        system = openmm.XmlSerializer.deserialize(f.read())
    a, b, cc = system.getDefaultPeriodicBoxVectors()
    system.setDefaultPeriodicBoxVectors(a, b + openmm.Vec3(0.3, 0, 0) * openmm.unit.nanometer, cc)
    with open(f"{work}/triclinic.xml", "w") as f:
        f.write(openmm.XmlSerializer.serialize(system))
    cases = [
        (["system=/nonexistent/s.xml", f"positions={work}/ala.pdb"], "cannot read system=/nonexistent/s.xml"),
        ([f"system={work}/ala.pdb", f"positions={work}/ala.pdb"], "is not an OpenMM System XML"),
        ([f"system={bad_xml}", f"positions={work}/ala.pdb"], "cannot be read as an OpenMM System"),
        ([f"system={work}/ala-vacuum.xml", f"positions={work}/water.pdb"], "has 22 particles"),
        ([f"system={work}/ala-vacuum.xml", f"state={work}/water-state.xml"], "positions, system="),
        ([f"system={work}/ala-vacuum.xml", f"state={work}/ala.pdb"], "is not an OpenMM State XML"),
        ([f"system={work}/ala-vacuum.xml", f"positions={work}/ala.pdb", "cutoff=1"], "unknown parameter 'cutoff'"),
        ([f"system={work}/ala-vacuum.xml"], "give start coordinates"),
        ([f"positions={work}/ala.pdb"], "parameter 'system' is required"),
        ([f"system={work}/ala-vacuum.xml", f"positions={work}/ala.pdb", "platform=CUDA"], "is not one of CPU, Reference"),
        ([f"system={work}/triclinic.xml", f"positions={work}/water.pdb"], "triclinic"),
    ]
    for params, expected in cases:
        cmd = [args.ensemble, "energy", "--plugin-dir", args.plugin_dir, "--plugin", "openmm"] + \
              [x for p in params for x in ("--param", p)] + [npy]
        r = run(cmd)
        message = next((line for line in r.stderr.split("\n") if line.startswith("Error")), r.stderr.strip())
        c.check(r.returncode != 0 and expected in r.stderr, f"error for {' '.join(params)}: {message[:160]}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    d = sub.add_parser("driver")
    d.add_argument("--so", required=True)
    d.add_argument("--parameters", required=True)
    d.add_argument("--positions", required=True)
    d.add_argument("--out", required=True)
    d.add_argument("--threads", type=int, default=1)
    d.add_argument("--fd", type=float, default=0.0)
    parser.add_argument("--ensemble", default=os.path.join(REPO, ".build/release/ensemble"))
    parser.add_argument("--plugin-dir", default=os.path.join(REPO, ".build/release"))
    parser.add_argument("--work", help="keep inputs and outputs here (default: a temporary directory)")
    parser.add_argument("--edge", type=float, default=2.2, help="water box edge, nm (default 2.2)")
    parser.add_argument("--md-burn-in", type=int, default=500)
    parser.add_argument("--md-thin", type=int, default=100)
    parser.add_argument("--md-samples", type=int, default=20)
    parser.add_argument("--report", help="write the measured numbers as JSON here")
    parser.add_argument("--md-compare", type=float, default=0.0, metavar="PS",
                        help="also compare ⟨u⟩ of PS ps of dynamics with OpenMM's own integrator (not in make test)")
    parser.add_argument("--only-md-compare", action="store_true", help="prepare the inputs and run --md-compare only")
    args = parser.parse_args(argv)
    if args.command == "driver":
        return driver(args)

    args.so = os.path.join(args.plugin_dir, "libEnsembleOpenMM.so")
    work = args.work or tempfile.mkdtemp(prefix="openmm-plugin-test-")
    os.makedirs(work, exist_ok=True)
    c = Checks()
    started = time.time()
    ala_x0 = prepare_alanine(work)
    water_x0, waters = prepare_solvated(work, args.edge)
    print(f"inputs in {work}: alanine dipeptide (22 atoms), solvated: {len(water_x0)} atoms, {waters} waters, "
          f"{args.edge} nm box ({time.time() - started:.1f} s)", flush=True)
    if not args.only_md_compare:
        test_against_python(args, work, c, ala_x0, water_x0)
        test_alanine(args, work, c, ala_x0)
        test_dynamics(args, work, c, waters)
        test_samplers(args, work, c)
        test_errors(args, work, c)
    if args.md_compare > 0:
        compare_md(args, work, c)
    c.report["wall_s"] = time.time() - started
    if args.report:
        with open(args.report, "w") as f:
            json.dump(c.report, f, indent=1)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    print(f"openmm plugin: {len(c.failures)} failed ({time.time() - started:.0f} s)")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
