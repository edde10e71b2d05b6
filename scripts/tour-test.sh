#!/usr/bin/env bash
# Replays the README's tour as a newcomer would: a fresh clone of this repository's HEAD (so
# commit first: uncommitted changes are not in the clone) in a temporary directory with no
# ../shared beside it, then every command of the README's "A five-minute tour" section (its ```sh
# blocks, from "## A five-minute tour" to the next "## " heading), exactly as written, in order,
# from the clone's root. Lines that start programs this machine may lack (vmd) are skipped and
# listed. Stops at the first command that fails, naming it.
#
#   scripts/tour-test.sh                 # clone, build (make build), replay; ~4 min on 2 cores
#   TOUR_KEEP=1 scripts/tour-test.sh     # keep the clone for inspection
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/ensemble-tour.XXXXXX")
[ "${TOUR_KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/ensemble"
cd "$work/ensemble"
if [ -e ../shared ]; then echo "tour-test: $work/shared exists; the tour must not need it" >&2; exit 1; fi

# The tour's commands: join backslash continuations, drop comments and blank lines.
commands=$(awk '
  /^## A five-minute tour/ { inside = 1; next }
  /^## / && inside { inside = 0 }
  inside && /^```sh/ { block = 1; next }
  inside && /^```/ { block = 0; next }
  inside && block { print }
' README.md | sed -e 's/[[:space:]]*$//' | awk '
  { line = pending $0; pending = "" }
  /\\$/ { sub(/\\$/, "", line); pending = line " "; next }
  { print line }
' | sed -e 's/^[[:space:]]*//' | grep -v -e '^#' -e '^$')

count=$(printf '%s\n' "$commands" | wc -l)
[ "$count" -ge 10 ] || { echo "tour-test: found only $count commands in README's tour" >&2; exit 1; }

echo "tour-test: building the fresh clone in $work/ensemble"
make build > "$work/build.log" 2>&1 || { tail -30 "$work/build.log"; echo "tour-test: make build failed" >&2; exit 1; }

skipped=()
n=0
while IFS= read -r command; do
  n=$((n + 1))
  program=${command%% *}
  case "$program" in vmd) skipped+=("$command"); continue ;; esac
  echo "tour-test [$n/$count]: $command"
  if ! bash -c "E=.build/release/ensemble; set -o pipefail; $command" > "$work/step-$n.log" 2>&1; then
    tail -20 "$work/step-$n.log"
    echo "tour-test: FAILED at command $n: $command" >&2
    exit 1
  fi
done <<< "$commands"

# What the tour promises, checked on its outputs.
grep -q "converged by these checks" "$work"/step-*.log || { echo "tour-test: no converged LJ-13 run" >&2; exit 1; }
for f in lj13.nc lj13.pdb lj13.json dw4.nc dw4.csv out/reference/lj13.nc lj13-metrics.json lj13-metrics-energy.svg \
         dw4.ckpt dw4.ckpt.log.jsonl dw4-training.svg dw4-tb.nc ala.nc rama.svg rama.json h.nc; do
  [ -s "$f" ] || { echo "tour-test: the tour did not make $f" >&2; exit 1; }
done
echo "tour-test: all $n commands of the README tour ran from a fresh clone (skipped: ${skipped[*]:-none})"
