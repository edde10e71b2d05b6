#!/usr/bin/env bash
# Rows of an ASBS-Table-2-like comparison for one system: every neural diffusion sampler
# (iDEM, TB and log-variance, each of the last two with and without Langevin preconditioning)
# for several seeds, and for every trained run an MCMC run (MALA for DW-4, parallel tempering
# for LJ-13) given the same number of energy evaluations as that run's training + sampling.
# 2000 generated samples per run; metrics on 1000 vs 1000 configurations of the reference test
# set (docs/metrics.md conventions: E-W2 √, aligned W2 with Hungarian permutation + Kabsch).
# The summary table (mean ± sd over seeds) is written by scripts/summarize-table.py.
#
# Usage: scripts/reproduce-table.sh dw4|lj13 [OUTDIR]
# Environment: SEEDS ("1 2 3"), METHODS ("idem tb tb-lp logvar logvar-lp"), STEPS and IDEM_STEPS
# (training steps of the path methods and of iDEM, per-system defaults below: an iDEM step
# regresses one batch and is ~20× cheaper than a path step, so it gets more), JOBS (parallel runs, default 1; each run uses --threads 1 when JOBS > 1),
# ENSEMBLE_REFERENCE (directory of the test sets, default ../shared/reference), ENSEMBLE (the
# executable, default .build/release/ensemble).
# Needs `swift build -c release` first. Restartable: runs whose metrics exist are skipped and an
# interrupted training run resumes from its checkpoint.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
system="${1:?usage: reproduce-table.sh dw4|lj13 [OUTDIR]}"
out="${2:-$root/out/table-$system}"
seeds="${SEEDS:-1 2 3}"
methods="${METHODS:-idem tb tb-lp logvar logvar-lp}"
jobs="${JOBS:-1}"
ensemble="${ENSEMBLE:-$root/.build/release/ensemble}"
refdir="${ENSEMBLE_REFERENCE:-$root/../shared/reference}"
case "$system" in
  dw4)
    plugin=(--plugin double-well); reference="$refdir/test_split_DW4.npy"
    steps="${STEPS:-600}"; idem_steps="${IDEM_STEPS:-10000}"
    net=(--hidden 32 --layers 3 --time-steps 30)
    path_args=(--batch 64); idem_extra=(--batch 64 --monte-carlo-samples 100 --refill-every 50)
    mcmc=(--sampler mala); mcmc_chains=100; mcmc_replicas=1 ;;
  lj13)
    plugin=(--plugin lennard-jones --param preset=lj13); reference="$refdir/test_split_LJ13-1000.npy"
    steps="${STEPS:-120}"; idem_steps="${IDEM_STEPS:-2000}"
    net=(--hidden 32 --layers 3 --time-steps 30)
    # Path methods: reference σ = 1 (LJ-13's coordinate spread; σ = 2 puts most reference
    # samples on overlapping pairs) and the EGNN's tanh-bounded coordinate weights.
    path_args=(--batch 32 --noise-scale 1 --tanh-range 15)
    idem_extra=(--batch 32 --monte-carlo-samples 100 --refill-every 25)
    mcmc=(--sampler pt --replicas 8 --max-temperature 5); mcmc_chains=8; mcmc_replicas=8 ;;
  *) echo "unknown system '$system' (dw4 or lj13)" >&2; exit 2 ;;
esac
[ -x "$ensemble" ] || { echo "missing $ensemble: run 'swift build -c release' first" >&2; exit 1; }
[ -f "$reference" ] || { echo "missing $reference (set ENSEMBLE_REFERENCE to the reference directory)" >&2; exit 1; }
threads=2; [ "$jobs" -gt 1 ] && threads=1
mkdir -p "$out"

evals() { grep -o 'energy evaluations: [0-9]*' "$1" | tail -1 | grep -o '[0-9]*$'; }

run_one() {
  local method="$1" seed="$2" name="$1-s$2"
  [ -f "$out/$name.json" ] && [ -f "$out/mcmc-$name.json" ] && return 0
  [ -f "$out/$name.failed" ] && return 0
  local args=(--method "${method%-lp}")
  [ "$method" != "${method%-lp}" ] && args+=(--langevin-preconditioning)
  if [ "$method" = idem ]; then
    args+=("${idem_extra[@]}" --steps "$idem_steps" --checkpoint-every 1000)
  else
    args+=("${path_args[@]}" --steps "$steps" --checkpoint-every 100)
  fi
  # An interrupted run continues from its last checkpoint (bit for bit).
  local start=(--overwrite); [ -f "$out/$name.ckpt" ] && start=(--resume)
  "$ensemble" train "${plugin[@]}" "${args[@]}" "${net[@]}" --seed "$seed" \
      --threads "$threads" --out "$out/$name.ckpt" "${start[@]}" \
      > "$out/$name-train.txt" 2>&1 || {
    # A run that stops (non-finite loss) is a result too: the table counts it.
    grep -h "Error" "$out/$name-train.txt" | tail -1 > "$out/$name.failed"
    echo "failed $name: $(cat "$out/$name.failed")"; return 0; }
  "$ensemble" sample --model "$out/$name.ckpt" --samples 2000 --seed "$seed" --threads "$threads" \
      --out "$out/$name.nc" --overwrite > "$out/$name-sample.txt" 2>&1
  "$ensemble" evaluate "$out/$name.nc" --reference "$reference" "${plugin[@]}" --threads "$threads" \
      --json "$out/$name.json" --overwrite > "$out/$name-metrics.txt" 2>&1
  # MCMC with the same budget: chains·replicas·(burn-in + 2000/chains·thin) steps.
  local budget=$(( $(evals "$out/$name-train.txt") + $(evals "$out/$name-sample.txt") ))
  local per_chain=$(( budget / (mcmc_chains * mcmc_replicas) ))
  local frames=$(( 2000 / mcmc_chains ))
  local thin=$(( per_chain * 2 / 3 / frames )); [ "$thin" -lt 1 ] && thin=1
  local burn=$(( per_chain - frames * thin )); [ "$burn" -lt 1 ] && burn=1
  "$ensemble" sample "${plugin[@]}" "${mcmc[@]}" --samples 2000 --chains "$mcmc_chains" \
      --burn-in "$burn" --thin "$thin" --seed "$seed" --threads "$threads" \
      --out "$out/mcmc-$name.nc" --overwrite > "$out/mcmc-$name-sample.txt" 2>&1
  "$ensemble" evaluate "$out/mcmc-$name.nc" --reference "$reference" "${plugin[@]}" --threads "$threads" \
      --json "$out/mcmc-$name.json" --overwrite > "$out/mcmc-$name-metrics.txt" 2>&1
  echo "done $name: budget $budget"
}

# Seed-major order: an interrupted run still has every method for the first seeds.
running=0
for seed in $seeds; do
  for method in $methods; do
    if [ "$jobs" -gt 1 ]; then
      run_one "$method" "$seed" &
      running=$((running + 1))
      if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
    else
      run_one "$method" "$seed"
    fi
  done
done
wait
python3 "$root/scripts/summarize-table.py" "$out" | tee "$out/table.md"
