# heartml: `make run` and `make test` work on a fresh machine with Python 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv run test test-unit lint format clean

help:
	@echo "make run        venv + pinned install + the whole pipeline on embedded defaults"
	@echo "make test       venv + pinned install + the whole test suite (what CI runs)"
	@echo "make test-unit  unit tests only (fast)"
	@echo "make lint       ruff + mypy"

$(STAMP): pyproject.toml requirements/constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e ".[dev]"
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/heartml pipeline

test: $(STAMP)
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

clean:
	rm -rf data/processed models reports packages mlflow.db mlartifacts .pytest_cache
