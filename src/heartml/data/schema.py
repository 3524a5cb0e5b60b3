"""Parse the UCI file format and validate it against the UCI coding with pandera.

Two kinds of problem, kept apart on purpose:
- structural (wrong field count, text where a number belongs): the file is not what we think it
  is, so parsing stops with a StructuralError naming the line and field;
- domain (a code outside the UCI coding, an implausible clinical value): reported row by row with
  column, value and rule; those rows are quarantined, the rest go on.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa

from heartml.coding import COLUMNS_BY_NAME, FILE_COLUMNS, RAW_COLUMNS, SOURCE_COLUMN, TARGET
from heartml.errors import DataError

MISSING_MARKERS = frozenset({"?", ""})


class StructuralError(DataError):
    """The file does not have the UCI processed-file structure."""


def _parse_number(text: str, line_number: int, column: str) -> float:
    stripped = text.strip()
    if stripped in MISSING_MARKERS:
        return math.nan
    try:
        value = float(stripped)  # accepts "63", "63.0" and ".7"
    except ValueError:
        raise StructuralError(
            f"line {line_number}, column '{column}': {stripped!r} is not a number or '?'"
        ) from None
    if not math.isfinite(value):
        raise StructuralError(f"line {line_number}, column '{column}': {stripped!r} is not finite")
    return value


def parse_uci(content: bytes | str) -> pd.DataFrame:
    """UCI processed format (no header, comma-separated, '?' missing) -> typed DataFrame.

    Adds `target` = (num > 0). A cholesterol or blood pressure of 0 becomes missing: it is not a
    measurement.
    """
    text = content.decode("utf-8") if isinstance(content, bytes) else content
    rows: list[list[float]] = []
    lines: list[int] = []
    for line_number, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(FILE_COLUMNS):
            raise StructuralError(
                f"line {line_number}: {len(fields)} fields, expected {len(FILE_COLUMNS)} "
                f"({', '.join(FILE_COLUMNS)})"
            )
        rows.append(
            [_parse_number(f, line_number, c) for f, c in zip(fields, FILE_COLUMNS, strict=True)]
        )
        lines.append(line_number)
    if not rows:
        raise StructuralError("the file has no data rows")
    # Index = file line - 1, so "line = row + 1" stays true when blank lines are skipped.
    index = pd.RangeIndex(len(rows)) if lines[-1] == len(lines) else pd.Index(lines) - 1
    frame = pd.DataFrame(rows, columns=list(FILE_COLUMNS), index=index, dtype="float64")
    for column in RAW_COLUMNS:
        if column.missing_zero:
            frame.loc[frame[column.name] == 0, column.name] = np.nan
    if frame[SOURCE_COLUMN].isna().any():
        line = int(frame.index[frame[SOURCE_COLUMN].isna()][0]) + 1
        raise StructuralError(f"row {line}: the diagnosis 'num' is missing; it is the label")
    frame[SOURCE_COLUMN] = frame[SOURCE_COLUMN].astype("int64")
    frame[TARGET] = (frame[SOURCE_COLUMN] > 0).astype("int64")
    return frame


def _column_schema(name: str) -> pa.Column:
    spec = COLUMNS_BY_NAME[name]
    if spec.codes:
        check = pa.Check.isin(sorted(spec.codes), error=f"UCI coding: {spec.allowed}")
    else:
        check = pa.Check.in_range(
            spec.minimum, spec.maximum, error=f"plausible range: {spec.allowed}"
        )
    # age, sex, cp, ... are never missing in UCI's files; ca/thal/chol/trestbps may be.
    nullable = name in {
        "ca",
        "thal",
        "chol",
        "trestbps",
        "fbs",
        "restecg",
        "slope",
        "thalach",
        "exang",
        "oldpeak",
    }
    return pa.Column(float, checks=check, nullable=nullable)


def build_schema() -> pa.DataFrameSchema:
    columns = {column.name: _column_schema(column.name) for column in RAW_COLUMNS}
    columns[SOURCE_COLUMN] = pa.Column(
        int, pa.Check.isin([0, 1, 2, 3, 4], error="UCI diagnosis: one of 0, 1, 2, 3, 4")
    )
    columns[TARGET] = pa.Column(int, pa.Check.isin([0, 1], error="binary target: 0 or 1"))
    return pa.DataFrameSchema(columns, strict=True, ordered=True, coerce=False)


@dataclass(frozen=True)
class ValidationResult:
    valid: pd.DataFrame  # rows that passed every rule
    rejected: pd.DataFrame  # rows that broke a rule, with their reasons
    problems: list[dict[str, object]]  # one entry per (row, column, value, rule)


def validate(frame: pd.DataFrame) -> ValidationResult:
    """Check every rule on every row; quarantine the rows that break one."""
    try:
        build_schema().validate(frame, lazy=True)
        problems: list[dict[str, object]] = []
    except pa.errors.SchemaErrors as exc:
        problems = _problems_from(exc.failure_cases, frame)
    bad_rows = sorted({int(p["row"]) for p in problems if p["row"] is not None})  # type: ignore[call-overload]
    if any(p["row"] is None for p in problems):
        # A column-level failure (missing or extra column, wrong dtype) is structural.
        first = next(p for p in problems if p["row"] is None)
        found = "" if first["value"] is None else f", found {first['value']}"
        raise StructuralError(f"column '{first['column']}': {first['rule']}{found}")
    rejected = frame.loc[bad_rows].copy()
    rejected.insert(0, "line", [r + 1 for r in bad_rows])
    rejected["reasons"] = [
        "; ".join(f"{p['column']}={p['value']}: {p['rule']}" for p in problems if p["row"] == r)
        for r in bad_rows
    ]
    return ValidationResult(frame.drop(index=bad_rows), rejected, problems)


_FRAME_CHECKS = {
    "column_in_dataframe": "missing from the data",
    "column_in_schema": "not a UCI column",
    "column_ordered": f"out of order (expected {', '.join((*FILE_COLUMNS, TARGET))})",
}


def _problems_from(failure_cases: pd.DataFrame, frame: pd.DataFrame) -> list[dict[str, object]]:
    problems = []
    for case in failure_cases.itertuples(index=False):
        index = case.index
        row = (
            None
            if index is None or (isinstance(index, float) and math.isnan(index))
            else int(index)
        )
        value = case.failure_case
        column, rule = case.column, str(case.check)
        if column is None:
            # A frame-level check (missing, extra, misordered column) names the column as its
            # failure case.
            column, value = str(value), None
            rule = _FRAME_CHECKS.get(rule, rule)
        elif isinstance(value, float | np.floating) and math.isnan(value):
            value = None
        elif isinstance(value, np.generic):
            value = value.item()
        problems.append(
            {
                "row": row,
                "line": None if row is None else row + 1,
                "column": column,
                "value": value,
                "rule": rule,
            }
        )
    return problems
