"""The Task 1 pandera schema, derived from the dataset spec, and row-level validation.

Every rule comes from the spec (codes, ranges, which columns are required, the label's allowed
values); every message comes from heartml.spec.rules, so Task 1's rejected rows, batch scoring's
rejects file and the API's 422s word the same problem the same way. Rows that break a rule are
quarantined with their reasons; a column-level failure (a column missing or extra) is
structural and stops the run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa

from heartml.data.parse import Parsed, StructuralError
from heartml.spec import TARGET, DatasetSpec, rules

NOT_NULLABLE = "not_nullable"


def build_schema(spec: DatasetSpec) -> pa.DataFrameSchema:
    columns: dict[str, pa.Column] = {}
    for name, column in spec.columns.items():
        if column.codes is not None:
            check = pa.Check.isin(sorted(float(c) for c in column.codes), error=rules.NOT_ALLOWED)
        else:
            assert column.range is not None
            check = pa.Check.in_range(*column.range, error=rules.NOT_ALLOWED)
        columns[name] = pa.Column(float, checks=check, nullable=not column.required)
    allowed = ", ".join(str(v) for v in spec.target.allowed)
    columns[spec.target.column] = pa.Column(
        float,
        pa.Check.isin([float(v) for v in spec.target.allowed], error=f"label: one of {allowed}"),
    )
    columns[TARGET] = pa.Column(float, pa.Check.isin([0.0, 1.0], error="binary target: 0 or 1"))
    return pa.DataFrameSchema(columns, strict=True, ordered=True, coerce=False)


@dataclass(frozen=True)
class ValidationResult:
    valid: pd.DataFrame  # rows that passed every rule (label and target as integers)
    rejected: pd.DataFrame  # rows that broke a rule: `line`, the row, `reasons`
    problems: list[dict[str, object]]  # one entry per (row, column, value, rule)


def validate(parsed: Parsed, spec: DatasetSpec) -> ValidationResult:
    """Check every rule on every row; quarantine the rows that break one."""
    frame = parsed.frame
    try:
        build_schema(spec).validate(frame, lazy=True)
        problems: list[dict[str, object]] = []
    except pa.errors.SchemaErrors as exc:
        problems = _problems_from(exc.failure_cases, spec)
    if any(p["row"] is None for p in problems):
        first = next(p for p in problems if p["row"] is None)
        found = "" if first["value"] is None else f", found {first['value']}"
        raise StructuralError(f"column '{first['column']}': {first['rule']}{found}")
    # A field that was not a number is NaN in the frame; its own message replaces "missing".
    # The derived target is missing exactly when the label is, which is reported already.
    texts = {(p["row"], p["column"]) for p in parsed.problems}
    problems = [
        p
        for p in problems
        if (p["row"], p["column"]) not in texts
        and not (p["column"] == TARGET and p["value"] is None)
    ]
    problems = sorted([*parsed.problems, *problems], key=_order(frame, spec))
    bad_rows = sorted({int(p["row"]) for p in problems})  # type: ignore[call-overload]
    rejected = frame.loc[bad_rows].copy()
    rejected.insert(0, "line", [r + 1 for r in bad_rows])
    rejected["reasons"] = [
        "; ".join(rules.reason(str(p["column"]), str(p["rule"])) for p in problems if p["row"] == r)
        for r in bad_rows
    ]
    valid = frame.drop(index=bad_rows)
    valid = valid.astype({spec.target.column: "int64", TARGET: "int64"})
    return ValidationResult(valid, rejected, problems)


def _order(
    frame: pd.DataFrame, spec: DatasetSpec
) -> Callable[[dict[str, object]], tuple[int, int]]:
    """Problems in row order, then in the file's column order."""
    position = {name: i for i, name in enumerate(frame.columns)}
    return lambda p: (int(p["row"]), position.get(str(p["column"]), len(position)))  # type: ignore[call-overload]


_FRAME_CHECKS = {
    "column_in_dataframe": "missing from the data",
    "column_in_schema": "not a column of the dataset spec",
    "column_ordered": "out of order",
}


def _problems_from(failure_cases: pd.DataFrame, spec: DatasetSpec) -> list[dict[str, object]]:
    problems = []
    for case in failure_cases.itertuples(index=False):
        index = case.index
        row = (
            None
            if index is None or (isinstance(index, float) and math.isnan(index))
            else int(index)
        )
        value = case.failure_case
        column, check = case.column, str(case.check)
        if column is None:  # a frame-level check names the column as its failure case
            column, value, rule = str(value), None, _FRAME_CHECKS.get(check, check)
        else:
            if isinstance(value, float | np.floating) and math.isnan(value):
                value = None
            elif isinstance(value, np.generic):
                value = value.item()
            rule = _message(spec, str(column), check, value)
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


def _message(spec: DatasetSpec, name: str, check: str, value: object) -> str:
    column = spec.columns.get(name)
    if column is None:  # the label or the derived target
        if value is None:
            return "missing; the label is required" if name != TARGET else "missing"
        return check
    if check == NOT_NULLABLE or value is None:
        return rules.problem_message(column, rules.REQUIRED)
    return rules.problem_message(column, rules.NOT_ALLOWED, value)
