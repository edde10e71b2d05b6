# ensemble — the two commands a user needs on a fresh Debian machine:
#   make sample   sample LJ-13 with parallel tempering, write out/lj13.nc + out/lj13.pdb
#   make test     build everything and run the test suite
# Both install what they need (apt-get for the -dev packages, pip into .venv) when missing.

SWIFT      ?= swift
CONFIG     ?= release
BUILD      := .build/$(CONFIG)
ENSEMBLE   := $(BUILD)/ensemble
VENV       := .venv
PYTHON     := $(VENV)/bin/python
REFERENCE  ?= ../shared/reference
APT_PACKAGES := libopenblas-dev libnetcdf-dev libopenmpi-dev openmpi-bin pkg-config
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: sample test unit-test tour-test openmm-plugin openmm-test reference reference-large build deps venv bench bench-mpi clean help alanine-reference alanine-openmm alanine-neural bench-alanine-md reproduce-dw4 reproduce-lj13 reproduce-periodic reproduce-corrected-dw4 reproduce-corrected-lj13

help:
	@echo "make sample   sample LJ-13 (parallel tempering) into out/lj13.nc + out/lj13.pdb"
	@echo "make test     build and run all tests, then replay the README tour from a fresh clone"
	@echo "make reference  DW-4 and LJ-13 reference samples by parallel tempering into out/reference/"
	@echo "make bench    energy, sampler and EGNN throughput, and the training steps against PyTorch"
	@echo "make alanine-reference  alanine φ/ψ reference by Langevin dynamics + REMD, two seeds"
	@echo "make bench-amber        AMBER energy+forces by system size (22-2700 atoms) against OpenMM's CPU platform"
	@echo "make alanine-openmm     OpenMM Langevin MD of the same prmtop (10 ns) against that reference"
	@echo "make alanine-neural     dsm neural sampler for alanine (Cartesian, atom types) + exact correction"
	@echo "make bench-alanine-md   wall time to φ/ψ TV ≤ 0.05: ours against OpenMM, 2 threads each"
	@echo "make bench-mpi  sampling and training throughput at 1 and 2 MPI ranks"
	@echo "make openmm-plugin  the openmm plugin (any OpenMM System XML) into $(BUILD), if OpenMM is installed"

## System libraries (OpenBLAS, netCDF, Open MPI), installed only when missing.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

## Python test tools (independent NetCDF readers, AmberTools, OpenMM) in .venv.
$(VENV)/.installed: scripts/requirements-test.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --disable-pip-version-check -r scripts/requirements-test.txt
	touch $@

venv: $(VENV)/.installed

build: deps
	$(SWIFT) build -c $(CONFIG)

test: unit-test tour-test openmm-test

unit-test: build venv
	$(SWIFT) test -c $(CONFIG) --disable-swift-testing  # the suites are XCTest

## The `openmm` plugin (docs/openmm.md): C++ on OpenMM's C API (OpenMMCWrapper.h, libOpenMM.so)
## as the OpenMM wheel in .venv ships it (OpenMM.libs/), or OPENMM_LIBS=DIR with the same layout;
## built into the executable's directory, where `ensemble` finds it, with an rpath to that
## library. Without the library: a one-line notice and nothing built.
OPENMM_PLUGIN := $(BUILD)/libEnsembleOpenMM.so
OPENMM_LIBS   ?=
openmm-plugin: build
	@libs="$(OPENMM_LIBS)"; [ -n "$$libs" ] || libs=$$(ls -d $(CURDIR)/$(VENV)/lib/python3*/site-packages/OpenMM.libs 2>/dev/null | head -n 1); \
	if [ -z "$$libs" ] || [ ! -f "$$libs/include/OpenMMCWrapper.h" ] || [ ! -f "$$libs/lib/libOpenMM.so" ]; then \
	  echo "openmm plugin: skipped, no OpenMM C API found (make venv installs the openmm wheel; or OPENMM_LIBS=DIR with include/OpenMMCWrapper.h and lib/libOpenMM.so)"; \
	else $(MAKE) --no-print-directory $(OPENMM_PLUGIN) OPENMM_LIBS="$$libs"; fi

$(OPENMM_PLUGIN): Sources/Plugins/OpenMM/openmm_plugin.cpp Sources/EnsemblePluginABI/include/ensemble_plugin.h $(OPENMM_LIBS)/lib/libOpenMM.so
	$(CXX) -std=c++17 -O2 -Wall -shared -fPIC -fvisibility=hidden -I Sources/EnsemblePluginABI/include \
	    -I $(OPENMM_LIBS)/include $< -L $(OPENMM_LIBS)/lib -lOpenMM -Wl,-rpath,$(OPENMM_LIBS)/lib -Wl,--no-undefined -o $@

