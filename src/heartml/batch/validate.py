"""Checking every field of a chunk against the package's dataset spec, one numpy mask per column.

The rules are heartml.spec.rules, the same for Task 1's files and the API: a column that is not
`required` may be unknown (a marker, an empty field, a null, or one of its `missing_values`) and
is then imputed by the model; a known value must be one of the column's codes or within its
range. A row with any problem is rejected, with one reason per problem, worded by
`rules.problem_message`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa

from heartml.batch.contract import Contract
from heartml.batch.parse import Values, column_values
from heartml.spec import rules

Chunk: TypeAlias = pd.DataFrame | pa.Table | pa.RecordBatch  # CSV: pandas; parquet: Arrow


def names(chunk: Chunk) -> list[str]:
    return list(chunk.columns) if isinstance(chunk, pd.DataFrame) else list(chunk.schema.names)


def column(chunk: Chunk, name: str) -> Values:
    return chunk[name] if isinstance(chunk, pd.DataFrame) else chunk.column(name)


@dataclass
class ChunkValidation:
    given: list[np.ndarray]  # per spec column, float64 as written (0 chol stays 0; unknown: NaN)
    matrix: np.ndarray  # [n, k] C-ordered, what the model sees: missing_values -> NaN
    valid: np.ndarray  # [n] bool
    reasons: np.ndarray  # [n_invalid] str, aligned with np.flatnonzero(~valid)
    unknown: np.ndarray  # [len(contract.optional), n] bool: the field is imputed (valid rows)
    imputed: np.ndarray  # [n] bool: any field of the (valid) row is imputed
    texts: dict[str, dict[int, str]]  # column -> {position: text} where it is not a number


def validate_frame(
    frame: Chunk, contract: Contract, order: np.ndarray | None = None
) -> ChunkValidation:
    """Check every spec column of every row. `order` gives the matrix's column order (the
    model's), as positions in the spec's order; default: the spec's order."""
    n = len(frame)
    k = len(contract.columns)
    order = np.arange(k) if order is None else order
    slot = np.empty(k, dtype=np.intp)
    slot[order] = np.arange(k)
    given: list[np.ndarray] = []
    matrix = np.empty((n, k), dtype=np.float64)
    invalid = np.zeros(n, dtype=bool)
    # One contiguous row per optional column: cheap to fill, and to OR across.
    unknown = np.zeros((len(contract.optional), n), dtype=bool)
    imputed = np.zeros(n, dtype=bool)
    problems: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
    texts: dict[str, dict[int, str]] = {}
    for j, spec_column in enumerate(contract.columns):
        parsed = column_values(column(frame, spec_column.name), contract.markers)
        given.append(parsed.values)
        measured = rules.measured_array(spec_column, parsed.values)
        matrix[:, slot[j]] = measured
        not_allowed, required = rules.judge_array(spec_column, measured)
        required &= ~parsed.not_number  # a text that is not a number is named as such instead
        bad = not_allowed | required | parsed.not_number
        if bad.any():
            invalid |= bad
            problems.append((j, parsed.not_number, required, not_allowed))
            if parsed.texts:
                texts[spec_column.name] = parsed.texts
        if not spec_column.required:
            row = unknown[contract.optional.index(j)]
            np.isnan(measured, out=row)
            if parsed.texts:
                row &= ~parsed.not_number
            imputed |= row

    rows = np.flatnonzero(invalid)
    reasons = np.full(len(rows), "", dtype=object)
    for j, not_number, required, not_allowed in problems:
        spec_column = contract.columns[j]
        name = spec_column.name
        # Only the rows this column broke: few, or (a broken file) as many as it has.
        for position in np.flatnonzero(not_number[rows]):
            text = texts[name][int(rows[position])]
            message = rules.problem_message(spec_column, rules.NOT_A_NUMBER, text)
            _add(reasons, position, rules.reason(name, message))
        for position in np.flatnonzero(required[rows]):
            message = rules.problem_message(spec_column, rules.REQUIRED)
            _add(reasons, position, rules.reason(name, message))
        for position in np.flatnonzero(not_allowed[rows]):
            value = float(given[j][rows[position]])
            message = rules.problem_message(spec_column, rules.NOT_ALLOWED, value)
            _add(reasons, position, rules.reason(name, message))
    unknown[:, rows] = False  # a rejected row is not scored, so nothing of it is imputed
    imputed[rows] = False
    return ChunkValidation(given, matrix, ~invalid, reasons, unknown, imputed, texts)


def _add(reasons: np.ndarray, position: int | np.integer[Any], reason: str) -> None:
    reasons[position] = f"{reasons[position]}; {reason}" if reasons[position] else reason
