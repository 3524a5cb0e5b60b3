#!/usr/bin/env python
"""Run the test suite, or one task's tests: python run_tests.py [--task1 .. --task4] [--unit]
[--monitoring].

Exits with pytest's status (non-zero on any failure).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TASK_MARKERS = {
    "task1": "data acquisition, validation, EDA",
    "task2": "features, models, evaluation",
    "task3": "experiment tracking, registry, champion",
    "task4": "model packaging",
}
# Selections by pytest marker beyond the seed's tasks: option -> what it runs.
MARKERS = {
    "monitoring": "prediction store, outcomes, live and estimated performance",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    for task, what in TASK_MARKERS.items():
        parser.add_argument(f"--{task}", action="store_true", help=f"only {what}")
    for marker, what in MARKERS.items():
        parser.add_argument(f"--{marker}", action="store_true", help=f"only {what}")
    parser.add_argument("--unit", action="store_true", help="only the fast unit tests")
    parser.add_argument("pytest_args", nargs="*", help="passed on to pytest")
    args = parser.parse_args()

    chosen = [name for name in (*TASK_MARKERS, *MARKERS) if getattr(args, name)]
    command = [sys.executable, "-m", "pytest"]
    if args.unit:
        command.append(str(ROOT / "tests" / "unit"))
    if chosen:
        command += ["-m", " or ".join(chosen)]
    command += args.pytest_args
    print("+", " ".join(command), flush=True)
    status = subprocess.call(command, cwd=ROOT)
    if status == 5 and chosen:
        print(f"no tests are marked {', '.join(chosen)} yet", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
