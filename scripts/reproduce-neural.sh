#!/usr/bin/env bash
# Stand-alone neural samplers (docs/results-neural.md): per seed, train dsm with the shipped recipe
# (data/recipes/SYSTEM-dsm.txt, no tuning flags beyond it), then
#   raw        1000 draws, default sampler (Heun, 18 noise levels, 35 network calls per draw), no MCMC
#   corrected  the same draws + an amortised correction: 10 HMC steps × 9 leapfrog, per-sample step sizes
#   weights    200 draws with exact probability-flow weights (ESS/N)
#   pt         parallel tempering at the evaluations of training + 1000 corrected samples
#   pt-wall    parallel tempering at the wall time of training + 1000 corrected samples
# every sample set scored against the primary reference (the project's own converged PT) and, where it
# exists, the public test set. Then a Markdown table (scripts/summarize-neural.py).
#
# usage: scripts/reproduce-neural.sh dw4|lj13|lj55|lj16 [OUTDIR]
# Environment: SEEDS ("1 2 3"), ENSEMBLE (the binary), REFERENCE (primary reference .nc; default
# out/reference/SYSTEM.nc from `make reference` / `make reference-large`), PUBLIC (public test set dir,
# default ../shared/reference; skipped when absent), N (draws, 1000), TRAIN_FLAGS (added to the
# recipe, for ablations, e.g. "--temperature-conditioning"), STAGES (default "raw corrected weights
# pt"; "raw weights" for a quick ablation), ALIGNMENT (evaluate --alignment; default invariant,
# asbs is ~25x faster).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
system="${1:?usage: reproduce-neural.sh dw4|lj13|lj55|lj16 [OUTDIR]}"
out="${2:-$root/out/neural-$system}"
seeds="${SEEDS:-1 2 3}"
ensemble="${ENSEMBLE:-$root/.build/release/ensemble}"
recipe="$root/data/recipes/$system-dsm.txt"
reference="${REFERENCE:-$root/out/reference/$system.nc}"
public_dir="${PUBLIC:-$root/../shared/reference}"
n="${N:-1000}"
stages=" ${STAGES:-raw corrected weights pt} "
alignment="${ALIGNMENT:-invariant}"
read -r -a train_flags <<< "${TRAIN_FLAGS:-}"
wants() { [[ "$stages" == *" $1 "* ]]; }
case "$system" in
  dw4) plugin=(--plugin double-well); public="$public_dir/test_split_DW4.npy"
       pt=(--sampler pt --replicas 4 --max-temperature 3 --chains 16) ;;
  lj13) plugin=(--plugin lennard-jones --param preset=lj13); public="$public_dir/test_split_LJ13-1000.npy"
        pt=(--sampler pt --replicas 8 --max-temperature 5 --chains 8) ;;
  lj55) plugin=(--plugin lennard-jones --param preset=lj55); public=""
        pt=(--sampler pt --replicas 12 --max-temperature 2.5 --chains 8) ;;
  lj16) plugin=(--plugin lennard-jones --param particles=16 --param density=0.5 --param temperature=2 --param cutoff=1.55)
        public=""; pt=(--sampler pt --replicas 4 --max-temperature 2 --chains 4) ;;
  *) echo "unknown system '$system' (dw4, lj13, lj55 or lj16)" >&2; exit 2 ;;
esac
[ -x "$ensemble" ] || { echo "missing $ensemble: run 'swift build -c release' first" >&2; exit 1; }
[ -f "$reference" ] || { echo "missing $reference: run 'make reference' (dw4, lj13) or 'make reference-large' (lj55, lj16)" >&2; exit 1; }
[ -n "$public" ] && [ ! -f "$public" ] && { echo "note: no public test set at $public; scoring against $reference only"; public=""; }
mkdir -p "$out"

