"""Read a raw data file into typed columns, as the dataset spec describes it.

Two kinds of problem, kept apart on purpose:
- structural (wrong field count, a column missing from the header, no rows): the file is not
  what the spec says it is, so reading stops with a StructuralError naming the line or column;
- a field that is not a number (`abc`, `1_000`, `inf`): that row is quarantined with the same
  message batch scoring and the API give (heartml.spec.rules); the rest of the file goes on.

Missing markers (`?`, an empty field, ...) and a column's `missing_values` (UCI's 0 for an
unmeasured cholesterol) become NaN. The 0/1 `target` is derived from the label column by the
spec's rule (UCI: num > 0).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from heartml.errors import DataError
from heartml.spec import TARGET, DatasetSpec, rules


class StructuralError(DataError):
    """The file does not have the structure its dataset spec declares."""


@dataclass(frozen=True)
class Parsed:
    frame: pd.DataFrame  # raw columns + label column + target; index = file line - 1
    problems: list[dict[str, object]] = field(default_factory=list)  # fields that are not numbers


def positive(spec: DatasetSpec, labels: np.ndarray) -> np.ndarray:
    """The spec's target rule on the label column's values (NaN stays NaN)."""
    op, operands = spec.positive_rule
    with np.errstate(invalid="ignore"):
        if op == "in":
            hit = np.isin(labels, operands)
        else:
            value = operands[0]
            hit = {
                ">": labels > value,
                ">=": labels >= value,
                "<": labels < value,
                "<=": labels <= value,
                "==": labels == value,
                "!=": labels != value,
            }[op]
    return np.where(np.isnan(labels), np.nan, hit.astype(np.float64))


def _header_columns(spec: DatasetSpec, header: list[str], line: int) -> list[str]:
    """Map a header row to spec names (a column may appear under its source_name)."""
    by_source = {c.source_name or name: name for name, c in spec.columns.items()}
    by_source[spec.target.source_name or spec.target.column] = spec.target.column
    names = [by_source.get(text.strip(), text.strip()) for text in header]
    wanted = [*spec.raw_names, spec.target.column]
    absent = [name for name in wanted if name not in names]
    if absent:
        raise StructuralError(
            f"line {line}: the header has no column {', '.join(repr(a) for a in absent)}"
        )
    duplicated = sorted({n for n in names if names.count(n) > 1 and n in wanted})
    if duplicated:
        raise StructuralError(f"line {line}: column {duplicated[0]!r} appears twice")
    return names


def parse_records(content: bytes | str, spec: DatasetSpec) -> Parsed:
    """A raw file (headerless or with a header, per the spec's source) -> typed frame."""
    text = content.decode("utf-8-sig") if isinstance(content, bytes) else content
    wanted = (*spec.raw_names, spec.target.column)
    columns: list[str] | None = (
        list(spec.source.columns or ()) if spec.source.format == "headerless_csv" else None
    )
    rows: list[list[float]] = []
    lines: list[int] = []
    problems: list[dict[str, object]] = []
    markers = spec.missing_markers
    for line_number, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not fields or all(not f.strip() for f in fields):
            continue
        if columns is None:
            columns = _header_columns(spec, fields, line_number)
            continue
        if len(fields) != len(columns):
            raise StructuralError(
                f"line {line_number}: {len(fields)} fields, expected {len(columns)} "
                f"({', '.join(columns)})"
            )
        values = dict(zip(columns, fields, strict=True))
        row: list[float] = []
        for name in wanted:
            try:
                row.append(rules.parse_text(values[name], markers))
            except rules.NotANumber as exc:
                row.append(math.nan)
                column = spec.columns.get(name)
                message = (
                    rules.problem_message(column, rules.NOT_A_NUMBER, str(exc))
                    if column is not None
                    else f"{str(exc)!r} is not a number"
                )
                problems.append(_problem(line_number, name, str(exc), message))
        rows.append(row)
        lines.append(line_number)
    if not rows:
        raise StructuralError("the file has no data rows")
    # Index = file line - 1, so "line = row + 1" holds whatever lines were skipped.
    index = pd.RangeIndex(len(rows)) if lines[-1] == len(lines) else pd.Index(lines) - 1
    frame = pd.DataFrame(rows, columns=list(wanted), index=index, dtype="float64")
    for name, column in spec.columns.items():
        frame[name] = rules.measured_array(column, frame[name].to_numpy())
    frame[TARGET] = positive(spec, frame[spec.target.column].to_numpy())
    return Parsed(frame, problems)


def _problem(line: int, column: str, value: object, message: str) -> dict[str, object]:
    return {"row": line - 1, "line": line, "column": column, "value": value, "rule": message}
