"""Text fields: the vectorised parser gives exactly what `rules.parse_text` gives, field by field
(the shared policy is the oracle), whichever path a field takes inside."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from heartml.batch.parse import column_values
from heartml.spec import rules

pytestmark = pytest.mark.scale

MARKERS = ("", "?", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None")
TRICKY = [
    "63", "63.0", ".7", "5.", " 2.3 ", "\t2.3", "2.3\t", "1e2", "1E-3", "+3", "-0", "00012",
    "1e-320", "0.1", "1e400", "-1e400", "1_000", "inf", "-inf", "+inf", "Infinity", "nan", "NaN",
    "NAN", "-nan", "NA", "?", " ? ", "", "  ", "\u00a0?", "sixty", "63,5", "0x10", "1.2.3", "--1",
    "e5", ".", "+", "\u0661\u0662", "1\u00a0", "#N/A", "<NA>", "None", "none",
]  # fmt: skip


def oracle(fields: list[str | None], markers: tuple[str, ...]) -> tuple[list[float], list[bool]]:
    values, bad = [], []
    for field in fields:
        try:
            values.append(math.nan if field is None else rules.parse_text(field, markers))
            bad.append(False)
        except rules.NotANumber:
            values.append(math.nan)
            bad.append(True)
    return values, bad


def check(fields: list[str | None], markers: tuple[str, ...] = MARKERS) -> None:
    parsed = column_values(pa.array(fields, pa.string()), markers)
    values, bad = oracle(fields, markers)
    # Bit for bit: the fast path and Python's float round the same way.
    np.testing.assert_array_equal(parsed.values, np.array(values), strict=True)
    assert parsed.not_number.tolist() == bad
    for position, field in enumerate(fields):
        if bad[position]:
            assert field is not None
            assert parsed.texts[position] == field.strip()


def test_tricky_fields_get_the_policys_verdict() -> None:
    check([*TRICKY, None])  # one odd field sends the column down the field-by-field path
    for field in TRICKY:  # alone, each field first meets the one-cast path
        check([field, None, "1"])


def test_random_decimals_parse_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    numbers = rng.normal(0, 1, 3000) * 10.0 ** rng.integers(-30, 30, 3000)
    fields = [
        *(repr(float(x)) for x in numbers),
        *(f"{x:.{d}f}" for x, d in zip(numbers[:1000], rng.integers(0, 12, 1000), strict=True)),
        *(f"{x:.{d}e}" for x, d in zip(numbers[:1000], rng.integers(0, 17, 1000), strict=True)),
    ]
    check(fields)


def test_a_number_like_marker_means_missing() -> None:
    """A spec may declare '-9' as 'not recorded': markers come before numbers, as in
    parse_text."""
    parsed = column_values(pa.array(["-9", " -9", "-9.0", "9"]), ("-9",))
    assert np.isnan(parsed.values[:2]).all()
    assert parsed.values[2:].tolist() == [-9.0, 9.0]
    check(["-9", " -9", "-9.0", "9"], ("-9",))
    check(["-9", "9"], ("-9",))  # plain numbers only: the one-cast path must see the marker


def test_pandas_text_columns_and_numeric_columns() -> None:
    """A pandas chunk (CSV) holds text or NaN; parquet and pandas numbers are taken as they are."""
    series = pd.Series(["63", None, "?", "x"], dtype="str")
    parsed = column_values(series, MARKERS)
    assert parsed.values[0] == 63 and np.isnan(parsed.values[1:]).all()
    assert parsed.not_number.tolist() == [False, False, False, True]
    objects = pd.Series(["63", np.nan, 7], dtype=object)  # Dask partitions may mix types
    np.testing.assert_array_equal(column_values(objects, MARKERS).values, [63.0, np.nan, 7.0])
    for numbers in (
        pa.array([1, None, 3], pa.int64()),
        pa.array([1.0, None, 3.0]),
        pd.Series([1.0, np.nan, 3.0]),
        pd.Series([1, None, 3], dtype="Int64"),
    ):
        parsed = column_values(numbers, MARKERS)
        np.testing.assert_array_equal(parsed.values, [1.0, np.nan, 3.0])
        assert not parsed.not_number.any()
