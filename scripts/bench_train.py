#!/usr/bin/env python3
"""`make bench`'s training table: for each case, the step `ensemble train` runs
(`ensemble bench --train CASE`) beside the same step in PyTorch (scripts/bench_train_torch.py),
each in its own process (so peak RSS is the case's own), same thread count.

usage: python3 scripts/bench_train.py [--ensemble .build/release/ensemble] [--python .venv-torch/bin/python]
                                      [--threads 2] [--steps 5] [--case NAME ...]
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = ["dw4-idem", "lj13-idem", "dw4-tb", "lj13-tb"]


def run(command):
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    line = [l for l in out.splitlines() if l.startswith("{")][-1]
    return json.loads(line)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ensemble", default=".build/release/ensemble")
    p.add_argument("--python", default=".venv-torch/bin/python")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--case", action="append")
    a = p.parse_args()
    if not os.path.exists(a.python):
        sys.exit(f"{a.python} not found: python3 -m venv .venv-torch && .venv-torch/bin/pip install torch==2.13.0")
    print(f"training step, wall ms (median of {a.steps} after one warm-up), {a.threads} threads each")
    print("| case | ensemble ms | PyTorch ms | speed-up | peak RSS ensemble / PyTorch (MB) |")
    print("|---|---|---|---|---|")
    for case in a.case or CASES:
        ours = run([a.ensemble, "bench", "--train", case, "--threads", str(a.threads), "--steps", str(a.steps)])
        theirs = run([a.python, os.path.join(HERE, "bench_train_torch.py"), "--case", case,
                      "--threads", str(a.threads), "--steps", str(a.steps)])
        o, t = ours["result"], theirs["result"]
        print(f"| {ours['title']} | {o['ms']:.1f} | {t['ms']:.1f} | {t['ms'] / o['ms']:.2f}× "
              f"| {o['peak_rss_mb']:.0f} / {t['peak_rss_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
