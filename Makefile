# heartml: `make run` and `make test` work on a fresh machine with Python 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv system-deps run test test-unit lint format clean bench

help:
	@echo "make run        venv + pinned install + the whole pipeline on embedded defaults"
	@echo "make test       venv + pinned install + system packages + the whole test suite (= CI)"
	@echo "make test-unit  unit tests only (fast; no system packages needed)"
	@echo "make lint       ruff + mypy"
	@echo "make bench      the benchmarks, checked against their documented targets"

$(STAMP): pyproject.toml requirements/constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e ".[dev]"
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/heartml pipeline

# The Debian packages the tests run for real (PostgreSQL, wrk, Chromium, deploy tools):
# apt-get as root, else one line naming what is missing.
system-deps:
	scripts/install-system-deps.sh

test: $(STAMP) system-deps
	$(BIN)/python run_tests.py

test-unit: $(STAMP)
	$(BIN)/python run_tests.py --unit

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks run_tests.py
	$(BIN)/ruff format --check src tests benchmarks run_tests.py
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks run_tests.py
	$(BIN)/ruff check --fix src tests benchmarks run_tests.py

# Not part of `make test`: timings belong to a quiet machine, not to the suite.
bench: $(STAMP)
	$(BIN)/python benchmarks/check.py

clean:
	rm -rf data/processed models reports packages mlflow.db mlartifacts optuna.db .pytest_cache

# ---- Deploy (issue 5): container images and their smoke test; see docs/deploy.md ----------------
.PHONY: image image-pipeline test-container
HEARTML_IMAGE ?= heartml-api:latest

image:  ## the serving image (BASE_IMAGE=..., MODEL_PACKAGE=packages/<name> to bake a model in)
	IMAGE=$(HEARTML_IMAGE) scripts/build-image.sh serving

image-pipeline:  ## the training-jobs image (runs `heartml pipeline`)
	IMAGE=heartml-pipeline:latest scripts/build-image.sh pipeline

test-container: $(STAMP)  ## build, run and smoke-test the serving image (starts dockerd if needed)
	scripts/container-test.sh
