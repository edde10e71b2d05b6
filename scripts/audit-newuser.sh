#!/usr/bin/env bash
# Reruns a new-user audit of bad inputs and faults (issue 23) against the built binary and
# classifies every answer:
#
#   good  the expected clear error (exit ≠ 0 and the expected words on stderr) or warning
#         (exit 0 and the expected words), no crash, every protected file unchanged;
#   poor  an error without the expected words (unclear), or a missing warning where the run may
#         go on;
#   bad   a crash (exit ≥ 128 without a signal being expected, "Fatal error", a backtrace,
#         "double free"), a destroyed or replaced user file, or silence (exit 0) where an error
#         was expected.
#
# Usage:  scripts/audit-newuser.sh [-v]          # after `swift build -c release`
#         ENSEMBLE=/path/to/ensemble scripts/audit-newuser.sh
# -v prints the first lines of every answer. Exit status: the number of bad answers (0: none).
# Needs: the built ensemble with its plugins beside it; cc for the misbehaving-plugin cases and
# .venv/bin/python with numpy and netCDF4 for the .npy case (cases whose tools are missing are
# skipped and counted as such).
# Takes about 10 s on two cores. Documented in docs/safety.md ("The new-user audit").
set -u
here="$(cd "$(dirname "$0")/.." && pwd)"
E="${ENSEMBLE:-$here/.build/release/ensemble}"
verbose=0; [ "${1:-}" = "-v" ] && verbose=1
[ -x "$E" ] || { echo "no ensemble binary at $E: run swift build -c release first" >&2; exit 2; }
work="$(mktemp -d "${TMPDIR:-/tmp}/audit-newuser.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 2

good=0; poor=0; bad=0; skipped=0
declare -a report=()

# record NAME VERDICT DETAIL
record() {
    case "$2" in good) good=$((good + 1));; poor) poor=$((poor + 1));; bad) bad=$((bad + 1));; skip) skipped=$((skipped + 1));; esac
    report+=("$(printf '%-5s %-58s %s' "$2" "$1" "$3")")
}

# protect FILE...: remember checksums; intact: 0 when every protected file is unchanged.
declare -A sums=()
protect() { sums=(); for f in "$@"; do sums["$f"]="$(md5sum "$f" 2>/dev/null | cut -d' ' -f1)"; done; }
intact() { for f in "${!sums[@]}"; do [ "$(md5sum "$f" 2>/dev/null | cut -d' ' -f1)" = "${sums[$f]}" ] || { echo "$f"; return 1; }; done; return 0; }

crashed() { # STATUS ERRFILE
    [ "$1" -ge 128 ] && [ "$1" != 130 ] && [ "$1" != 143 ] && return 0
    grep -q -E "Fatal error|Stack dump|Current stack trace|0x[0-9a-f]{12}|double free|corrupted size|Illegal instruction|Segmentation fault \(core" "$2"
}

# expect KIND SEVERITY NAME PATTERN -- COMMAND...
#   KIND error: exit ≠ 0 with PATTERN (extended regex) on stderr;  warn: exit 0 with PATTERN on stderr;
#   ok: exit 0 (and PATTERN on stdout or stderr). SEVERITY: what a missed expectation counts as
#   when nothing crashed and no file was destroyed (bad or poor).
expect() {
    local kind="$1" severity="$2" name="$3" pattern="$4"; shift 5
    rm -f n.nc n.pdb  # the scratch output of the cases that must not run
    timeout 300 "$@" >out.txt 2>err.txt </dev/null
    local status=$?
    local first; first="$(grep -v -E '^(Usage|  See)' err.txt | head -1 | cut -c1-150)"
    local destroyed; destroyed="$(intact)" || { record "$name" bad "destroyed $destroyed (exit $status)"; sums=(); return; }
    sums=()
    if crashed "$status" err.txt; then record "$name" bad "crash (exit $status): $first"; return; fi
    if [ "$status" = 124 ]; then record "$name" bad "hung (killed after 300 s)"; return; fi
    case "$kind" in
        error)
            if [ "$status" = 0 ]; then record "$name" "$severity" "exit 0, no error: $(head -1 out.txt | cut -c1-100)"
            elif grep -q -E -- "$pattern" err.txt; then record "$name" good "exit $status: $first"
            else record "$name" poor "exit $status, unclear: $first"; fi;;
        warn)
            if [ "$status" != 0 ]; then record "$name" poor "exit $status (expected a warning and a run): $first"
            elif grep -q -E -- "$pattern" err.txt; then record "$name" good "warning: $(grep -m1 -E -- "$pattern" err.txt | cut -c1-120)"
            else record "$name" "$severity" "exit 0 without a warning"; fi;;
        ok)
            if [ "$status" = 0 ] && cat out.txt err.txt | grep -q -E -- "$pattern"; then record "$name" good "exit 0: $(cat out.txt err.txt | grep -m1 -E -- "$pattern" | cut -c1-120)"
            else record "$name" "$severity" "exit $status: $first"; fi;;
    esac
    if [ "$verbose" = 1 ]; then sed 's/^/      | /' err.txt | head -4; fi
}

