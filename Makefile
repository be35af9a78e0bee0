# Quick start: `make repro` (set up, then run the pipeline) and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export PATH := $(abspath $(VENV))/bin:$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: setup repro snakemake test lint bench image sif

setup: $(STAMP)

# Reinstall only when the pins or the package metadata change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

repro: $(STAMP)
	dvc repro
	@echo "Results: results/summary.md (tables), results/*.png (plots), results/metrics.json"

snakemake: $(STAMP)
	snakemake --profile workflow/profiles/default

test: $(STAMP)
	$(PY) -m pytest

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
