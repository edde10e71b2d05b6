#!/usr/bin/env python3
"""Wall time to reach coarse φ/ψ TV ≤ 0.05 (30° bins) against a converged reference: the
`ensemble` default molecular sampler against OpenMM's CPU platform (LangevinMiddleIntegrator,
2 fs, HBonds), both on the same cores (README, "Molecular dynamics: alanine dipeptide").

    .venv/bin/python scripts/bench_alanine_md.py --ours out/bench-ours.nc --openmm out/alanine-openmm.nc \
        --reference out/alanine-reference.nc [--threads 2] [--target 0.05]

--ours is a finished `ensemble sample --plugin alanine ... --json <same name>.json` run (its wall
time and settings come from that JSON). --openmm is a trajectory of scripts/alanine_openmm_md.py;
its speed on --threads CPU-platform threads is measured here by a short run of the same script
(0.1 ns), so both samplers are timed on this machine as it is now. The TV of every prefix of a
trajectory (chain-interleaved for ours: a prefix is a shorter run of every chain) comes from
`ensemble ramachandran --prefixes`; its wall time is the run's time scaled to that prefix,
burn-in / equilibration included.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ENSEMBLE = os.path.join(HERE, "..", ".build", "release", "ensemble")


def prefix_curve(trajectory, reference):
    out = trajectory + ".prefixes.json"
    subprocess.run([ENSEMBLE, "ramachandran", trajectory, "--reference", reference, "--plugin", "alanine",
                    "--bins", "12", "--prefixes", "--json", out, "--overwrite"], check=True, stdout=subprocess.DEVNULL)
    with open(out) as f:
        report = json.load(f)
    return [(p["frames"], p["tv"]) for p in report["prefixes"]]


def first_below(curve, seconds_of, target):
    """Seconds of the shortest prefix from which on every longer prefix has TV ≤ target."""
    for i, (frames, tv) in enumerate(curve):
        if all(t <= target for _, t in curve[i:]):
            return frames, tv, seconds_of(frames)
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ours", required=True)
    parser.add_argument("--openmm", required=True)
    parser.add_argument("--reference", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--target", type=float, default=0.05)
    args = parser.parse_args()

    with open(os.path.splitext(args.ours)[0] + ".json") as f:
        ours = json.load(f)
    with open(os.path.splitext(args.openmm)[0] + ".json") as f:
        openmm_run = json.load(f)
    speed_file = os.path.join(os.path.dirname(args.openmm) or ".", "openmm-speed.nc")
    subprocess.run([sys.executable, os.path.join(HERE, "alanine_openmm_md.py"), "--ns", "0.1", "--equilibrate", "2",
                    "--threads", str(args.threads), "--out", speed_file], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.splitext(speed_file)[0] + ".json") as f:
        openmm_speed = json.load(f)

    chains, thin, burn_in = ours["chains"], ours["thin"], ours["burn_in"]
    total_steps = burn_in + -(-ours["frames"] // chains) * thin

    def ours_seconds(frames):
        return ours["wall_seconds"] * (burn_in + -(-frames // chains) * thin) / total_steps

    steps_per_ps = 1000 / openmm_run["timestep_fs"]
    interval_ps = openmm_run["ns"] * 1000 / openmm_run["frames"]

    def openmm_seconds(frames):
        return (100 + frames * interval_ps) * steps_per_ps / openmm_speed["steps_per_second"]

    rows = []
    for name, path, seconds_of in [("ensemble", args.ours, ours_seconds), ("OpenMM", args.openmm, openmm_seconds)]:
        curve = prefix_curve(path, args.reference)
        hit = first_below(curve, seconds_of, args.target)
        rows.append((name, curve, hit))
        print(f"{name}: " + ", ".join(f"{k} frames {seconds_of(k):.0f} s TV {tv:.4f}" for k, tv in curve))
    print(f"OpenMM {openmm_speed['openmm']} CPU platform, {args.threads} threads: "
          f"{openmm_speed['steps_per_second']:.0f} steps/s ({openmm_speed['ns_per_day']:.0f} ns/day)")
    print(f"ensemble: {ours['frames']} frames in {ours['wall_seconds']:.1f} s on {ours['threads']} threads")
    result = {"target_tv": args.target, "threads": args.threads,
              "openmm_steps_per_second": openmm_speed["steps_per_second"]}
    for name, curve, hit in rows:
        key = name.lower()
        result[key] = {"curve": curve, "seconds_to_target": hit[2] if hit else None}
        print(f"{name}: TV ≤ {args.target} after " + (f"{hit[2]:.0f} s ({hit[0]} frames, TV {hit[1]:.4f})" if hit
                                                      else "— not reached in this trajectory"))
    a, b = result["ensemble"]["seconds_to_target"], result["openmm"]["seconds_to_target"]
    if a and b:
        result["speedup"] = b / a
        print(f"speed-up: {b / a:.1f}×")
    with open(os.path.splitext(args.ours)[0] + ".bench.json", "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
