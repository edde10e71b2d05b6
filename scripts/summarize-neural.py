#!/usr/bin/env python3
"""Markdown tables of scripts/reproduce-neural.sh: per kind of sample set (raw draws, corrected,
PT at the same evaluations, PT at the same wall time), mean ± sd over seeds of the metrics against
the primary reference (and the public test set where scored), with evaluations and wall seconds.
Standard library only."""
import json
import pathlib
import re
import statistics
import sys


def load(path):
    return json.loads(path.read_text()) if path.exists() else None


def fmt(values, digits=2):
    values = [v for v in values if isinstance(v, (int, float)) and v == v]
    if not values:
        return "—"
    big = max(abs(v) for v in values) >= 1e4
    f = (lambda v: f"{v:.2e}") if big else (lambda v: f"{v:.{digits}f}")
    if len(values) == 1:
        return f(values[0])
    return f"{f(statistics.mean(values))} ± {f(statistics.stdev(values))}"


def number(path, pattern):
    m = re.findall(pattern, path.read_text()) if path.exists() else []
    return float(m[-1]) if m else float("nan")


def main():
    out = pathlib.Path(sys.argv[1])
    seeds = sorted(int(m.group(1)) for f in out.glob("train-s*.txt") if (m := re.fullmatch(r"train-s(\d+)\.txt", f.name)))
    train = {s: dict(evals=number(out / f"train-s{s}.txt", r"energy evaluations: (\d+)"),
                     wall=number(out / f"train-s{s}.txt", r"wall time: ([0-9.]+) s this run"),
                     val=number(out / f"train-s{s}.txt", r"validation loss \(held-out data, averaged parameters\): ([0-9.e+-]+)"))
             for s in seeds}
    print(f"seeds: {seeds}; training (data + steps): {fmt([t['evals'] for t in train.values()])} evaluations, "
          f"{fmt([t['wall'] for t in train.values()], 0)} s; final validation loss {fmt([t['val'] for t in train.values()], 4)}")
    ess = [load(out / f"weights-s{s}-sample.json") for s in seeds]
    ess = [e.get("ess_fraction") for e in ess if e]
    if ess:
        print(f"ESS/N of 200 draws with exact weights: {fmt(ess, 3)} (per seed: {', '.join(f'{e:.3f}' for e in ess)})")
    for suffix, title in (("", "primary reference (project PT)"), (".public", "public test set")):
        rows = []
        for kind, label in (("raw", "raw draws (no MCMC)"), ("corrected", "corrected (10 HMC × 9 leapfrog)"),
                            ("pt", "PT, same evaluations"), ("ptwall", "PT, same wall time")):
            cells = {k: [] for k in ("evals", "wall", "ew2", "aw2", "tv", "u", "ref", "pos")}
            for s in seeds:
                m = load(out / f"{kind}-s{s}{suffix}.json")
                sample = load(out / f"{kind}-s{s}-sample.json")
                if not m or not sample:
                    continue
                evals = sample.get("energy_evaluations", float("nan"))
                if sample.get("correction"):
                    evals += sample["correction"].get("energy_evaluations", 0)
                cells["evals"].append(evals)
                cells["wall"].append(sample.get("wall_seconds", float("nan")))
                cells["ew2"].append(m.get("energy_w2"))
                cells["aw2"].append(m.get("x_w2_aligned", m.get("x_w2_aligned_asbs")))
                cells["tv"].append(m.get("distance_tv"))
                cells["u"].append(m.get("energy_mean"))
                cells["ref"].append(m.get("reference_energy_mean"))
                text = (out / f"{kind}-s{s}-sample.txt")
                cells["pos"].append(number(text, r"u > 0: ([0-9.]+) %") if kind in ("raw", "corrected") else float("nan"))
            if cells["ew2"]:
                rows.append(f"| {label} | {len(cells['ew2'])} | {fmt(cells['evals'])} | {fmt(cells['wall'], 1)} | "
                            f"{fmt(cells['ew2'])} | {fmt(cells['aw2'], 3)} | {fmt(cells['tv'], 4)} | {fmt(cells['u'])} | "
                            f"{fmt(cells['ref'])} | {fmt(cells['pos'])} |")
        if rows:
            print(f"\nagainst the {title}:\n")
            print("| samples | seeds | evaluations (drawing) | wall s (drawing) | energy W2 | aligned W2 | distance TV | mean u | reference mean u | u > 0 (%) |")
            print("|---|---|---|---|---|---|---|---|---|---|")
            print("\n".join(rows))
    rdf = sorted(out.glob("*-rdf.json"))
    if rdf:
        print("\n| samples (periodic) | U/(Nε) | reference U/(Nε) | deviation (σ) | g(r) χ²/bin |")
        print("|---|---|---|---|---|")
        for f in rdf:
            r = load(f)
            s, ref = r.get("samples", {}), r.get("reference", {})
            print(f"| {f.name[:-len('-rdf.json')]} | {s.get('energy_per_particle', float('nan')):.4f} | "
                  f"{ref.get('energy_per_particle', float('nan')):.4f} | {r.get('energy_deviation_sigma', float('nan')):.2f} | "
                  f"{r.get('rdf_chi_squared_per_bin', float('nan')):.2f} |")


if __name__ == "__main__":
    main()
