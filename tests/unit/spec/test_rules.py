"""The one value policy every door uses: parsing text, missing values, judging, the words."""

from __future__ import annotations

import math

import numpy as np
import pytest

from heartml.spec import load_spec, rules
from oracles import HEART_SPEC_FILE

pytestmark = pytest.mark.task1

SPEC = load_spec(HEART_SPEC_FILE)
MARKERS = SPEC.missing_markers


@pytest.mark.parametrize(
    ("text", "value"),
    [("63", 63.0), ("63.0", 63.0), (".7", 0.7), (" 2.3 ", 2.3), ("1e2", 100.0), ("-0.5", -0.5)],
)
def test_numbers_in_every_usual_form(text: str, value: float) -> None:
    assert rules.parse_text(text, MARKERS) == value


@pytest.mark.parametrize("text", ["", "?", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", " ? "])
def test_the_specs_markers_mean_missing(text: str) -> None:
    assert math.isnan(rules.parse_text(text, MARKERS))


@pytest.mark.parametrize("text", ["abc", "1_000", "inf", "-Infinity", "63,5", "0x10", "1e999"])
def test_anything_else_is_not_a_number(text: str) -> None:
    with pytest.raises(rules.NotANumber):
        rules.parse_text(text, MARKERS)


def test_judging_a_json_value_as_the_api_receives_it() -> None:
    chol, age = SPEC.columns["chol"], SPEC.columns["age"]
    assert rules.judge_json(chol, 233) == (233.0, None)
    value, problem = rules.judge_json(chol, 0)  # UCI's "not measured"
    assert math.isnan(value) and problem is None
    value, problem = rules.judge_json(chol, None)
    assert math.isnan(value) and problem is None
    assert rules.judge_json(age, None)[1] == rules.REQUIRED
    assert rules.judge_json(chol, 900)[1] == rules.NOT_ALLOWED
    for not_a_number in ("233", True, [233], {"v": 1}, math.inf, math.nan, 10**400):
        assert rules.judge_json(chol, not_a_number)[1] == rules.NOT_A_NUMBER, not_a_number


def test_the_vectorised_judge_agrees_with_the_scalar_one() -> None:
    values = np.array([0.0, 80.0, 700.0, 79.9, 701.0, math.nan, 233.0])
    for name in ("chol", "age", "thal", "ca"):
        column = SPEC.columns[name]
        measured = rules.measured_array(column, values)
        not_allowed, required = rules.judge_array(column, measured)
        for i, value in enumerate(values):
            expected = rules.judge(column, rules.measured(column, float(value)))
            assert bool(not_allowed[i]) == (expected == rules.NOT_ALLOWED), (name, value)
            assert bool(required[i]) == (expected == rules.REQUIRED), (name, value)


def test_the_words() -> None:
    chol, thal = SPEC.columns["chol"], SPEC.columns["thal"]
    assert rules.problem_message(chol, rules.NOT_ALLOWED, 900.0) == (
        "900 is not allowed; expected a number from 80 to 700 mg/dl"
    )
    assert rules.problem_message(chol, rules.NOT_A_NUMBER, "abc") == (
        "'abc' is not a number; expected a number from 80 to 700 mg/dl"
    )
    assert rules.problem_message(thal, rules.REQUIRED) == (
        "missing; required: one of 3 (normal), 6 (fixed defect), 7 (reversible defect)"
    )
    assert rules.reason("thal", "x") == "thal: x"
    assert rules.number_text(2.3) == "2.3"
    assert rules.number_text(63.0) == "63"