number() { grep -o "$2" "$1" | tail -1 | grep -o '[0-9.e+-]*$'; }
score() {  # score NAME: metrics of NAME.nc against the references
  "$ensemble" evaluate "$out/$1.nc" --reference "$reference" "${plugin[@]}" --max-samples "$n" --alignment "$alignment" --json "$out/$1.json" --overwrite > "$out/$1-metrics.txt" 2>&1
  if [ -n "$public" ]; then
    "$ensemble" evaluate "$out/$1.nc" --reference "$public" "${plugin[@]}" --max-samples "$n" --alignment "$alignment" --json "$out/$1.public.json" --overwrite > "$out/$1-public.txt" 2>&1
  fi
  if [ "$system" = lj16 ]; then
    "$ensemble" rdf "$out/$1.nc" --reference "$reference" "${plugin[@]}" --energy-scale 2 --json "$out/$1-rdf.json" --overwrite > "$out/$1-rdf.txt" 2>&1
  fi
}
pt_run() {  # pt_run NAME SEED EVALUATIONS: PT with about this many energy evaluations, n frames
  local chains=${pt[5]} replicas=${pt[3]}
  local per_chain=$(( $3 / (chains * replicas) )) frames=$(( n / chains ))
  local thin=$(( per_chain * 2 / 3 / frames )); [ "$thin" -lt 1 ] && thin=1
  local burn=$(( per_chain - frames * thin )); [ "$burn" -lt 1 ] && burn=1
  "$ensemble" sample "${plugin[@]}" "${pt[@]}" --samples "$n" --burn-in "$burn" --thin "$thin" --seed "$2" \
      --out "$out/$1.nc" --json "$out/$1-sample.json" --overwrite > "$out/$1-sample.txt" 2>&1
  score "$1"
}

for seed in $seeds; do
  m="$out/model-s$seed.ckpt"
  if ! grep -q "^trained" "$out/train-s$seed.txt" 2>/dev/null; then
    "$ensemble" train --config "$recipe" ${train_flags[@]+"${train_flags[@]}"} --seed "$seed" --out "$m" --overwrite --json "$out/train-s$seed.json" \
        > "$out/train-s$seed.txt" 2>&1
  fi
  if wants raw && [ ! -f "$out/raw-s$seed.json" ]; then
    "$ensemble" sample --model "$m" --samples "$n" --seed "$seed" --out "$out/raw-s$seed.nc" --overwrite \
        --json "$out/raw-s$seed-sample.json" > "$out/raw-s$seed-sample.txt" 2>&1
    score "raw-s$seed"
  fi
  if wants corrected && [ ! -f "$out/corrected-s$seed.json" ]; then
    "$ensemble" sample --model "$m" --samples "$n" --seed "$seed" --correct-steps 10 --correct-leapfrog 9 \
        --correct-step-size per-sample --out "$out/corrected-s$seed.nc" --overwrite \
        --json "$out/corrected-s$seed-sample.json" > "$out/corrected-s$seed-sample.txt" 2>&1
    score "corrected-s$seed"
  fi
  if wants weights && [ "$system" != lj16 ] && [ ! -f "$out/weights-s$seed-sample.json" ]; then
    "$ensemble" sample --model "$m" --samples 200 --seed "$seed" --weights exact --out "$out/weights-s$seed.nc" --overwrite \
        --json "$out/weights-s$seed-sample.json" > "$out/weights-s$seed-sample.txt" 2>&1
  fi
  # PT at the neural run's evaluations (data + training + 1000 corrected), and at its wall time.
  wants pt || { echo "seed $seed done"; continue; }
  train_evals=$(number "$out/train-s$seed.txt" 'energy evaluations: [0-9]*')
  train_wall=$(number "$out/train-s$seed.txt" 'wall time: [0-9.]*')
  draw_evals=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['energy_evaluations'] + d['correction']['energy_evaluations'])" "$out/corrected-s$seed-sample.json")
  draw_wall=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['wall_seconds'])" "$out/corrected-s$seed-sample.json")
  budget=$(( train_evals + draw_evals ))
  [ -f "$out/pt-s$seed.json" ] || pt_run "pt-s$seed" "$seed" "$budget"
  if [ ! -f "$out/ptwall-s$seed.json" ]; then
    pt_wall=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['wall_seconds'])" "$out/pt-s$seed-sample.json")
    wall_budget=$(python3 -c "print(int($budget * ($train_wall + $draw_wall) / max($pt_wall, 1e-9)))")
    pt_run "ptwall-s$seed" "$seed" "$wall_budget"
  fi
  echo "seed $seed done (neural budget $budget evaluations)"
done
python3 "$root/scripts/summarize-neural.py" "$out" | tee "$out/table.md"
