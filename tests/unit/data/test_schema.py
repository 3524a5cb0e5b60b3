"""Parsing the UCI format and validating it against the UCI coding and clinical ranges."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from heartml.coding import RAW_COLUMNS, RAW_FEATURES
from heartml.data.schema import StructuralError, parse_uci, validate

pytestmark = pytest.mark.task1

# The first Cleveland row, written three ways.
ROW_DECIMAL = "63.0,1.0,1.0,145.0,233.0,1.0,2.0,150.0,0.0,2.3,3.0,0.0,6.0,0"
ROW_INTEGER = "63,1,1,145,233,1,2,150,0,2.3,3,0,6,0"
ROW_NO_LEADING_ZERO = "63,1,1,145,233,1,2,150,0,.7,3,0,6,2"


def test_cleveland_shape_and_target(cleveland: pd.DataFrame) -> None:
    assert cleveland.shape == (303, 15)
    assert list(cleveland.columns) == [*RAW_FEATURES, "num", "target"]
    assert cleveland["num"].dtype == np.int64
    assert cleveland["target"].dtype == np.int64
    assert cleveland["num"].value_counts().sort_index().tolist() == [164, 55, 36, 35, 13]
    assert (cleveland["target"] == (cleveland["num"] > 0)).all()
    assert cleveland["target"].sum() == 139


def test_question_marks_become_nan_on_the_right_rows(
    raw_bytes: bytes, cleveland: pd.DataFrame
) -> None:
    lines = raw_bytes.decode().splitlines()
    ca_lines = [i for i, line in enumerate(lines) if line.split(",")[11] == "?"]
    thal_lines = [i for i, line in enumerate(lines) if line.split(",")[12] == "?"]
    assert len(ca_lines) == 4
    assert len(thal_lines) == 2
    assert cleveland.index[cleveland["ca"].isna()].tolist() == ca_lines
    assert cleveland.index[cleveland["thal"].isna()].tolist() == thal_lines
    others = cleveland.drop(columns=["ca", "thal"])
    assert not others.isna().any().any()


def test_number_forms_are_all_accepted() -> None:
    frame = parse_uci("\n".join([ROW_DECIMAL, ROW_INTEGER, ROW_NO_LEADING_ZERO]) + "\n")
    assert frame["age"].tolist() == [63.0, 63.0, 63.0]
    assert frame["oldpeak"].tolist() == [2.3, 2.3, 0.7]
    assert frame["num"].tolist() == [0, 0, 2]
    assert frame["target"].tolist() == [0, 0, 1]
    assert all(frame[c].dtype == np.float64 for c in RAW_FEATURES)


def test_bytes_and_text_and_crlf_parse_alike() -> None:
    text = ROW_DECIMAL + "\r\n" + ROW_NO_LEADING_ZERO + "\r\n"
    pd.testing.assert_frame_equal(parse_uci(text), parse_uci(text.encode()))
    assert len(parse_uci(text)) == 2


def test_zero_cholesterol_and_blood_pressure_are_missing() -> None:
    row = ROW_INTEGER.split(",")
    row[3], row[4] = "0", "0.0"  # trestbps, chol
    frame = parse_uci(",".join(row))
    assert math.isnan(frame.loc[0, "trestbps"])
    assert math.isnan(frame.loc[0, "chol"])
    # Zero stays a value where it is one.
    assert frame.loc[0, "ca"] == 0.0
    assert frame.loc[0, "exang"] == 0.0


def test_wrong_field_count_names_the_line() -> None:
    text = "\n".join([ROW_DECIMAL, ROW_DECIMAL, "63,1,1,145,233"])
    with pytest.raises(StructuralError, match=r"line 3: 5 fields, expected 14"):
        parse_uci(text)


def test_text_in_a_numeric_field_names_line_column_and_value() -> None:
    bad = ROW_DECIMAL.replace("233.0", "abc")
    with pytest.raises(StructuralError) as info:
        parse_uci(ROW_DECIMAL + "\n" + bad + "\n")
    message = str(info.value)
    assert "line 2" in message
    assert "'chol'" in message
    assert "'abc'" in message


@pytest.mark.parametrize("text", ["", "\n\n", b""])
def test_empty_file_is_a_structural_error(text: str | bytes) -> None:
    with pytest.raises(StructuralError, match="no data rows"):
        parse_uci(text)


def test_infinite_value_is_a_structural_error() -> None:
    with pytest.raises(StructuralError, match="not finite"):
        parse_uci(ROW_DECIMAL.replace("150.0", "inf"))


def test_missing_diagnosis_is_a_structural_error() -> None:
    text = ROW_DECIMAL + "\n" + ROW_DECIMAL[: ROW_DECIMAL.rindex(",")] + ",?\n"
    with pytest.raises(StructuralError, match=r"row 2: the diagnosis 'num' is missing"):
        parse_uci(text)


def test_line_numbers_survive_blank_lines() -> None:
    """A blank line in the middle must not shift the line numbers that problems name."""
    bad = ROW_DECIMAL.replace("1.0,1.0,145.0", "1.0,9.0,145.0", 1)  # cp = 9
    frame = parse_uci("\n".join([ROW_DECIMAL, "", bad]) + "\n")
    (problem,) = validate(frame).problems
    assert problem["line"] == 3
    assert problem["column"] == "cp"


def test_valid_cleveland_has_no_problems(cleveland: pd.DataFrame) -> None:
    result = validate(cleveland)
    assert result.problems == []
    assert result.rejected.empty
    assert len(result.valid) == 303
    pd.testing.assert_frame_equal(result.valid, cleveland)


# One value per rule that the schema must reject; every raw column (and the label) is covered.
BAD_VALUES = [
    ("age", 5),
    ("age", 120),
    ("age", math.nan),
    ("sex", 2),
    ("sex", math.nan),
    ("cp", 0),
    ("cp", 5),
    ("trestbps", 300),
    ("trestbps", 50),
    ("chol", 900),
    ("chol", 20),
    ("fbs", 2),
    ("restecg", 3),
    ("restecg", -1),
    ("thalach", 20),
    ("thalach", 260),
    ("exang", 2),
    ("oldpeak", 15),
    ("oldpeak", -5),
    ("slope", 0),
    ("slope", 4),
    ("ca", 4),
    ("ca", 1.5),
    ("thal", 4),
    ("thal", 5),
    ("num", 5),
]


def test_bad_values_cover_every_raw_column() -> None:
    assert {column for column, _ in BAD_VALUES} >= {column.name for column in RAW_COLUMNS}


@pytest.mark.parametrize(("column", "value"), BAD_VALUES, ids=[f"{c}={v}" for c, v in BAD_VALUES])
def test_every_rule_quarantines_exactly_the_bad_row(
    cleveland: pd.DataFrame, column: str, value: float
) -> None:
    row = 17
    cleveland.loc[row, column] = value
    result = validate(cleveland)

    assert len(result.problems) == 1, result.problems
    (problem,) = result.problems
    assert problem["row"] == row
    assert problem["line"] == row + 1
    assert problem["column"] == column
    if math.isnan(value):
        assert problem["value"] is None
        assert "null" in str(problem["rule"])
    else:
        assert problem["value"] == value
        rule = str(problem["rule"])
        assert rule.startswith(("UCI coding", "plausible range", "UCI diagnosis")), rule

    assert result.rejected["line"].tolist() == [row + 1]
    reasons = result.rejected["reasons"].iloc[0]
    assert reasons.startswith(f"{column}=")
    assert str(problem["rule"]) in reasons
    assert len(result.valid) == len(cleveland) - 1
    assert row not in result.valid.index


@pytest.mark.parametrize(
    ("column", "value"),
    [("age", 18), ("age", 100), ("chol", 80), ("chol", 700), ("oldpeak", -3), ("ca", 3)],
)
def test_range_ends_are_allowed(cleveland: pd.DataFrame, column: str, value: float) -> None:
    cleveland.loc[0, column] = value
    assert validate(cleveland).problems == []


def test_nullable_columns_accept_missing(cleveland: pd.DataFrame) -> None:
    for column in ("trestbps", "chol", "fbs", "restecg", "thalach", "exang", "oldpeak", "slope"):
        cleveland.loc[5, column] = math.nan
    assert validate(cleveland).problems == []


def test_several_problems_in_one_row_and_several_rows(cleveland: pd.DataFrame) -> None:
    cleveland.loc[3, ["cp", "thal"]] = [7, 2]
    cleveland.loc[200, "chol"] = 1000
    result = validate(cleveland)
    assert sorted((p["row"], p["column"]) for p in result.problems) == [
        (3, "cp"),
        (3, "thal"),
        (200, "chol"),
    ]
    assert result.rejected["line"].tolist() == [4, 201]
    assert "cp=7" in result.rejected["reasons"].iloc[0]
    assert "thal=2" in result.rejected["reasons"].iloc[0]
    assert len(result.valid) == 301


def test_missing_column_is_structural(cleveland: pd.DataFrame) -> None:
    with pytest.raises(StructuralError, match="thal"):
        validate(cleveland.drop(columns=["thal"]))


def test_extra_column_is_structural(cleveland: pd.DataFrame) -> None:
    cleveland["surprise"] = 1.0
    with pytest.raises(StructuralError, match="surprise"):
        validate(cleveland)


def test_problems_are_plain_python_values(cleveland: pd.DataFrame) -> None:
    cleveland.loc[1, "age"] = 150
    (problem,) = validate(cleveland).problems
    assert type(problem["row"]) is int
    assert type(problem["line"]) is int
    assert type(problem["value"]) is float
