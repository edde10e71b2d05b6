#!/usr/bin/env bash
# Trained samplers with exact correction (issue 12's table) for one system: for every method
# and seed, train; draw 1000 raw samples; draw the same 1000 again and correct them (SMC:
# resampling by importance weights where usable, then M MALA steps per sample); evaluate both
# against the reference test set; run parallel tempering with the run's whole budget
# (data + training + sampling + correction) and evaluate it too. The marginal cost of a
# further 1000 corrected samples is the sampling + correction evaluations per 1000.
# scripts/summarize-corrected.py writes the Markdown table.
#
# Usage: scripts/reproduce-corrected.sh dw4|lj13|lj55|lj16 [OUTDIR]   (lj55 and lj16 need `make reference-large`)
# Environment: SEEDS ("1 2 3"), METHODS ("dsm dsm-ode idem"; dsm-ode samples the dsm model by the
# probability-flow ODE with exact weights; tb, logvar, tb-lp and logvar-lp are the off-policy path
# methods, -lp with Langevin preconditioning), STEPS_DSM / STEPS_IDEM / STEPS_PATH (training steps),
# CORRECT (M, MALA steps per sample; lj55: HMC steps, default 400), THRESHOLD (resample when ESS/N is at least this), KINDS
# ("raw corrected"; lj55: corrected only), ENSEMBLE_REFERENCE (default ../shared/reference),
# ENSEMBLE (default .build/release/ensemble). Restartable: finished steps are skipped and an
# interrupted training run resumes from its checkpoint.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
system="${1:?usage: reproduce-corrected.sh dw4|lj13|lj55|lj16 [OUTDIR]}"
out="${2:-$root/out/corrected-$system}"
seeds="${SEEDS:-1 2 3}"
methods="${METHODS:-dsm dsm-ode idem}"
ensemble="${ENSEMBLE:-$root/.build/release/ensemble}"
refdir="${ENSEMBLE_REFERENCE:-$root/../shared/reference}"
case "$system" in
  dw4)
    plugin=(--plugin double-well); reference="$refdir/test_split_DW4.npy"
    # DEM's iDEM range; dsm learns from data whose structure is ≥ 0.1 wide: [0.01, 3].
    idem_sigma=(--sigma-min 1e-5 --sigma-max 3); dsm_sigma=(--sigma-min 1e-2 --sigma-max 3)
    dsm=(--batch 128 --steps "${STEPS_DSM:-4000}" --data-samples 4000 --data-replicas 8 --data-max-temperature 8
         --data-chains 32 --data-burn-in 5000 --data-thin 200 --force-blend 0.3)
    idem=(--batch 128 --steps "${STEPS_IDEM:-3000}" --monte-carlo-samples 100)
    path=(--hidden 32 --layers 3 --time-steps 30 --batch 64 --steps "${STEPS_PATH:-600}")
    correct="${CORRECT:-90}"; sample_steps=100; threshold="${THRESHOLD:-0.1}"
    pt=(--sampler pt --replicas 4 --max-temperature 3 --chains 16) ;;
  lj13)
    plugin=(--plugin lennard-jones --param preset=lj13); reference="$refdir/test_split_LJ13-1000.npy"
    idem_sigma=(--sigma-min 1e-2 --sigma-max 2); dsm_sigma=(--sigma-min 1e-3 --sigma-max 2)
    dsm=(--batch 64 --steps "${STEPS_DSM:-4000}" --data-samples 5000 --data-replicas 8 --data-max-temperature 5
         --data-chains 16 --data-burn-in 20000 --data-thin 100 --force-blend 0.1)
    idem=(--batch 64 --steps "${STEPS_IDEM:-2000}" --monte-carlo-samples 100)
    # Path methods: reference σ = 1 and tanh-bounded coordinate weights (README, issue-4 table).
    path=(--hidden 32 --layers 3 --time-steps 30 --batch 32 --noise-scale 1 --tanh-range 15 --steps "${STEPS_PATH:-120}")
    # ESS/N of the 400-step SDE weights is ~0.03: resample from 0.02 on.
    correct="${CORRECT:-90}"; sample_steps=400; threshold="${THRESHOLD:-0.01}"
    pt=(--sampler pt --replicas 8 --max-temperature 5 --chains 8) ;;
  lj55)
    # No public test set here: the reference is the project's own PT (`make reference-large`).
    plugin=(--plugin lennard-jones --param preset=lj55); reference="${REFERENCE_LJ55:-$root/out/reference/lj55.nc}"
    idem_sigma=(--sigma-min 1e-2 --sigma-max 3); dsm_sigma=(--sigma-min 1e-3 --sigma-max 3)
    dsm=(--batch 32 --steps "${STEPS_DSM:-1500}" --data-samples 3000 --data-replicas 8 --data-max-temperature 5
         --data-chains 8 --data-burn-in 20000 --data-thin 100 --force-blend 0.1)
    idem=(--batch 32 --steps "${STEPS_IDEM:-1000}" --monte-carlo-samples 100)
    path=(--hidden 32 --layers 3 --time-steps 30 --batch 16 --noise-scale 1.5 --tanh-range 15 --steps "${STEPS_PATH:-100}")
    # One EGNN pass over 55 atoms costs ~20 ms here: 50 SDE steps, and only the corrected draw
    # (its printout has the raw ESS and energies), keep sampling 2000 configurations near 30 min.
    # 90 shared-step MALA steps leave 40 % of the overlapping draws stuck: the correction is
    # 400 HMC steps (10 leapfrog) with one step size per sample (no drift between 200 and 400).
    correct="${CORRECT:-400}"; correct_moves=(--correct-leapfrog 10 --correct-step-size per-sample)
    sample_steps=50; threshold="${THRESHOLD:-0.01}"; n=2000; kinds="${KINDS:-corrected}"
    pt=(--sampler pt --replicas 8 --max-temperature 5 --chains 8) ;;
  lj16)
    # Periodic LJ fluid (README "Periodic systems"): N = 16, ρ = 0.5, T* = 2, on the torus; the
    # reference is a long MALA run (`make reference-large`). Aligned W2 is not defined on a torus.
    plugin=(--plugin lennard-jones --param particles=16 --param density=0.5 --param temperature=2 --param cutoff=1.55)
    reference="${REFERENCE_LJ16:-$root/out/reference/lj16.nc}"
    idem_sigma=(--sigma-min 1e-2 --sigma-max 1); dsm_sigma=(--sigma-min 1e-3 --sigma-max 1)
    dsm=(--batch 32 --steps "${STEPS_DSM:-2000}" --data-samples 3000 --data-replicas 4 --data-max-temperature 2
         --data-chains 8 --data-burn-in 5000 --data-thin 50)
    idem=(--batch 32 --steps "${STEPS_IDEM:-1000}" --monte-carlo-samples 100)
    path=(--hidden 32 --layers 2 --batch 16 --time-steps 100 --noise-scale 0.5 --langevin-init 0.25 --langevin-clip 100
          --energy-clip 50 --steps "${STEPS_PATH:-400}")
    correct="${CORRECT:-90}"; sample_steps=100; threshold="${THRESHOLD:-0.01}"
    pt=(--sampler pt --replicas 4 --max-temperature 2 --chains 4) ;;
  *) echo "unknown system '$system' (dw4, lj13, lj55 or lj16)" >&2; exit 2 ;;