DW=(--plugin double-well)
LJ13=(--plugin lennard-jones --param preset=lj13)
ALA=(--plugin alanine --param solvent=vacuum)
Q=(--threads 1)

echo "auditing $E in $work" >&2
# Fixtures: small trajectories, a trained path model, a checkpoint with a log.
"$E" sample "${DW[@]}" --samples 40 --burn-in 50 "${Q[@]}" --out dw.nc >/dev/null 2>&1
"$E" sample "${LJ13[@]}" --samples 40 --burn-in 50 "${Q[@]}" --out lj.nc >/dev/null 2>&1
"$E" sample "${ALA[@]}" --param temperature=800 --samples 80 --burn-in 100 --thin 200 "${Q[@]}" --out ala.nc >/dev/null 2>&1
"$E" train "${LJ13[@]}" --method tb --steps 2 --hidden 8 --layers 1 --batch 8 --time-steps 8 "${Q[@]}" --out tb.ckpt >/dev/null 2>&1
for f in dw.nc lj.nc ala.nc tb.ckpt; do [ -s "$f" ] || { echo "fixture $f was not made: is the build complete?" >&2; exit 2; }; done

# --- Bad list: files destroyed ------------------------------------------------------------
protect dw.nc
expect error bad "evaluate a.nc --json a.nc (input as output)" "an input of this command" -- \
    "$E" evaluate dw.nc --reference dw.nc "${DW[@]}" --json dw.nc --overwrite
protect tb.ckpt
expect error bad "plot-training x.ckpt --plot x.ckpt" "an input of this command" -- \
    "$E" plot-training tb.ckpt --plot tb.ckpt --overwrite
expect error bad "--json equal to --out" "give each output its own file" -- \
    "$E" sample "${DW[@]}" --samples 5 --out same.nc --json same.nc
echo "my own structure" > mine.pdb; protect mine.pdb
expect error bad "an existing mine.pdb beside a new mine.nc" "already exists; pass --overwrite" -- \
    "$E" sample "${DW[@]}" --samples 5 --out mine.nc

# --- Bad list: Ctrl-C, plugins that misbehave ---------------------------------------------
"$E" sample --plugin lennard-jones --param preset=lj55 --samples 10 --burn-in 100000000 "${Q[@]}" --out ctrlc.nc >out.txt 2>err.txt &
pid=$!; sleep 2; kill -INT "$pid"; t0=$(date +%s)
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; wait "$pid" 2>/dev/null; record "Ctrl-C during a long burn-in" bad "still running 5 s after SIGINT"
else wait "$pid"; status=$?
    if [ "$status" = 130 ] && grep -q "stopping" out.txt err.txt && [ ! -e ctrlc.nc ]; then
        record "Ctrl-C during a long burn-in" good "exit 130 within $(( $(date +%s) - t0 )) s, no stub file"
    else record "Ctrl-C during a long burn-in" poor "exit $status: $(head -1 err.txt)"; fi
fi

if command -v cc >/dev/null 2>&1; then
    mkdir -p plug
    cat > plug/bad.c <<'C'
