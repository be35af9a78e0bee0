# Quick start: `make repro` (set up, then run the pipeline) and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export PATH := $(abspath $(VENV))/bin:$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: setup lock repro snakemake test verify slurm-test lint bench image sif dvc-yaml

setup: $(STAMP)

# DALI and the other CUDA-only packages (requirements-cuda.txt) exist for Linux x86-64 only:
# there `make` installs the hashed lock of everything, elsewhere (or with CUDA_EXTRA=0) the
# pins of every platform, and `data.loader: auto` then uses torchvision.
CUDA_EXTRA ?= $(if $(filter Linux-x86_64,$(shell uname -s)-$(shell uname -m)),1,0)
UV_COMPILE := uv pip compile --quiet --generate-hashes --no-header --python-version 3.11 \
	--python-platform x86_64-manylinux_2_28

# Reinstall only when the pins, the locks or the package metadata change.
$(STAMP): requirements.txt requirements-cuda.txt requirements-dev.txt requirements-dev.lock pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
ifeq ($(CUDA_EXTRA),1)
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.lock
else
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
endif
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Regenerate both locks (Linux x86-64, with hashes) after changing a pin; needs uv.
lock:
	$(UV_COMPILE) -o requirements.lock requirements.txt requirements-cuda.txt
	$(UV_COMPILE) -o requirements-dev.lock requirements.txt requirements-cuda.txt requirements-dev.txt

repro: $(STAMP)
	dvc repro
	@echo "Results: results/summary.md (tables), results/*.png (plots), results/metrics.json"

# dvc.yaml is generated from the stage contract (src/sswp/contract.py) and params.yaml's runs.
dvc-yaml: $(STAMP)
	sswp dvc-yaml

snakemake: $(STAMP)
	snakemake --profile workflow/profiles/default

test: $(STAMP)
	$(PY) -m pytest

# Rerun the committed default in a scratch folder and compare it with the committed results.
verify: $(STAMP)
	sswp verify

# The Slurm profile on a real single-node Slurm cluster with accounting: installs the Debian
# packages and starts the daemons (tests/slurm/cluster.sh; needs root, no systemd), runs
# tests/slurm, and stops every daemon it started however the tests end.
slurm-test: $(STAMP)
	trap 'tests/slurm/cluster.sh stop' EXIT; \
	tests/slurm/cluster.sh start && SSWP_SLURM_TEST=1 $(PY) -m pytest tests/slurm -v -rs -s

lint: $(STAMP)
	ruff check src tests benchmarks
	ruff format --check src tests benchmarks
	snakemake --lint
	hadolint docker/Dockerfile

image:
	docker build -f docker/Dockerfile -t sswp:0.1.0 .

sif: image
	apptainer build sswp.sif docker/apptainer.def

bench: $(STAMP)
	$(PY) benchmarks/search_step.py
