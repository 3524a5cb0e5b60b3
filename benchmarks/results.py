"""The benchmarks' measured values against their documented targets, as one JSON document per
benchmark (`--json PATH`), so that benchmarks/check.py can judge them without parsing prints."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from pathlib import Path
from typing import Any

COMPARISONS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le}


def target(name: str, measured: float | None, op: str, goal: float, unit: str) -> dict[str, Any]:
    """One documented target and what was measured for it (None: could not be measured)."""
    if op not in COMPARISONS:
        raise ValueError(f"op must be one of {sorted(COMPARISONS)}, not {op!r}")
    return {"name": name, "measured": measured, "op": op, "goal": goal, "unit": unit}


def met(row: dict[str, Any]) -> bool:
    measured = row["measured"]
    return measured is not None and COMPARISONS[row["op"]](float(measured), float(row["goal"]))


def write(path: Path | None, benchmark: str, rows: list[dict[str, Any]]) -> None:
    if path is not None:
        path.write_text(json.dumps({"benchmark": benchmark, "targets": rows}, indent=2) + "\n")
