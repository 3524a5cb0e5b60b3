"""The one policy for reading and judging a value, shared by every door data comes in through:
Task 1's data files, batch scoring files and the API's JSON bodies.

- A text field is a number (`63`, `63.0`, `.7`, ` 2.3 `, `1e2`), a missing marker from the spec
  (`?`, an empty field, ...), or not a number (`abc`, `1_000`, `inf`, `63,5`): the row is rejected
  with a message naming the text.
- A column's `missing_values` (UCI writes 0 for an unmeasured cholesterol) mean "not measured".
- Unknown values are allowed unless the column is `required`; the model imputes them.
- A known value must be one of the column's codes, or within its range.

Every door words a problem with `problem_message`, so a row gets the same verdict and the same
message whichever way it arrives.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from heartml.spec.parts import Column

NOT_A_NUMBER = "not_a_number"
NOT_ALLOWED = "not_allowed"
REQUIRED = "required"


class NotANumber(ValueError):
    """A text field that is neither a number nor a missing marker."""


def parse_text(text: str, markers: Iterable[str]) -> float:
    """One text field -> float; NaN for a missing marker; NotANumber for anything else."""
    stripped = text.strip()
    if stripped in markers:
        return math.nan
    # float() also takes "1_000", "inf" and "nan": a data file should not.
    if "_" in stripped:
        raise NotANumber(stripped)
    try:
        value = float(stripped)
    except ValueError:
        raise NotANumber(stripped) from None
    if not math.isfinite(value):
        raise NotANumber(stripped)
    return value


def number_text(value: float) -> str:
    """63.0 -> '63', 2.3 -> '2.3': how messages show a number."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def problem_message(column: Column, problem: str, value: object = None) -> str:
    """The words for one problem with one value; the same in every door."""
    if problem == NOT_A_NUMBER:
        return f"{value!r} is not a number; expected {column.allowed}"
    if problem == REQUIRED:
        return f"missing; required: {column.allowed}"
    shown = number_text(value) if isinstance(value, int | float) else repr(value)
    return f"{shown} is not allowed; expected {column.allowed}"


def reason(name: str, message: str) -> str:
    """A problem as one item of a file's `reasons` field."""
    return f"{name}: {message}"


def measured(column: Column, value: float) -> float:
    """The value, or NaN where it is one of the column's 'not measured' values."""
    return math.nan if value in column.missing_values else value


def judge(column: Column, value: float) -> str | None:
    """The problem with a parsed, measured value (NaN = unknown), or None when it is fine."""
    if math.isnan(value):
        return REQUIRED if column.required else None
    return None if column.allows(value) else NOT_ALLOWED


def judge_json(column: Column, value: object) -> tuple[float, str | None]:
    """A JSON value (the API's door) -> (float, problem or None). null is unknown; JSON numbers
    only (a JSON true or "63" is not a number)."""
    if value is None:
        return math.nan, judge(column, math.nan)
    if type(value) not in (int, float):
        return math.nan, NOT_A_NUMBER
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError:  # a JSON integer beyond float range: 1e400 is not a measurement
        return math.nan, NOT_A_NUMBER
    if not math.isfinite(number):
        return math.nan, NOT_A_NUMBER
    number = measured(column, number)
    return number, judge(column, number)


# -- vectorised, for files ------------------------------------------------------------------


def measured_array(column: Column, values: np.ndarray) -> np.ndarray:
    if not column.missing_values:
        return values
    return np.where(np.isin(values, column.missing_values), np.nan, values)


def judge_array(column: Column, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks (not allowed, required but missing) for measured float64 values."""
    missing = np.isnan(values)
    if column.codes is not None:
        allowed = np.isin(values, np.fromiter(column.codes, dtype=np.float64))
    else:
        assert column.range is not None
        allowed = (values >= column.range[0]) & (values <= column.range[1])
    not_allowed = ~allowed & ~missing
    required = missing if column.required else np.zeros(len(values), dtype=bool)
    return not_allowed, required