#include "ensemble_plugin.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
typedef struct { int mode; long *heap; } sys;  /* mode: 1 abort, 2 segv, 3 hang, 4 zero particles, 5 fail */
static long calls = 0;
static ensemble_system *create(const char *p, char *e, size_t c) {
    (void)e; (void)c; sys *s = calloc(1, sizeof(sys)); s->heap = malloc(64);
    const char *m = strstr(p, "mode="); s->mode = m ? atoi(m + 5) : 0; return (ensemble_system *)s;
}
static void destroy(ensemble_system *x) { sys *s = (sys *)x; free(s->heap); s->heap = NULL; free(s); }
static int32_t count(const ensemble_system *s) { return ((const sys *)s)->mode == 4 ? 0 : 2; }
static int32_t dim(const ensemble_system *s) { (void)s; return 3; }
static int32_t evaluate(const ensemble_system *x, int64_t b, const double *p, double *u, double *g, char *e, size_t c) {
    const sys *s = (const sys *)x;
    long call = __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
    if (call > 20 && s->mode == 1) abort();
    if (call > 20 && s->mode == 2) { volatile int *z = 0; *z = 1; }
    if (call > 20 && s->mode == 3) for (;;) pause();
    if (call > 200 && s->mode == 5) { snprintf(e, c, "failing on request (call %ld)", call); return 1; }
    for (int64_t i = 0; i < b; i++) { double t = 0; for (int k = 0; k < 6; k++) { t += p[i*6+k]*p[i*6+k]; if (g) g[i*6+k] = p[i*6+k]; } u[i] = 0.5*t; }
    return 0;
}
static ensemble_plugin table = { .abi_version = ENSEMBLE_PLUGIN_ABI_VERSION, .struct_size = sizeof(ensemble_plugin),
    .name = "misbehaving", .version = "0.1", .description = "misbehaves on request", .parameters_help = "mode=1..4",
    .create = create, .destroy = destroy, .particle_count = count, .dimension = dim, .evaluate = evaluate };
const ensemble_plugin *ensemble_plugin_entry(void) { return &table; }
C
    cc -O2 -shared -fPIC -I "$here/Sources/EnsemblePluginABI/include" plug/bad.c -o plug/libbad.so
    BAD=(--plugin-dir "$work/plug" --plugin misbehaving)
    cp dw.nc old.nc; protect old.nc
    expect error bad "--overwrite run that fails mid-run keeps the old file" "was left as it was" -- \
        "$E" sample "${BAD[@]}" --param mode=5 --samples 200 --burn-in 10 --thin 1 --chains 1 --threads 1 --out old.nc --overwrite
    expect error bad "plugin refused (0 particles): destroy() once" "misbehaving" -- \
        "$E" sample "${BAD[@]}" --param mode=4 --samples 5 --out zero.nc
    expect error bad "abort() in a plugin" "SIGABRT.*in plugin 'misbehaving'" -- \
        "$E" sample "${BAD[@]}" --param mode=1 --samples 5 --burn-in 100 --out abort.nc
    [ -e abort.nc ] && record "abort(): no stub .nc left" bad "abort.nc exists" || record "abort(): no stub .nc left" good "none"
    expect error bad "SIGSEGV in a plugin (sample)" "SIGSEGV.*in plugin 'misbehaving'" -- \
        "$E" sample "${BAD[@]}" --param mode=2 --samples 5 --burn-in 100 --out segv.nc
    expect error poor "SIGSEGV in a plugin under bench" "SIGSEGV.*in plugin 'misbehaving'" -- \
        "$E" bench "${BAD[@]}" --param mode=2 --batch 4
    # A hung plugin call: the first INT is acknowledged, the second ends the process.
    "$E" sample "${BAD[@]}" --param mode=3 --samples 5 --burn-in 100 --out hang.nc >out.txt 2>err.txt &
    pid=$!; sleep 1.5; kill -INT "$pid"; sleep 0.5; kill -INT "$pid"
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; wait "$pid" 2>/dev/null; record "second Ctrl-C in a hung plugin" bad "still running after two SIGINTs"
    else wait "$pid"; status=$?; record "second Ctrl-C in a hung plugin" "$([ "$status" -ge 128 ] && grep -q "second SIGINT" err.txt && echo good || echo poor)" "exit $status: $(head -1 err.txt | cut -c1-100)"; fi
else
    for n in "--overwrite run that fails" "destroy() once" "abort() in a plugin" "SIGSEGV in a plugin" "SIGSEGV under bench" "second Ctrl-C"; do record "$n" skip "no cc"; done
