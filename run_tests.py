#!/usr/bin/env python
"""Run the test suite, or a selection of it.

    python run_tests.py                      every test
    python run_tests.py --task1 .. --task4   one task's tests (several flags: their union)
    python run_tests.py --serving | --deploy | --reliability | --scale | --monitoring
    python run_tests.py --unit [--taskN ...] only the fast tests: tests/unit, nothing marked
                                             slow or integration
    python run_tests.py --task3 -- -x -k gate    anything after the flags goes to pytest

Every test carries at least one selection marker (tests/conftest.py refuses a test that has
none), so the selections together cover the whole suite. Exits with pytest's status.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# Selection flag -> what it selects. Each is a pytest marker declared in pyproject.toml.
SELECTIONS = {
    "task1": "data acquisition, validation, EDA",
    "task2": "features, models, evaluation",
    "task3": "experiment tracking, registry, champion",
    "task4": "model packaging",
    "serving": "the prediction service",
    "deploy": "container, manifests, workflows, monitoring config, CI set-up",
    "reliability": "fuzzing, load, faults and security checks of the service",
    "scale": "batch scoring, tuning, reproducibility",
    "monitoring": "prediction store, outcomes, live and estimated performance",
}
# What --unit leaves out, besides everything outside tests/unit.
NOT_UNIT = ("slow", "integration")


def pytest_command(chosen: list[str], unit: bool, extra: list[str]) -> list[str]:
    """The pytest command line for the chosen selections (none: all) and --unit."""
    command = [sys.executable, "-m", "pytest"]
    if unit:
        command.append(str(ROOT / "tests" / "unit"))
    terms = []
    if chosen:
        terms.append(" or ".join(chosen))
    if unit:
        terms += [f"not {marker}" for marker in NOT_UNIT]
    if terms:
        expression = " and ".join(f"({term})" if " or " in term else term for term in terms)
        command += ["-m", expression]
    return command + extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for name, what in SELECTIONS.items():
        parser.add_argument(f"--{name}", action="store_true", help=f"only {what}")
    parser.add_argument(
        "--unit", action="store_true", help="only the fast unit tests (no slow, no integration)"
    )
    parser.add_argument("pytest_args", nargs="*", help="passed on to pytest (after --)")
    args = parser.parse_args(argv)

    chosen = [name for name in SELECTIONS if getattr(args, name)]
    command = pytest_command(chosen, args.unit, args.pytest_args)
    print("+", " ".join(command), flush=True)
    status = subprocess.call(command, cwd=ROOT)
    if status == 5:
        print(f"no test matches {' '.join(command[3:])}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
