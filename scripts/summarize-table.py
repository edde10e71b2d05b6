#!/usr/bin/env python3
"""Mean ± sd over seeds of the runs written by scripts/reproduce-table.sh, as a Markdown table.

Each neural row is followed by the MCMC row that was given the same energy-evaluation budget
(training + sampling) run by run. Standard library only."""
import json
import pathlib
import re
import statistics
import sys

LABELS = {
    "idem": "iDEM",
    "tb": "TB",
    "tb-lp": "TB + Langevin",
    "logvar": "log-variance",
    "logvar-lp": "log-variance + Langevin",
}


def number(path, pattern):
    m = re.findall(pattern, path.read_text()) if path.exists() else []
    return float(m[-1]) if m else float("nan")


def fmt(values, digits=2):
    values = [v for v in values if v == v]
    if not values:
        return "—"
    f = (lambda v: f"{v:.1e}") if max(abs(v) for v in values) >= 1e4 else (lambda v: f"{v:.{digits}f}")
    if len(values) == 1:
        return f(values[0])
    return f"{f(statistics.mean(values))} ± {f(statistics.stdev(values))}"


def fmt_count(values):
    values = [v for v in values if v == v]
    return f"{statistics.mean(values) / 1e6:.2f} M" if values else "—"


def main():
    out = pathlib.Path(sys.argv[1])
    runs = {}
    failed = {}
    for f in sorted(out.glob("*-s*.failed")):
        m = re.fullmatch(r"(.+)-s(\d+)\.failed", f.name)
        if m:
            failed.setdefault(m.group(1), []).append(f"seed {m.group(2)}: {f.read_text().strip()}")
            runs.setdefault(m.group(1), [])
    for f in sorted(out.glob("*-s*.json")):
        if f.name.startswith("mcmc-"):
            continue
        m = re.fullmatch(r"(.+)-s(\d+)\.json", f.name)
        if m:
            runs.setdefault(m.group(1), []).append((int(m.group(2)), f))
    header = ("| sampler | seeds | energy evals (train + sample) | training wall | E-W2 (√) | W2 aligned "
              "| W2 unaligned | dist. TV | ESS/N |")
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for method in [m for m in LABELS if m in runs] + [m for m in runs if m not in LABELS]:
        rows = {"nn": [], "mcmc": []}
        budgets, walls = [], []
        for seed, f in runs[method]:
            name = f"{method}-s{seed}"
            train = out / f"{name}-train.txt"
            sample = out / f"{name}-sample.txt"
            budgets.append(number(train, r"energy evaluations: (\d+)") + number(sample, r"energy evaluations: (\d+)"))
            walls.append(number(train, r"([0-9.]+) s training in total"))
            rows["nn"].append(json.loads(f.read_text()))
            mc = out / f"mcmc-{name}.json"
            if mc.exists():
                rows["mcmc"].append(json.loads(mc.read_text()))
        if method in failed:
            print(f"| {LABELS.get(method, method)}: {len(failed[method])} run(s) stopped | "
                  + "; ".join(failed[method]) + " |" + " |" * 7)
        for kind, label in (("nn", LABELS.get(method, method)), ("mcmc", "  MCMC, same budget")):
            r = rows[kind]
            if not r:
                continue
            get = lambda k: [x.get(k, float("nan")) for x in r]
            wall = fmt(walls, 0) + " s" if kind == "nn" else ""
            print(f"| {label} | {len(r)} | {fmt_count(budgets)} | {wall} | {fmt(get('energy_w2'))} "
                  f"| {fmt(get('x_w2_aligned'))} | {fmt(get('x_w2'))} | {fmt(get('distance_tv'), 3)} "
                  f"| {fmt(get('ess_fraction'), 3) if kind == 'nn' else '—'} |")


if __name__ == "__main__":
    main()
