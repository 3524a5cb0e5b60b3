"""Parsing a raw file as the dataset spec describes it, and validating it with the pandera schema
derived from the spec (UCI coding, clinical ranges, required columns)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from heartml.data.parse import Parsed, StructuralError, parse_records
from heartml.data.schema import ValidationResult
from heartml.data.schema import validate as validate_parsed
from heartml.spec import DatasetSpec, load_spec
from oracles import HEART_SPEC_FILE

pytestmark = pytest.mark.task1

SPEC: DatasetSpec = load_spec(HEART_SPEC_FILE)
RAW_FEATURES = SPEC.raw_names


def parse_uci(text: str | bytes) -> pd.DataFrame:
    parsed = parse_records(text, SPEC)
    assert parsed.problems == [], parsed.problems
    return parsed.frame


def validate(frame: pd.DataFrame) -> ValidationResult:
    return validate_parsed(Parsed(frame), SPEC)


def rejected_reasons(text: str) -> list[str]:
    return validate_parsed(parse_records(text, SPEC), SPEC).rejected["reasons"].tolist()


# The first Cleveland row, written three ways.
ROW_DECIMAL = "63.0,1.0,1.0,145.0,233.0,1.0,2.0,150.0,0.0,2.3,3.0,0.0,6.0,0"
ROW_INTEGER = "63,1,1,145,233,1,2,150,0,2.3,3,0,6,0"
ROW_NO_LEADING_ZERO = "63,1,1,145,233,1,2,150,0,.7,3,0,6,2"


def test_cleveland_shape_and_target(cleveland: pd.DataFrame) -> None:
    assert cleveland.shape == (303, 15)
    assert list(cleveland.columns) == [*RAW_FEATURES, "num", "target"]
    valid = validate(cleveland).valid
    assert valid["num"].dtype == np.int64
    assert valid["target"].dtype == np.int64
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


@pytest.mark.parametrize("text", ["abc", "1_000", "inf", "NaNx", "233,0"])
def test_text_in_a_numeric_field_quarantines_the_row(text: str) -> None:
    """Not a structural error any more: batch scoring and the API reject such a value for that
    row only, and Task 1 does the same, with the same words."""
    fields = ROW_DECIMAL.split(",")
    fields[4] = f'"{text}"'  # chol
    parsed = parse_records(ROW_DECIMAL + "\n" + ",".join(fields) + "\n", SPEC)
    result = validate_parsed(parsed, SPEC)
    assert result.rejected["line"].tolist() == [2]
    assert result.rejected["reasons"].tolist() == [
        f"chol: {text!r} is not a number; expected a number from 80 to 700 mg/dl"
    ]
    assert len(result.valid) == 1


@pytest.mark.parametrize("text", ["", "\n\n", b""])
def test_empty_file_is_a_structural_error(text: str | bytes) -> None:
    with pytest.raises(StructuralError, match="no data rows"):
        parse_uci(text)


@pytest.mark.parametrize("marker", ["?", "", "NA", "nan", "NULL"])
def test_the_specs_missing_markers_are_missing(marker: str) -> None:
    fields = ROW_DECIMAL.split(",")
    fields[11] = marker  # ca
    frame = parse_uci(",".join(fields))
    assert math.isnan(frame.loc[0, "ca"])


def test_missing_diagnosis_quarantines_the_row() -> None:
    text = ROW_DECIMAL + "\n" + ROW_DECIMAL[: ROW_DECIMAL.rindex(",")] + ",?\n"
    assert rejected_reasons(text) == ["num: missing; the label is required"]


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
    pd.testing.assert_frame_equal(
        result.valid, cleveland.astype({"num": "int64", "target": "int64"})
    )


# One value per rule that the schema must reject; every raw column (and the label) is covered.
BAD_VALUES = [
    ("age", 5),
    ("age", 120),
    ("age", math.nan),
    ("sex", 2),
    ("sex", math.nan),
    ("cp", math.nan),
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
    assert {column for column, _ in BAD_VALUES} >= set(RAW_FEATURES)


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
    rule = str(problem["rule"])
    if math.isnan(value):
        assert problem["value"] is None
        assert rule.startswith("missing; required: "), rule
    else:
        assert problem["value"] == value
        shown = f"{value:g}"
        assert rule.startswith((f"{shown} is not allowed; expected ", "label: one of")), rule

    assert result.rejected["line"].tolist() == [row + 1]
    reasons = result.rejected["reasons"].iloc[0]
    assert reasons == f"{column}: {rule}"
    assert len(result.valid) == len(cleveland) - 1
    assert row not in result.valid.index


@pytest.mark.parametrize(
    ("column", "value"),
    [("age", 18), ("age", 100), ("chol", 80), ("chol", 700), ("oldpeak", -3), ("ca", 3)],
)
def test_range_ends_are_allowed(cleveland: pd.DataFrame, column: str, value: float) -> None:
    cleveland.loc[0, column] = value
    assert validate(cleveland).problems == []


def test_every_column_but_age_sex_and_cp_may_be_unknown(cleveland: pd.DataFrame) -> None:
    """Records from other hospitals lack whole blocks (the exercise test, fbs, ca/thal)."""
    optional = [c for c in RAW_FEATURES if c not in ("age", "sex", "cp")]
    cleveland.loc[5, optional] = math.nan
    assert validate(cleveland).problems == []


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [  # written by hand from the spec's table: the words every door uses
        ("chol", 900.0, "900 is not allowed; expected a number from 80 to 700 mg/dl"),
        ("oldpeak", 12.5, "12.5 is not allowed; expected a number from -3 to 10 mm"),
        (
            "thal",
            5.0,
            "5 is not allowed; expected one of 3 (normal), 6 (fixed defect), 7 (reversible defect)",
        ),
        ("age", math.nan, "missing; required: a number from 18 to 100 years"),
    ],
)
def test_messages_name_the_value_and_what_is_allowed(
    cleveland: pd.DataFrame, column: str, value: float, message: str
) -> None:
    cleveland.loc[9, column] = value
    (problem,) = validate(cleveland).problems
    assert problem["rule"] == message


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
    assert "cp: 7 is not allowed" in result.rejected["reasons"].iloc[0]
    assert "thal: 2 is not allowed" in result.rejected["reasons"].iloc[0]
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
