#!/usr/bin/env bash
# DW-4 rows of an ASBS-Table-2-like comparison: a neural diffusion sampler (TB or log-variance
# with Langevin preconditioning) against MALA at the same number of energy evaluations.
# 2000 generated samples; metrics on 1000 vs 1000 of shared/reference/test_split_DW4.npy
# (aligned W2 = x_w2_aligned, E-W2 = energy_w2, √ convention). Published best (ASBS): W2 0.43,
# E-W2 0.20; the perfect-sample floor of aligned W2 at n = 1000 is 0.35 (shared/METRICS.md).
#
# Usage: scripts/reproduce-dw4.sh [OUTDIR] [STEPS]   (needs `swift build -c release` first)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/out/dw4}"
steps="${2:-1500}"
reference="${ENSEMBLE_REFERENCE:-$root/../shared/reference}/test_split_DW4.npy"
ensemble="$root/.build/release/ensemble"
mkdir -p "$out"
[ -f "$reference" ] || { echo "missing $reference (set ENSEMBLE_REFERENCE)"; exit 1; }

for method in tb logvar; do
  model="$out/$method-lp.ckpt"
  "$ensemble" train --plugin double-well --method "$method" --langevin-preconditioning \
      --steps "$steps" --hidden 32 --layers 3 --batch 64 --time-steps 30 --seed 1 \
      --out "$model" --overwrite | tee "$out/$method-train.txt"
  "$ensemble" sample --model "$model" --samples 2000 --out "$out/$method.nc" --overwrite | tee "$out/$method-sample.txt"
  "$ensemble" sample --model "$model" --samples 2000 --out "$out/$method-resampled.nc" --resample --overwrite >/dev/null
  for f in "$method" "$method-resampled"; do
    "$ensemble" evaluate "$out/$f.nc" --reference "$reference" --plugin double-well \
        --json "$out/$f.json" --plot "$out/$f" | tee "$out/$f-metrics.txt"
  done
done

# MALA at the TB run's budget (training + sampling energy evaluations): 100 chains,
# (burn-in + 20·thin) steps each.
budget=$(( $(grep -o 'energy evaluations: [0-9]*' "$out/tb-train.txt" | grep -o '[0-9]*$') \
         + $(grep -o 'energy evaluations: [0-9]*' "$out/tb-sample.txt" | grep -o '[0-9]*$') ))
per_chain=$(( budget / 100 ))
thin=$(( (per_chain * 2 / 3) / 20 ))
burn=$(( per_chain - 20 * thin ))
"$ensemble" sample --plugin double-well --sampler mala --samples 2000 --chains 100 \
    --burn-in "$burn" --thin "$thin" --out "$out/mala.nc" --overwrite | tee "$out/mala-sample.txt"
"$ensemble" evaluate "$out/mala.nc" --reference "$reference" --plugin double-well \
    --json "$out/mala.json" --plot "$out/mala" | tee "$out/mala-metrics.txt"
echo "budget per sampler: $budget energy evaluations; results in $out"
