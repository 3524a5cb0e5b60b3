"""benchmarks/check.py (`make bench`): one table of target vs measured, non-zero on any miss.

The benchmarks themselves are not run here (timings belong to a quiet machine, not to the
suite); their JSON rows are, as each benchmark writes them with --json."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.deploy

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import check  # noqa: E402
import results  # noqa: E402


def rows(*measured: tuple[float | None, str, float]) -> list[dict[str, Any]]:
    return [
        {**results.target(f"target {i}", value, op, goal, "ratio"), "benchmark": "bench_x.py"}
        for i, (value, op, goal) in enumerate(measured)
    ]


def test_every_target_met_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert check.judge(rows((0.44, ">=", 0.40), (12.0, "<=", 15.0))) == 0
    out = capsys.readouterr().out
    assert "2 of 2 targets met" in out and "MISSED" not in out
    assert "44%" in out and ">= 40%" in out  # measured and goal side by side, as ratios


@pytest.mark.parametrize(
    "miss",
    [(0.39, ">=", 0.40), (15.5, "<=", 15.0), (None, ">=", 40.0)],
    ids=["ratio below", "time above", "not measured"],
)
def test_one_missed_target_exits_1_and_names_it(
    miss: tuple[float | None, str, float], capsys: pytest.CaptureFixture[str]
) -> None:
    table = rows((0.44, ">=", 0.40), miss)
    assert check.judge(table) == 1
    out = capsys.readouterr().out
    assert "1 of 2 targets met; missed: target 1" in out
    assert out.count("MISSED") == 1


def test_no_rows_is_not_a_pass() -> None:
    assert check.judge([]) == 1


@pytest.mark.parametrize("script", ["bench_training.py", "bench_batch.py", "bench_serving.py"])
def test_each_benchmark_writes_its_targets_as_json(script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "--json" in result.stdout
    assert "results.write(" in (BENCHMARKS / script).read_text()
