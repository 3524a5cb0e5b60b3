"""Run the three benchmarks and check every documented target: one table, non-zero on a miss.

    .venv/bin/python benchmarks/check.py [--quick] [--keep DIR]      (what `make bench` runs)

1. bench_serving.py in a throwaway project (`heartml data`, `track`, `package` for the four
   registered models): ours vs `mlflow models serve`, /predict vs /health, p99, cold start, RSS;
2. bench_batch.py on that project's champion package: end to end vs raw ONNX predict;
3. bench_training.py: Task 2 wall time.

Each benchmark writes its targets and measured values with `--json`; this script only compares
(ratios where a target is a ratio: they are measured side by side in one run, so a busy machine
moves both sides). Exit status: 0 when every target is met, 1 when one is missed or was not
measured, 2 when a benchmark itself failed. Not part of `make test`: timings belong to a quiet
machine (check `uptime` first), not to a test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import results  # noqa: E402


def run(script: str, *args: str, json_path: Path) -> list[dict[str, Any]]:
    command = [sys.executable, str(HERE / script), *args, "--json", str(json_path)]
    print(f"\n+ {' '.join(command)}", flush=True)
    started = time.monotonic()
    status = subprocess.call(command)
    print(f"({script}: {time.monotonic() - started:.0f} s, exit {status})", flush=True)
    if status != 0 or not json_path.is_file():
        print(f"check: {script} failed (exit {status}); no targets to check", file=sys.stderr)
        raise SystemExit(2)
    rows: list[dict[str, Any]] = json.loads(json_path.read_text())["targets"]
    return [{**row, "benchmark": script} for row in rows]


def table(rows: list[dict[str, Any]]) -> str:
    def value(number: float | None, unit: str) -> str:
        if number is None:
            return "not measured"
        if unit == "ratio":
            return f"{number:.2f}x" if number >= 1 else f"{number:.0%}"
        return f"{number:,.2f} {unit}"

    header = ("benchmark", "target", "goal", "measured", "")
    lines = [
        (
            row["benchmark"],
            row["name"],
            f"{row['op']} {value(row['goal'], row['unit'])}",
            value(row["measured"], row["unit"]),
            "met" if results.met(row) else "MISSED",
        )
        for row in rows
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines, strict=True)]
    out = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in (header, tuple("-" * w for w in widths), *lines)
    ]
    return "\n".join(line.rstrip() for line in out)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument("--quick", action="store_true", help="short runs (serving --quick, ...)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the benchmark project here")
    args = parser.parse_args()

    print(f"load average at the start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    folder = Path(tempfile.mkdtemp(prefix="heartml-bench-check-"))
    project = args.keep.resolve() if args.keep else folder / "project"
    try:
        rows = run(
            "bench_serving.py",
            "--project",
            str(project),
            *(("--quick",) if args.quick else ()),
            json_path=folder / "serving.json",
        )
        # The champion's package (`heartml package` names it by the alias; the others by number).
        package = next(
            p
            for p in sorted((project / "packages").glob("heart_disease_model_*"))
            if json.loads((p / "MANIFEST.json").read_text())["model_uri"].endswith("@champion")
        )
        rows += run(
            "bench_batch.py",
            "--package",
            str(package),
            *(("--repeats", "2") if args.quick else ()),  # 1M rows: smaller runs are all overhead
            json_path=folder / "batch.json",
        )
        rows += run("bench_training.py", json_path=folder / "training.json")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\nload average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return judge(rows)


def judge(rows: list[dict[str, Any]]) -> int:
    """Print the table and the verdict; 0 when every target is met, else 1."""
    print("\n" + table(rows))
    missed = [row for row in rows if not results.met(row)]
    print(
        f"\n{len(rows) - len(missed)} of {len(rows)} targets met"
        + (f"; missed: {', '.join(row['name'] for row in missed)}" if missed else "")
    )
    return 1 if missed or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
