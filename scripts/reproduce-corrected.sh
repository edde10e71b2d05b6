#!/usr/bin/env bash
# Trained samplers with exact correction (issue 12's table) for one system: for every method
# and seed, train; draw 1000 raw samples; draw the same 1000 again and correct them (SMC:
# resampling by importance weights where usable, then M MALA steps per sample); evaluate both
# against the reference test set; run parallel tempering with the run's whole budget
# (data + training + sampling + correction) and evaluate it too. The marginal cost of a
# further 1000 corrected samples is the sampling + correction evaluations per 1000.
# scripts/summarize-corrected.py writes the Markdown table.
#
# Usage: scripts/reproduce-corrected.sh dw4|lj13 [OUTDIR]
# Environment: SEEDS ("1 2 3"), METHODS ("dsm idem"), STEPS_DSM / STEPS_IDEM (training steps),
# CORRECT (M, MALA steps per sample), ENSEMBLE_REFERENCE (default ../shared/reference),
# ENSEMBLE (default .build/release/ensemble). Restartable: finished steps are skipped and an
# interrupted training run resumes from its checkpoint.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
system="${1:?usage: reproduce-corrected.sh dw4|lj13 [OUTDIR]}"
out="${2:-$root/out/corrected-$system}"
seeds="${SEEDS:-1 2 3}"
methods="${METHODS:-dsm idem}"
ensemble="${ENSEMBLE:-$root/.build/release/ensemble}"
refdir="${ENSEMBLE_REFERENCE:-$root/../shared/reference}"
case "$system" in
  dw4)
    plugin=(--plugin double-well); reference="$refdir/test_split_DW4.npy"
    sigma=(--sigma-min 1e-5 --sigma-max 3 --time-steps 100)
    dsm=(--batch 128 --steps "${STEPS_DSM:-2000}" --data-samples 2000 --data-replicas 4 --data-max-temperature 3
         --data-chains 16 --data-burn-in 5000 --data-thin 50)
    idem=(--batch 128 --steps "${STEPS_IDEM:-3000}" --monte-carlo-samples 100)
    process=ode; correct="${CORRECT:-90}"
    pt=(--sampler pt --replicas 4 --max-temperature 3 --chains 16) ;;
  lj13)
    plugin=(--plugin lennard-jones --param preset=lj13); reference="$refdir/test_split_LJ13-1000.npy"
    sigma=(--sigma-min 1e-3 --sigma-max 2 --time-steps 100)
    dsm=(--batch 64 --steps "${STEPS_DSM:-3000}" --data-samples 5000 --data-replicas 8 --data-max-temperature 5
         --data-chains 16 --data-burn-in 20000 --data-thin 100)
    idem=(--batch 64 --steps "${STEPS_IDEM:-2000}" --monte-carlo-samples 100)
    process=sde; correct="${CORRECT:-90}"
    pt=(--sampler pt --replicas 8 --max-temperature 5 --chains 8) ;;
  *) echo "unknown system '$system' (dw4 or lj13)" >&2; exit 2 ;;
esac
[ -x "$ensemble" ] || { echo "missing $ensemble: run 'swift build -c release' first" >&2; exit 1; }
[ -f "$reference" ] || { echo "missing $reference (set ENSEMBLE_REFERENCE to the reference directory)" >&2; exit 1; }
mkdir -p "$out"

evals() { grep -o "$2 evaluations: [0-9]*" "$1" | tail -1 | grep -o '[0-9]*$'; }
seconds() { grep -o 'wall time: [0-9.]*' "$1" | head -1 | grep -o '[0-9.]*$'; }

run_one() {
  local method="$1" seed="$2" name="$1-s$2"
  [ -f "$out/pt-$name.json" ] && return 0
  local args=("${dsm[@]}"); [ "$method" = idem ] && args=("${idem[@]}")
  if ! grep -q "^trained" "$out/$name-train.txt" 2>/dev/null; then
    local start=(--overwrite); [ -f "$out/$name.ckpt" ] && start=(--resume)
    "$ensemble" train "${plugin[@]}" --method "$method" "${args[@]}" "${sigma[@]}" --seed "$seed" \
        --checkpoint-every 500 --out "$out/$name.ckpt" "${start[@]}" > "$out/$name-train.txt" 2>&1
  fi
  for kind in raw corrected; do
    [ -f "$out/$name-$kind.json" ] && continue
    local extra=(); [ "$kind" = corrected ] && extra=(--correct-steps "$correct")
    "$ensemble" sample --model "$out/$name.ckpt" --samples 1000 --process "$process" --seed "$seed" "${extra[@]}" \
        --out "$out/$name-$kind.nc" --overwrite > "$out/$name-$kind-sample.txt" 2>&1
    "$ensemble" evaluate "$out/$name-$kind.nc" --reference "$reference" "${plugin[@]}" \
        --json "$out/$name-$kind.json" > "$out/$name-$kind-metrics.txt" 2>&1
  done
  # PT with the whole budget: data + training + the corrected run's sampling and correction.
  local budget=$(( $(evals "$out/$name-train.txt" energy) + $(evals "$out/$name-corrected-sample.txt" energy) ))
  local chains=${pt[7]} replicas=${pt[3]}
  local per_chain=$(( budget / (chains * replicas) )) frames=$(( 1000 / chains ))
  local thin=$(( per_chain * 2 / 3 / frames )); [ "$thin" -lt 1 ] && thin=1
  local burn=$(( per_chain - frames * thin )); [ "$burn" -lt 1 ] && burn=1
  "$ensemble" sample "${plugin[@]}" "${pt[@]}" --samples 1000 --burn-in "$burn" --thin "$thin" --seed "$seed" \
      --out "$out/pt-$name.nc" --overwrite > "$out/pt-$name-sample.txt" 2>&1
  "$ensemble" evaluate "$out/pt-$name.nc" --reference "$reference" "${plugin[@]}" \
      --json "$out/pt-$name.json" > "$out/pt-$name-metrics.txt" 2>&1
  echo "done $name: budget $budget"
}

for seed in $seeds; do
  for method in $methods; do run_one "$method" "$seed"; done
done
python3 "$root/scripts/summarize-corrected.py" "$out" | tee "$out/table.md"