fi

# --- Bad list: impossible sizes, provenance, molecules, ESS --------------------------------
expect error bad "sample --chains 1e9" "needs about .* of memory" -- "$E" sample "${LJ13[@]}" --samples 10 --chains 1000000000 --out big.nc
[ -e big.nc ] && record "--chains 1e9 leaves no file" bad "big.nc exists" || record "--chains 1e9 leaves no file" good "none"
expect error bad "bench --batch 2e9" "needs about .* of memory" -- "$E" bench "${LJ13[@]}" --batch 2000000000
expect error bad "train --batch 2e7" "needs about .* of memory" -- "$E" train "${LJ13[@]}" --method tb --steps 10 --batch 20000000 --out big.ckpt
expect ok bad "ramachandran without --chains uses the recorded count" "4 chains \(recorded in the file\)" -- \
    "$E" ramachandran ala.nc --reference ala.nc "${ALA[@]}" --param temperature=800
mkdir -p pep && cp "$here/data/alanine-dipeptide-ff96.prmtop" pep/my.prmtop
for s in mala pt langevin; do
    expect error bad "prmtop without start coordinates ($s)" "no start coordinates.*start=PATH" -- \
        "$E" sample --plugin alanine --param prmtop=pep/my.prmtop --sampler "$s" --samples 8 --burn-in 10 --out "nostart-$s.nc"
done
"$E" sample "${DW[@]}" --samples 20 --chains 4 --burn-in 20 --thin 1 "${Q[@]}" --out ess.nc >out.txt 2>&1
ess="$(grep -o -E 'ESS [0-9.]+' out.txt | head -1 | cut -d' ' -f2)"
if [ -n "$ess" ] && awk -v e="$ess" 'BEGIN { exit !(e <= 20) }'; then record "ESS at most the number of draws" good "ESS $ess of 20 frames"
else record "ESS at most the number of draws" bad "ESS '${ess:-none}' of 20 frames"; fi

# --- Poor list ---------------------------------------------------------------------------
expect error poor "--samples -5" "must be a positive integer, got -5" -- "$E" sample "${DW[@]}" --samples -5 --out n.nc
expect error poor "--step-size -1" "--step-size must be > 0" -- "$E" sample "${DW[@]}" --samples 5 --step-size -1 --out n.nc
expect error poor "--sampler with --model" "--sampler applies to MCMC" -- "$E" sample --model tb.ckpt --samples 5 --sampler pt --out n.nc
expect error poor "--thin with --model" "--thin applies to MCMC" -- "$E" sample --model tb.ckpt --samples 5 --thin 3 --out n.nc
expect error poor "--chains with --model" "--chains applies to MCMC" -- "$E" sample --model tb.ckpt --samples 5 --chains 3 --out n.nc
expect error poor "--process ode on a path model" "--process ode applies to score models" -- "$E" sample --model tb.ckpt --samples 5 --process ode --out n.nc
expect error poor "--timestep with MALA" "--timestep applies to the dynamics samplers" -- "$E" sample "${DW[@]}" --sampler mala --timestep 2 --samples 5 --out n.nc
expect error poor "--replicas with MALA" "--replicas applies to tempering" -- "$E" sample "${DW[@]}" --sampler mala --replicas 4 --samples 5 --out n.nc
expect error poor "--correct-leapfrog without a correction" "--correct-leapfrog .*needs --correct-steps" -- "$E" sample --model tb.ckpt --samples 5 --correct-leapfrog 4 --out n.nc
expect error poor "preset=lj13 particles=20" "preset=lj13 sets particles=13" -- "$E" sample "${LJ13[@]}" --param particles=20 --samples 5 --out n.nc
head -c 2000 /dev/urandom > x.dcd; mkdir -p frames
expect error poor ".dcd as a trajectory" "reads AMBER NetCDF" -- "$E" energy "${DW[@]}" x.dcd
expect error poor "a directory as a trajectory" "is a directory, not a trajectory" -- "$E" evaluate frames --reference dw.nc "${DW[@]}"
mkdir -p outdir.nc
expect error poor "--out DIR (a directory)" "is a directory: give the path of a file" -- "$E" sample "${DW[@]}" --samples 5 --out outdir.nc --overwrite
expect error poor "--json into a missing directory" "does not exist" -- "$E" sample "${DW[@]}" --samples 5 --out j.nc --json nodir/j.json
[ -e j.nc ] && record "--json missing dir: nothing ran" poor "j.nc exists" || record "--json missing dir: nothing ran" good "no j.nc"
expect warn poor "alanine file evaluated with lennard-jones" "written with plugin 'alanine'" -- "$E" energy --plugin lennard-jones --param particles=22 ala.nc
expect warn poor "file read with other parameters" "different parameters" -- "$E" energy "${LJ13[@]}" --param temperature=2 lj.nc
expect warn poor "ramachandran --chains 3 on a 4-chain file" "differs from the 4 chains recorded" -- \
    "$E" ramachandran ala.nc --reference ala.nc "${ALA[@]}" --param temperature=800 --chains 3