## Energies and forces against OpenMM's Python API, alanine dipeptide against the alanine plugin,
## Langevin dynamics of a solvated periodic box read back by MDAnalysis, error messages and
## every sampler on the plugin (scripts/openmm_plugin_test.py; ~40 s on the shared 2 cores).
openmm-test: venv openmm-plugin
	@if [ -f $(OPENMM_PLUGIN) ]; then $(PYTHON) scripts/openmm_plugin_test.py --ensemble $(ENSEMBLE) --plugin-dir $(BUILD); \
	else echo "openmm tests: skipped (the openmm plugin is not built)"; fi

## The README's tour, command by command, in a fresh clone of this repository's HEAD with no
## ../shared beside it (~4 min on 2 cores, most of it the clone's first build).
tour-test: deps
	scripts/tour-test.sh

sample: build
	@mkdir -p out
	$(ENSEMBLE) sample --plugin lennard-jones --param preset=lj13 --sampler pt \
	    --samples 4000 --chains 8 --thin 100 --burn-in 20000 --seed 1 --out out/lj13.nc --overwrite
	@echo "view it: vmd out/lj13.pdb out/lj13.nc"

## Reference samples made with the project's own MCMC (no download): DW-4 and LJ-13 by parallel
## tempering, 10 000 frames each (~20 s on 2 cores), with their convergence diagnostics in JSON.
## `make reference-large` adds LJ-55 by PT (12 temperatures up to 2.5 kT, exchange acceptance
## 0.38-0.42; 16.8 M evaluations, ~15 min on one core; split-R̂ 1.004, ESS 1274: converged) and
## the periodic LJ fluid N = 16 by MALA (20 000 frames, 10 s).
## The public benchmark test sets (README, "Reference samples") are the alternative for DW-4/LJ-13.
LJ16 = --plugin lennard-jones --param particles=16 --param density=0.5 --param temperature=2 --param cutoff=1.55
reference: build
	@mkdir -p out/reference
	$(ENSEMBLE) sample --plugin double-well --sampler pt --samples 10000 --chains 8 --thin 50 \
	    --burn-in 5000 --seed 11 --out out/reference/dw4.nc --json out/reference/dw4.json --overwrite
	$(ENSEMBLE) sample --plugin lennard-jones --param preset=lj13 --sampler pt --samples 10000 --chains 8 \
	    --thin 100 --burn-in 20000 --seed 11 --out out/reference/lj13.nc --json out/reference/lj13.json --overwrite

## The larger references of scripts/reproduce-corrected.sh lj55|lj16 (~15 min).
reference-large: build
	@mkdir -p out/reference
	$(ENSEMBLE) sample --plugin lennard-jones --param preset=lj55 --sampler pt --replicas 12 --max-temperature 2.5 \
	    --samples 10000 --chains 8 --thin 100 --burn-in 50000 --seed 12 \
	    --out out/reference/lj55.nc --json out/reference/lj55.json --overwrite
	$(ENSEMBLE) sample $(LJ16) --sampler mala --chains 16 --samples 20000 --thin 50 --burn-in 5000 --seed 11 \
	    --out out/reference/lj16.nc --json out/reference/lj16.json --overwrite

## Alanine dipeptide (ff96, OBC1, 300 K) φ/ψ reference by the default molecular sampler (Langevin
## dynamics, 4 fs with X–H constraints and hydrogen-mass repartitioning, replica exchange 300–600 K
## in 4 levels; README "Molecular dynamics"): two independent seeds of 20 000 frames side by side
## (one core each); their TV against each other and the i.i.d. floor are printed as the check.
ALANINE_MD = --plugin alanine --samples 20000 --threads 1 --overwrite
alanine-reference: build
	@mkdir -p out
	$(ENSEMBLE) sample $(ALANINE_MD) --seed 1 --out out/alanine-reference.nc --json out/alanine-reference.json & \
	$(ENSEMBLE) sample $(ALANINE_MD) --seed 2 --out out/alanine-reference-2.nc --json out/alanine-reference-2.json & \
	wait
	$(ENSEMBLE) ramachandran out/alanine-reference-2.nc --reference out/alanine-reference.nc --plugin alanine \
	    --bins 12 --chains 4 --reference-chains 4 --plot out/alanine-reference.svg \
	    --json out/alanine-reference-convergence.json --overwrite