esac
[ -x "$ensemble" ] || { echo "missing $ensemble: run 'swift build -c release' first" >&2; exit 1; }
[ -f "$reference" ] || { echo "missing $reference (set ENSEMBLE_REFERENCE to the reference directory)" >&2; exit 1; }
mkdir -p "$out"
n="${n:-1000}"  # generated samples, evaluated against as many reference configurations
kinds="${kinds:-${KINDS:-raw corrected}}"
[ -n "${correct_moves+set}" ] || correct_moves=()  # extra correction flags (lj55: HMC, per-sample steps)  # raw: the sampler's own draws; corrected: after SMC

evals() { grep -o "$2 evaluations: [0-9]*" "$1" | tail -1 | grep -o '[0-9]*$'; }
seconds() { grep -o 'wall time: [0-9.]*' "$1" | head -1 | grep -o '[0-9.]*$'; }

run_one() {
  local method="$1" seed="$2" name="$1-s$2"
  [ -f "$out/pt-$name.json" ] && return 0
  local base="${method%-ode}" process=sde; [ "$method" != "$base" ] && process=ode
  local model="$base-s$seed"  # dsm-ode samples the dsm model
  local args=("${dsm[@]}" "${dsm_sigma[@]}") steps=$sample_steps
  case "$base" in
    idem) args=("${idem[@]}" "${idem_sigma[@]}") ;;
    tb|logvar) args=("${path[@]}") ;;
    tb-lp|logvar-lp) args=("${path[@]}" --langevin-preconditioning) ;;
  esac
  # A path method's drift is tied to its own time grid: it samples on that grid.
  local grid=(--time-steps "$steps"); case "$base" in tb*|logvar*) grid=() ;; esac
  if ! grep -q "^trained" "$out/$model-train.txt" 2>/dev/null; then
    local start=(--overwrite); [ -f "$out/$model.ckpt" ] && start=(--resume)
    "$ensemble" train "${plugin[@]}" --method "${base%-lp}" --time-steps 100 "${args[@]}" --seed "$seed" \
        --checkpoint-every 500 --out "$out/$model.ckpt" "${start[@]}" > "$out/$model-train.txt" 2>&1
  fi
  [ "$model" != "$name" ] && cp "$out/$model-train.txt" "$out/$name-train.txt"
  for kind in $kinds; do
    [ -f "$out/$name-$kind.json" ] && continue
    local extra=(); [ "$kind" = corrected ] && extra=(--correct-steps "$correct" --correct-threshold "$threshold" "${correct_moves[@]}")
    "$ensemble" sample --model "$out/$model.ckpt" --samples "$n" --process "$process" "${grid[@]}" --seed "$seed" "${extra[@]}" \
        --out "$out/$name-$kind.nc" --overwrite > "$out/$name-$kind-sample.txt" 2>&1
    "$ensemble" evaluate "$out/$name-$kind.nc" --reference "$reference" "${plugin[@]}" --max-samples "$n" \
        --json "$out/$name-$kind.json" --overwrite > "$out/$name-$kind-metrics.txt" 2>&1
    # The fluid: energy per particle U/(Nε) = T*·u/N and g(r) against the reference.
    [ "$system" = lj16 ] && "$ensemble" rdf "$out/$name-$kind.nc" --reference "$reference" "${plugin[@]}" --energy-scale 2 \
        --json "$out/$name-$kind-rdf.json" --overwrite > "$out/$name-$kind-rdf.txt" 2>&1
  done
  # PT with the whole budget: data + training + the corrected run's sampling and correction.
  local correction; correction=$(grep -o '"energy_evaluations" : [0-9]*' "$out/$name-corrected.correction.json" | grep -o '[0-9]*$')
  local budget=$(( $(evals "$out/$name-train.txt" energy) + $(evals "$out/$name-corrected-sample.txt" energy) + correction ))
  local chains=${pt[7]} replicas=${pt[3]}
  local per_chain=$(( budget / (chains * replicas) )) frames=$(( n / chains ))
  local thin=$(( per_chain * 2 / 3 / frames )); [ "$thin" -lt 1 ] && thin=1
  local burn=$(( per_chain - frames * thin )); [ "$burn" -lt 1 ] && burn=1
  "$ensemble" sample "${plugin[@]}" "${pt[@]}" --samples "$n" --burn-in "$burn" --thin "$thin" --seed "$seed" \
      --out "$out/pt-$name.nc" --overwrite > "$out/pt-$name-sample.txt" 2>&1
  "$ensemble" evaluate "$out/pt-$name.nc" --reference "$reference" "${plugin[@]}" --max-samples "$n" \
      --json "$out/pt-$name.json" --overwrite > "$out/pt-$name-metrics.txt" 2>&1
  [ "$system" = lj16 ] && "$ensemble" rdf "$out/pt-$name.nc" --reference "$reference" "${plugin[@]}" --energy-scale 2 \
      --json "$out/pt-$name-rdf.json" --overwrite > "$out/pt-$name-rdf.txt" 2>&1
  echo "done $name: budget $budget"
}

for seed in $seeds; do
  for method in $methods; do run_one "$method" "$seed"; done
done
python3 "$root/scripts/summarize-corrected.py" "$out" | tee "$out/table.md"
