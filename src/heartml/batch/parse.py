"""One input column of a chunk -> float64 values, by the spec's rules (heartml.spec.rules).

Numeric columns (parquet numbers, pandas numbers) are taken as they are. Text columns (every
CSV field, a parquet string column) follow `rules.parse_text` with the spec's missing markers.
The common case, a column of plain decimals, is parsed by Arrow in C++ in one cast (the same,
correctly rounded value as Python's float); a column with odd fields is parsed field by field:
plain ASCII decimals by Arrow again, and every other field (a marker with spaces around it,
"1_000", "inf", "sixty", digits of another script) by `rules.parse_text` itself, so the verdict
and the text named in a message are exactly the other doors'.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from heartml.spec import rules

Values: TypeAlias = pd.Series | pa.Array | pa.ChunkedArray
# A decimal that both Arrow and Python read the same way (no "_", no inf/nan words, ASCII only).
_DECIMAL = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_SPACES = " \t"  # trimmed before the fast path; Python's strip() removes these too


@dataclass
class Parsed:
    values: np.ndarray  # float64; NaN where missing (null, a marker) or not a number
    not_number: np.ndarray  # bool: the field is text that is not a number
    texts: dict[int, str]  # position -> the text named in the message, for not_number fields


def to_arrow(values: Values) -> pa.Array | pa.ChunkedArray:
    array = pa.array(values, from_pandas=True) if isinstance(values, pd.Series) else values
    if pa.types.is_large_string(array.type):  # readers disagree on the width; keep one
        array = array.cast(pa.string())
    return array


def _is_number_type(kind: pa.DataType) -> bool:
    return (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_decimal(kind)
    )


def _as_text(values: Values) -> pa.Array | pa.ChunkedArray:
    """Text fields as an Arrow string array (null where the reader saw a marker or nothing)."""
    if isinstance(values, pd.Series):
        try:
            return pa.array(values, type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # an object column holding other types
            objects = values.to_numpy(dtype=object, na_value=None)
            return pa.array(
                [None if v is None or v != v else str(v) for v in objects], type=pa.string()
            )
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if pa.types.is_null(values.type):
        return values.cast(pa.string())
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return values.cast(pa.string())  # dates, binaries...: judged by their text
    return values


def column_values(values: Values, markers: Iterable[str]) -> Parsed:
    """Parse one input column (see the module's docstring)."""
    n = len(values)
    if isinstance(values, pd.Series):
        dtype = values.dtype
        if pd.api.types.is_bool_dtype(dtype) or (
            pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_object_dtype(dtype)
        ):
            floats = values.to_numpy(dtype=np.float64, na_value=np.nan)
            return Parsed(floats, np.zeros(n, dtype=bool), {})
    elif _is_number_type(values.type):
        floats = values.cast(pa.float64()).to_numpy(zero_copy_only=False)
        return Parsed(np.asarray(floats, dtype=np.float64), np.zeros(n, dtype=bool), {})
    return parse_texts(_as_text(values), tuple(markers))


def _plain_numbers(text: pa.Array | pa.ChunkedArray, markers: tuple[str, ...]) -> Parsed | None:
    """The common case in one C++ cast: every field a plain number (a CSV reader has already
    turned the markers into nulls). None when any field needs a closer look: Arrow refuses it,
    or reads it as inf or NaN (words that parse_text refuses), or it is a number-like marker."""
    numeric_markers = [m for m in markers if _is_finite(m)]  # "nan" is caught below
    if numeric_markers and pc.any(pc.is_in(text, pa.array(numeric_markers))).as_py():
        return None
    try:
        numbers = pc.cast(text, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    values = np.asarray(numbers.to_numpy(zero_copy_only=False), dtype=np.float64)
    finite = np.isfinite(values)
    if np.count_nonzero(~finite) != text.null_count:
        return None
    return Parsed(values, np.zeros(len(values), dtype=bool), {})


def _is_finite(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def parse_texts(text: pa.Array | pa.ChunkedArray, markers: tuple[str, ...]) -> Parsed:
    plain = _plain_numbers(text, markers)
    if plain is not None:
        return plain
    n = len(text)
    trimmed = pc.utf8_trim(text, characters=_SPACES)
    # Markers first, as parse_text does: a spec may declare a number-like marker ("-9").
    marker = pc.fill_null(pc.is_in(trimmed, value_set=pa.array(markers, pa.string())), False)
    decimal = pc.and_(
        pc.fill_null(pc.match_substring_regex(trimmed, _DECIMAL), False), pc.invert(marker)
    )
    numbers = pc.cast(pc.if_else(decimal, trimmed, pa.scalar(None, pa.string())), pa.float64())
    values = np.asarray(numbers.to_numpy(zero_copy_only=False), dtype=np.float64)
    not_number = np.zeros(n, dtype=bool)
    texts: dict[int, str] = {}
    # Fields that are neither null, nor a marker, nor a decimal (rare), and decimals that are
    # not finite numbers (1e400): parse_text decides them.
    other = pc.and_(pc.invert(pc.or_(decimal, marker)), pc.is_valid(text))
    rest = np.flatnonzero(np.asarray(other.to_numpy(zero_copy_only=False), dtype=bool))
    for position in np.union1d(rest, np.flatnonzero(np.isinf(values))).tolist():
        field = str(text[position].as_py())
        try:
            values[position] = rules.parse_text(field, markers)
        except rules.NotANumber as exc:
            values[position], not_number[position] = np.nan, True
            texts[position] = str(exc)
    return Parsed(values, not_number, texts)
