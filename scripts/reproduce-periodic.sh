#!/usr/bin/env bash
# Periodic Lennard-Jones fluid on the torus (README "Periodic systems on the torus"):
#  1. a long MALA reference (16 chains),
#  2. a log-variance diffusion sampler (220 and 400 training steps) with Langevin preconditioning (uniform prior on
#     the box, wrapped Brownian reference, EGNN on minimum-image displacements),
#  3. 2000 weighted samples → ESS, reweighted energy per particle and g(r) against the
#     reference (ensemble rdf, error bars), and the same for MALA at the sampler's budget,
#  4. short scaling runs at N = 64 and N = 256 (time per step, ESS, energies).
# State point: N = 16, ρ = 0.5 σ⁻³, T* = 2, cutoff 1.55σ (< L/2 = 1.587σ), truncated and shifted.
#
# Usage: scripts/reproduce-periodic.sh [OUTDIR]   (needs `swift build -c release` first;
#        ~30 min on 2 cores). Results: OUTDIR/*.json, OUTDIR/rdf*.svg, OUTDIR/*.txt
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/out/periodic}"
E="$root/.build/release/ensemble"
mkdir -p "$out"
P16=(--plugin lennard-jones --param particles=16 --param density=0.5 --param temperature=2 --param cutoff=1.55)

# 1. Reference: MALA, 16 chains × 1250 frames (thin 50) after 5000 burn-in steps.
"$E" sample "${P16[@]}" --sampler mala --chains 16 --samples 20000 --thin 50 --burn-in 5000 --seed 1 \
    --out "$out/mcmc16.nc" --overwrite | tee "$out/mcmc16.txt"

# 2.–3. Log-variance + Langevin preconditioning on the torus (c(t) starts at 0.25 = σ²), trained
#    to step 220, then resumed to step 400 (a resume is bit-identical to an uninterrupted run).
#    After each stage: 2000 weighted samples, g(r) and energy per particle (U/(Nε) = T*·u/N)
#    weighted and unweighted against the reference, and MALA at the same total budget.
cp_args=(--method logvar --langevin-preconditioning --hidden 32 --layers 2 --batch 16 --time-steps 100
         --noise-scale 0.5 --langevin-init 0.25 --langevin-clip 100 --energy-clip 50 --seed 1)
for stage in 220 400; do
  tag=lv16-$stage
  if [ "$stage" = 220 ]; then
    "$E" train "${P16[@]}" "${cp_args[@]}" --steps "$stage" --out "$out/lv16.ckpt" --overwrite | tee "$out/$tag-train.txt"
  else
    "$E" train "${P16[@]}" "${cp_args[@]}" --steps "$stage" --resume --out "$out/lv16.ckpt" | tee "$out/$tag-train.txt"
  fi
  cp "$out/lv16.ckpt" "$out/$tag.ckpt"
  "$E" sample --model "$out/$tag.ckpt" --samples 2000 --seed 2 --out "$out/$tag.nc" --overwrite | tee "$out/$tag-sample.txt"
  "$E" rdf "$out/$tag.nc" --reference "$out/mcmc16.nc" "${P16[@]}" --energy-scale 2 \
      --plot "$out/rdf-$tag.svg" --json "$out/rdf-$tag.json" --overwrite | tee "$out/rdf-$tag.txt"
  "$E" rdf "$out/$tag.nc" --reference "$out/mcmc16.nc" "${P16[@]}" --energy-scale 2 --unweighted \
      --plot "$out/rdf-$tag-unweighted.svg" --json "$out/rdf-$tag-unweighted.json" --overwrite | tee "$out/rdf-$tag-unweighted.txt"
  # MALA at the sampler's budget (training so far + sampling energy evaluations), 16 chains.
  budget=$(( $(grep -o 'energy evaluations: [0-9]*' "$out/$tag-train.txt" | tail -1 | grep -o '[0-9]*$') \
           + $(grep -o '^energy evaluations: [0-9]*' "$out/$tag-sample.txt" | grep -o '[0-9]*$') ))
  per_chain=$(( budget / 16 ))
  thin=$(( (per_chain / 2) / 125 )); [ "$thin" -ge 1 ] || thin=1
  burn=$(( per_chain - 125 * thin ))
  "$E" sample "${P16[@]}" --sampler mala --chains 16 --samples 2000 --thin "$thin" --burn-in "$burn" --seed 3 \
      --out "$out/mala16-budget-$stage.nc" --overwrite | tee "$out/mala16-budget-$stage.txt"
  "$E" rdf "$out/mala16-budget-$stage.nc" --reference "$out/mcmc16.nc" "${P16[@]}" --energy-scale 2 \
      --json "$out/rdf-mala16-budget-$stage.json" --overwrite | tee "$out/rdf-mala16-budget-$stage.txt"
done

# 4. Scaling toward N = 256 (ρ = 0.5, cutoff 2.5σ): the same process and network, graph cutoff
#    2σ, batch 4, a few steps each (time per step, ESS, energy per particle vs a short MALA run).
for n in 64 256; do
  PN=(--plugin lennard-jones --param particles=$n --param density=0.5 --param temperature=2 --param cutoff=2.5)
  "$E" train "${PN[@]}" --method logvar --langevin-preconditioning --steps "${SCALING_STEPS:-3}" --hidden 32 \
      --layers 2 --batch 4 --time-steps 100 --noise-scale 0.5 --langevin-init 0.25 --energy-clip 50 \
      --graph-cutoff 2 --seed 1 --out "$out/lv$n.ckpt" --overwrite | tee "$out/lv$n-train.txt"
  "$E" sample --model "$out/lv$n.ckpt" --samples 32 --seed 2 --out "$out/lv$n.nc" --overwrite | tee "$out/lv$n-sample.txt"
  "$E" sample "${PN[@]}" --sampler mala --chains 4 --samples 400 --thin 20 --burn-in 2000 --seed 1 \
      --out "$out/mala$n.nc" --overwrite | tee "$out/mala$n.txt"
  "$E" rdf "$out/lv$n.nc" --reference "$out/mala$n.nc" "${PN[@]}" --energy-scale 2 \
      --json "$out/rdf-lv$n.json" --overwrite | tee "$out/rdf-lv$n.txt"
done
echo "results in $out"
