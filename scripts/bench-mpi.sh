#!/usr/bin/env bash
# Throughput of `ensemble` at 1 and 2 MPI ranks (one thread per rank), beside 1 rank with 2
# threads, and the scaling efficiency E = throughput(2 ranks) / (2 × throughput(1 rank)).
#   sampling: LJ-55 MALA, 16 chains (chains split over ranks), and LJ-13 PT, 4 chains × 8
#             temperatures (temperatures split over ranks; exchanges cross ranks);
#   training: LJ-13 trajectory balance, global batch 32, EGNN hidden 32 × 3 layers, 5 steps.
# Times are the best of a few runs' own wall-time lines (MPI start-up excluded).
#
# Usage: scripts/bench-mpi.sh   (needs `swift build -c release`; `make bench-mpi` builds first)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
ensemble="$root/.build/release/ensemble"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
mpirun=(mpirun --oversubscribe)
[ "$(id -u)" = 0 ] && mpirun+=(--allow-run-as-root)

# run RANKS THREADS ARGS...: the best (shortest) of $repeats runs: wall seconds and energy evaluations.
run() {
  local ranks=$1 threads=$2; shift 2
  local best="" text seconds evals
  for _ in $(seq "$repeats"); do
    if [ "$ranks" = 1 ]; then text=$("$ensemble" "$@" --threads "$threads" --overwrite)
    else text=$("${mpirun[@]}" -np "$ranks" "$ensemble" "$@" --threads "$threads" --overwrite); fi
    seconds=$(grep -m1 '^wall time:' <<<"$text" | sed -E 's/^wall time: ([0-9.]+) s.*/\1/')
    evals=$(grep -m1 '^energy evaluations:' <<<"$text" | sed -E 's/^energy evaluations: ([0-9]+).*/\1/')
    if [ -z "$best" ] || awk -v a="$seconds" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$seconds; fi
  done
  echo "$best $evals"
}

# table TITLE UNIT WORK ARGS...: one row per configuration; WORK = units of work per run.
table() {
  local title=$1 unit=$2 work=$3; shift 3
  echo "$title"
  printf '  %-22s %12s %14s %12s\n' "ranks × threads" "$unit/s" "energy evals/s" "efficiency"
  local base=""
  for config in "1 1" "2 1" "1 2"; do
    read -r ranks threads <<<"$config"
    read -r seconds evals < <(run "$ranks" "$threads" "$@")
    local rate evalRate efficiency
    rate=$(awk -v w="$work" -v s="$seconds" 'BEGIN { printf "%.1f", w / s }')
    evalRate=$(awk -v e="$evals" -v s="$seconds" 'BEGIN { printf "%.0f", e / s }')
    [ -z "$base" ] && base=$rate
    efficiency=$(awk -v r="$rate" -v b="$base" -v n="$((ranks * threads))" 'BEGIN { printf "%.2f", r / (n * b) }')
    printf '  %-22s %12s %14s %12s\n' "$ranks × $threads" "$rate" "$evalRate" "$efficiency"
  done
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
repeats=3
steps=1000   # MCMC steps per chain (burn-in 200 + production 800)
table "LJ-55 MALA, 16 chains, $steps steps (chains split)" "chain-steps" $((16 * steps)) \
  sample --plugin lennard-jones --param preset=lj55 --chains 16 --burn-in 200 --thin 10 \
         --samples $((16 * 80)) --out "$out/mala.nc"
steps=5000
table "LJ-13 PT, 4 chains × 8 temperatures, $steps steps (temperatures split, exchange every 10)" "walker-steps" $((32 * steps)) \
  sample --plugin lennard-jones --param preset=lj13 --sampler pt --replicas 8 --chains 4 --burn-in 1000 \
         --thin 10 --samples $((4 * 400)) --out "$out/pt.nc"
repeats=2
table "LJ-13 TB training, batch 32, hidden 32 × 3 layers, 20 time steps, 5 steps (data-parallel)" "steps" 5 \
  train --plugin lennard-jones --param preset=lj13 --method tb --batch 32 --hidden 32 --layers 3 \
        --time-steps 20 --steps 5 --out "$out/tb.ckpt"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