## OpenMM 8.6 Langevin MD of the same prmtop (LangevinMiddleIntegrator, 2 fs, constraints=HBonds,
## γ 1/ps, OBC1, 300 K, CPU platform, one thread each): three independent 8 ns runs side by side, a
## frame per ps (~55 min on 2 shared cores), interleaved as three chains and compared with the
## reference above (30° bins).
alanine-openmm: build venv
	@mkdir -p out
	$(PYTHON) scripts/alanine_openmm_md.py --ns 8 --seed 1 --out out/alanine-openmm.nc & \
	$(PYTHON) scripts/alanine_openmm_md.py --ns 8 --seed 2 --out out/alanine-openmm-2.nc & \
	$(PYTHON) scripts/alanine_openmm_md.py --ns 8 --seed 3 --out out/alanine-openmm-3.nc & \
	wait
	$(PYTHON) scripts/interleave_nc.py --top out/alanine-reference.pdb --out out/alanine-openmm-3runs.nc \
	    out/alanine-openmm.nc out/alanine-openmm-2.nc out/alanine-openmm-3.nc
	$(ENSEMBLE) ramachandran out/alanine-openmm-3runs.nc --reference out/alanine-reference.nc --plugin alanine \
	    --bins 12 --chains 3 --reference-chains 4 --json out/alanine-openmm-vs-reference.json --overwrite

## The neural sampler for alanine (README "Neural sampler for alanine"): a flexible-bond reference
## (10 000 frames), dynamics data, dsm training with atom types, raw + corrected samples and ODE
## weights, φ/ψ KL/TV and energy W2 against the reference (~45 min on a shared 2-core machine).
alanine-neural: build
	ENSEMBLE=$(ENSEMBLE) scripts/alanine-neural.sh

## The alanine plugin on public prmtops of 22, 147, 642 and 2673 atoms (built by tleap from files
## AmberTools ships) against OpenMM's CPU platform on 1 and 2 threads, vacuum and OBC2, batch 1
## and 16, with and without a 10 Å cutoff: a markdown table, and out/bench-amber.json.
.PHONY: bench-amber
bench-amber: build venv
	$(PYTHON) scripts/bench_amber.py --cutoff 10 --json out/bench-amber.json

## Wall time to φ/ψ TV ≤ 0.05 (30° bins) against out/alanine-reference.nc: the default sampler on 2
## threads against OpenMM's CPU platform on 2 threads (speed measured now; TV curve of the run above).
bench-alanine-md: build venv
	$(ENSEMBLE) sample --plugin alanine --samples 8000 --seed 3 --threads 2 --overwrite \
	    --out out/bench-ours.nc --json out/bench-ours.json
	$(PYTHON) scripts/bench_alanine_md.py --ours out/bench-ours.nc --openmm out/alanine-openmm.nc \
	    --reference out/alanine-reference.nc --threads 2

## The sampler comparison tables of the README: 3 seeds × 5 methods (iDEM, TB, log-variance,
## the last two ± Langevin preconditioning), each run followed by MCMC at its energy budget,
## evaluated against $(REFERENCE)/test_split_*.npy. Restartable; JOBS=2 runs two at a time.
reproduce-dw4: build
	ENSEMBLE_REFERENCE=$(REFERENCE) scripts/reproduce-table.sh dw4 out/table-dw4

reproduce-lj13: build
	ENSEMBLE_REFERENCE=$(REFERENCE) scripts/reproduce-table.sh lj13 out/table-lj13

## Trained samplers with exact correction (tempered-data dsm by SDE and ODE, fixed iDEM), raw and
## corrected, PT at the same total budget, marginal cost per 1000 corrected samples; 3 seeds.
## Restartable. DW-4 ~15 min, LJ-13 ~1.5 h on 2 cores.
reproduce-corrected-dw4: build
	ENSEMBLE_REFERENCE=$(REFERENCE) scripts/reproduce-corrected.sh dw4 out/corrected-dw4

reproduce-corrected-lj13: build
	ENSEMBLE_REFERENCE=$(REFERENCE) METHODS="dsm idem" scripts/reproduce-corrected.sh lj13 out/corrected-lj13

## Periodic LJ fluid (N = 16, ρ = 0.5, T* = 2): TB diffusion sampler on the torus vs a long MALA
## reference and MALA at equal budget; g(r), energy per particle, ESS; N = 64/256 scaling runs
## (~20 min on 2 cores). Results in out/periodic/.
reproduce-periodic: build
	scripts/reproduce-periodic.sh out/periodic

bench: build
	$(ENSEMBLE) bench
	python3 scripts/bench_train.py --ensemble $(ENSEMBLE) --threads 2
	$(SWIFT) run -c $(CONFIG) Benchmarks egnn

## Sampling and training throughput at 1 and 2 MPI ranks, scaling efficiency (~2 min on 2 cores).
bench-mpi: build
	scripts/bench-mpi.sh

clean:
	rm -rf .build out
