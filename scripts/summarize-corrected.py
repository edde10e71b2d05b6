#!/usr/bin/env python3
"""Markdown table of scripts/reproduce-corrected.sh: per method, the raw and the corrected
samples and parallel tempering at the same total budget (mean ± sd over seeds), with the
budget, wall time, ESS/N and the marginal cost of 1000 more corrected samples. Standard
library only."""
import importlib.util
import json
import pathlib
import re
import statistics
import sys

LABELS = {"dsm": "tempered-data DSM (reverse SDE)", "dsm-ode": "tempered-data DSM (probability-flow ODE)",
          "idem": "iDEM (fixed, reverse SDE)", "tb": "trajectory balance", "tb-lp": "trajectory balance + Langevin",
          "logvar": "log-variance", "logvar-lp": "log-variance + Langevin"}


def _table_helpers():
    """number() and fmt() of summarize-table.py (one definition of each)."""
    spec = importlib.util.spec_from_file_location("summarize_table", pathlib.Path(__file__).with_name("summarize-table.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.number, module.fmt


number, fmt = _table_helpers()


def metrics(path):
    return json.loads(path.read_text()) if path.exists() else {}


def main():
    out = pathlib.Path(sys.argv[1])
    names = sorted({m.group(1) for f in out.glob("*-s*-train.txt")
                    if (m := re.fullmatch(r"(.+-s\d+)-train\.txt", f.name))})
    by_method = {}
    for name in names:
        method = name.rsplit("-s", 1)[0]
        by_method.setdefault(method, []).append(name)
    print("| sampler | seeds | evaluations (total) | wall (s) | E-W2 (√) | W2 aligned | dist. TV | mean u | u > 0 (%) | ESS/N | marginal evals / 1000 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for method, runs in by_method.items():
        rows = {"raw": [], "corrected": [], "pt": []}
        for name in runs:
            train = out / f"{name}-train.txt"
            corrected = out / f"{name}-corrected-sample.txt"
            raw = out / f"{name}-raw-sample.txt"
            report = metrics(out / f"{name}-corrected.correction.json")
            total = number(train, r"energy evaluations: (\d+)") + number(corrected, r"energy evaluations: (\d+)") \
                + report.get("energy_evaluations", 0)
            wall = number(train, r"wall time: ([0-9.]+) s this run") + number(corrected, r"wall time: ([0-9.]+)")
            for kind, sample in (("raw", raw), ("corrected", corrected)):
                m = metrics(out / f"{name}-{kind}.json")
                if not m:
                    continue
                positive = number(sample, r"u > 0: ([0-9.]+) %") if kind == "raw" \
                    else 100 * report.get("final", {}).get("positive_energy_fraction", float("nan"))
                marginal = number(sample, r"energy evaluations: (\d+)") + report.get("energy_evaluations", 0) \
                    if kind == "corrected" else number(sample, r"energy evaluations: (\d+)")
                rows[kind].append(dict(total=total, wall=wall, ew2=m.get("energy_w2"), aw2=m.get("x_w2_aligned"),
                                       tv=m.get("distance_tv"), u=m.get("energy_mean"), pos=positive,
                                       ess=number(raw, r"ESS/N: ([0-9.e+-]+)"), marginal=marginal))
            p = metrics(out / f"pt-{name}.json")
            if p:
                rows["pt"].append(dict(total=total, wall=number(out / f"pt-{name}-sample.txt", r"wall time: ([0-9.]+)"),
                                       ew2=p.get("energy_w2"), aw2=p.get("x_w2_aligned"), tv=p.get("distance_tv"),
                                       u=p.get("energy_mean"), pos=float("nan"), ess=float("nan"), marginal=float("nan")))
        for kind, label in (("raw", LABELS.get(method, method) + ", raw"),
                            ("corrected", "  + correction"), ("pt", "  PT, same total budget")):
            r = rows[kind]
            if not r:
                continue
            col = lambda k, d=2: fmt([x[k] for x in r if x[k] is not None], d)
            print(f"| {label} | {len(r)} | {col('total')} | {col('wall', 0)} | {col('ew2')} | {col('aw2')} | "
                  f"{col('tv', 3)} | {col('u')} | {col('pos')} | {col('ess', 3)} | {col('marginal')} |")
    rdf = sorted(out.glob("*-rdf.json"))
    if rdf:
        print("\n| samples (periodic) | U/(Nε) | reference U/(Nε) | deviation (σ) | g(r) χ²/bin | max \\|Δg\\| |")
        print("|---|---|---|---|---|---|")
        for f in rdf:
            r = metrics(f)
            s, ref_set = r.get("samples", {}), r.get("reference", {})
            print(f"| {f.name[:-len('-rdf.json')]} | {s.get('energy_per_particle', float('nan')):.4f} ± "
                  f"{s.get('energy_per_particle_error', float('nan')):.4f} | {ref_set.get('energy_per_particle', float('nan')):.4f} ± "
                  f"{ref_set.get('energy_per_particle_error', float('nan')):.4f} | {r.get('energy_deviation_sigma', float('nan')):.2f} | "
                  f"{r.get('rdf_chi_squared_per_bin', float('nan')):.2f} | {r.get('rdf_max_deviation', float('nan')):.3f} |")
    ref = [metrics(f).get("reference_energy_mean") for f in out.glob("*-raw.json")]
    ref = [v for v in ref if v is not None]
    if ref:
        print(f"\nreference mean u (subsample of 1000): {statistics.mean(ref):.3f}")


if __name__ == "__main__":
    main()
