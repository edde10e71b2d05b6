#!/usr/bin/env python3
"""Interleaves independent AMBER NetCDF trajectories of one system into a single file whose
frames alternate run by run (frame t of run c at index t·C + c), the layout `ensemble sample`
writes for C chains, so that `ensemble ramachandran --chains C` (or `--reference-chains C`)
treats each run as a chain. Runs are cut to the shortest.

    .venv/bin/python scripts/interleave_nc.py --top out/alaref-new/ref1.pdb --out out/omm.nc a.nc b.nc c.nc
"""
import argparse

import mdtraj
import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="AMBER NetCDF trajectories, same atoms in the same order")
    parser.add_argument("--top", required=True, help="a PDB with those atoms (e.g. the .pdb `ensemble sample` writes)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    trajectories = [mdtraj.load(run, top=args.top) for run in args.runs]
    frames = min(t.n_frames for t in trajectories)
    xyz = np.stack([t.xyz[:frames] for t in trajectories], axis=1).reshape(frames * len(trajectories), -1, 3)
    time = np.arange(xyz.shape[0], dtype=np.float64)
    mdtraj.Trajectory(xyz, trajectories[0].topology, time=time).save_netcdf(args.out)
    print(f"{args.out}: {len(trajectories)} runs × {frames} frames, interleaved")


if __name__ == "__main__":
    main()
