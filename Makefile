# Quick start: `make repro` (set up, then run the pipeline) and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export PATH := $(abspath $(VENV))/bin:$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: setup lock repro snakemake test verify sweep remote-test slurm-test lint bench image image-test sif dvc-yaml params-schema

setup: $(STAMP)

# DALI and the other CUDA-only packages (requirements-cuda.txt) exist for Linux x86-64 only:
# there `make` installs the hashed lock of everything, elsewhere (or with CUDA_EXTRA=0) the
# pins of every platform, and `data.loader: auto` then uses torchvision.
CUDA_EXTRA ?= $(if $(filter Linux-x86_64,$(shell uname -s)-$(shell uname -m)),1,0)
# The image's lock is compiled for the image's Python (docker/Dockerfile's PYTHON_VERSION, the
# base release's own), the development lock for the venv's; uv writes each in the lock's header.
IMAGE_PYTHON := $(shell sed -n 's/^ARG PYTHON_VERSION=//p' docker/Dockerfile)
DEV_PYTHON := 3.11
UV_COMPILE := uv pip compile --quiet --generate-hashes --python-platform x86_64-manylinux_2_28

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
	$(call compile_lock,requirements.lock,$(IMAGE_PYTHON),requirements.txt requirements-cuda.txt)
	$(call compile_lock,requirements-dev.lock,$(DEV_PYTHON),\
		requirements.txt requirements-cuda.txt requirements-dev.txt)

# uv reuses the hashes that the output file already lists for a pin, even those of wheels for
# another Python. So a lock is recompiled from its pins without hashes: the pins stay
# preferred (nothing is upgraded that need not be), every hash is fetched anew, and the lock
# is put back as it was if uv fails.
define compile_lock
	cp $(1) $(1).orig && sed -i -e '/^ *--hash=/d' -e 's/ \\$$//' $(1)
	$(UV_COMPILE) --python-version $(2) -o $(1) $(3) || { mv $(1).orig $(1); exit 1; }
	rm $(1).orig
endef

repro: $(STAMP)
	dvc repro
	@echo "Results: results/summary.md (tables), results/*.png (plots), results/metrics.json"

# dvc.yaml is generated from the stage contract (src/sswp/pipeline/contract.py) and params.yaml's runs.
dvc-yaml: $(STAMP)
	sswp dvc-yaml

# workflow/schemas/params.schema.yaml is generated from the params dataclasses (src/sswp/config/params.py).
params-schema: $(STAMP)
	sswp params-schema

snakemake: $(STAMP)
	snakemake

# Tests run single-threaded, so one pytest worker per core (at most 4: each loads torch).
test: $(STAMP)
	$(PY) -m pytest -n auto --maxprocesses 4 --dist worksteal

# Rerun the committed default in a scratch folder and compare it with the committed results.
verify: $(STAMP)
	sswp verify

# The trial across search budgets (docs/sweep.md): the default at each search.epochs below,
# one DVC experiment each (`sweep-e<epochs>`), queued and run one at a time by DVC's queue,
# then gathered into results/sweep/. A budget that an experiment holds already is not run
# again, so after an interruption `make sweep` carries on where it stopped.
SWEEP_EPOCHS ?= 10 30 100
sweep: $(STAMP)
	@for epochs in $(SWEEP_EPOCHS); do \
		name=sweep-e$$epochs; \
		if git for-each-ref --format='%(refname)' refs/exps | grep -q "/$$name$$"; then \
			echo "$$name: kept already"; \
		elif dvc queue status | grep -q " $$name "; then \
			echo "$$name: queued already"; \
		else \
			dvc exp run --queue --name $$name -S search.epochs=$$epochs; \
		fi; \
	done
	dvc queue start --jobs 1
	while dvc queue status | grep -Eq "Queued|Running"; do sleep 60; done
	sswp sweep $(addprefix sweep-e,$(SWEEP_EPOCHS))

# A DVC remote over SSH, for real (tests/remote): installs Debian's openssh-server (needs root),
# and the tests start sshd on a free port of localhost with a throwaway key, push a tiny
# pipeline's artifacts, pull them into fresh clones, kill a push partway and corrupt a file
# on the remote; sshd stops however the tests end.
remote-test: $(STAMP)
	command -v /usr/sbin/sshd >/dev/null || { apt-get update -q >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-server >/dev/null; }
	SSWP_REMOTE_TEST=1 $(PY) -m pytest tests/remote -v -rs -p no:cacheprovider

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

# The image's tag: the version (pyproject.toml, CHANGELOG.md) and the commit it was built from.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE_TAG := $(VERSION)-$(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
ENGINE ?= docker

image:
	$(ENGINE) build -f docker/Dockerfile -t sswp:$(IMAGE_TAG) \
		-t ghcr.io/sswp-pipeline/sswp:$(IMAGE_TAG) .

# The image, built with podman from a local Ubuntu 24.04 base (the CUDA base's release and
# Python), runs a tiny pipeline as its non-root user and writes the venv's results
# (tests/image). Needs root on Debian or Ubuntu, Ubuntu's archive and PyPI, and about 20 GB
# of disk while it runs; it removes its images, containers and podman storage at the end.
image-test: $(STAMP)
	apt-get update -q >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman runc debootstrap >/dev/null
	SSWP_IMAGE_TEST=1 $(PY) -m pytest tests/image -s -v -p no:cacheprovider

# A SIF file without a Docker daemon: podman builds the image and saves it to an OCI archive,
# which apptainer builds from (docker/apptainer.def); the archive alone can go to a cluster.
sif:
	$(MAKE) image ENGINE=podman
	podman save --format oci-archive -o sswp-image.tar sswp:$(IMAGE_TAG)
	apptainer build sswp.sif docker/apptainer.def

bench: $(STAMP)
	$(PY) benchmarks/search_step.py