printf 'garbage\001\002' > garbage.ckpt; : > empty.ckpt; head -c 400 tb.ckpt > truncated.ckpt
expect error poor "garbage checkpoint" "is not a checkpoint" -- "$E" sample --model garbage.ckpt --samples 5 --out n.nc
expect error poor "empty checkpoint" "is empty \(0 bytes\)" -- "$E" sample --model empty.ckpt --samples 5 --out n.nc
expect error poor "truncated checkpoint" "is truncated" -- "$E" sample --model truncated.ckpt --samples 5 --out n.nc
expect warn poor "sample --model with mostly broken draws" "draws are mostly broken.*--correct-steps" -- "$E" sample --model tb.ckpt --samples 40 --out broken.nc
expect error poor "ensemble sampel" "did you mean 'sample'" -- "$E" sampel "${DW[@]}" --samples 5 --out n.nc
expect ok poor "lj13 written in Å of r_m (3.822 per unit)" "wrote lj-energy.svg" -- "$E" evaluate lj.nc --reference lj.nc "${LJ13[@]}" --plot lj --max-samples 20
grep -q "1 unit = 3.822 Å" lj-distances.svg 2>/dev/null && record "lj13 plot axis: 1 unit = 3.822 Å" good "lj-distances.svg" \
    || record "lj13 plot axis: 1 unit = 3.822 Å" poor "axis label: $(grep -o '1 unit = [0-9.]* Å' lj-distances.svg 2>/dev/null | head -1)"
# Known and not addressed: a .npy in Å given to a reduced-unit plugin, --draws from another model.
"$here/.venv/bin/python" - <<'PY' 2>/dev/null
import netCDF4, numpy as np
np.save("angstrom.npy", np.ascontiguousarray(np.asarray(netCDF4.Dataset("lj.nc")["coordinates"][:], dtype=np.float64).reshape(40, -1)))
PY
if [ -s angstrom.npy ]; then
    expect warn poor ".npy in Å given to a plugin in reduced units" "warning" -- "$E" evaluate angstrom.npy --reference lj.nc "${LJ13[@]}" --max-samples 20
else record ".npy in Å given to a plugin in reduced units" skip "no numpy"; fi

# --- Ordinary mistakes that were already answered well (kept as regressions) --------------
expect error poor "unknown plugin" "unknown plugin 'nope'" -- "$E" sample --plugin nope --samples 5 --out n.nc
expect error poor "unknown plugin parameter" "unknown parameter 'particle'" -- "$E" sample --plugin lennard-jones --param particle=13 --samples 5 --out n.nc
expect error poor "--out without .nc" "--out must end in .nc" -- "$E" sample "${DW[@]}" --samples 5 --out x.txt
expect error poor "missing trajectory" "does not exist|no such file" -- "$E" energy "${DW[@]}" missing.nc
expect error poor "trajectory of another atom count" "has 13 atoms, the plugin system has 4" -- "$E" energy "${DW[@]}" lj.nc
expect error poor "existing --out without --overwrite" "already exists; pass --overwrite" -- "$E" sample "${DW[@]}" --samples 5 --out dw.nc

printf '%s\n' "${report[@]}"
total=$((good + poor + bad))
echo "audit: $total cases: $good good, $poor poor, $bad bad ($skipped skipped)"
exit "$bad"
