"""The feature grammar: what parses, what is refused (with the offending token), how it evaluates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from heartml.spec.expressions import BinOp, Bins, Col, Const, ExpressionError, Neg, evaluate, parse

pytestmark = pytest.mark.task2

COLUMNS = {"age", "chol", "trestbps", "sex"}


def test_the_seeds_formulas_parse_into_the_expected_trees() -> None:
    assert parse("chol / age", COLUMNS) == BinOp("/", Col("chol"), Col("age"))
    assert parse("-(age - 2)", COLUMNS) == Neg(BinOp("-", Col("age"), Const(2.0)))
    assert parse("bins(age, [40, 50.5, 60])", COLUMNS) == Bins(Col("age"), (40.0, 50.5, 60.0))
    # Left to right, * before +, exactly as Python (and so the seed's numpy code) groups them.
    assert parse("age * 0.1 + chol * 0.01", COLUMNS) == BinOp(
        "+", BinOp("*", Col("age"), Const(0.1)), BinOp("*", Col("chol"), Const(0.01))
    )
    assert parse("+age", COLUMNS) == Col("age")
    assert parse("bins(age, [-1e3, -5])", COLUMNS) == Bins(Col("age"), (-1000.0, -5.0))


@pytest.mark.parametrize(
    ("text", "token", "words"),
    [
        ("age + foo", "foo", "unknown column 'foo'"),
        ("log(age)", "log", "unknown function 'log'"),
        ("age.real", "age.real", "not allowed"),
        ("__import__('os').system('id')", "__import__('os').system", "only bins"),
        ("__import__('os')", "__import__", "unknown function"),
        ("age ** 2", "**", "operator not allowed"),
        ("age // 2", "//", "operator not allowed"),
        ("age % 2", "%", "operator not allowed"),
        ("age[0]", "age[0]", "not allowed"),
        ("age > 40", "age > 40", "not allowed"),
        ("'age'", "'age'", "expected a number"),
        ("True * age", "True", "expected a number"),
        ("age if sex else chol", "age if sex else chol", "not allowed"),
        ("lambda: age", "lambda: age", "not allowed"),
        ("bins(age, 40)", "40", "bins needs a list"),
        ("bins(age, [50, 40])", "[50, 40]", "bin edges must increase"),
        ("bins(age, [40], right=True)", "right=True", "no keyword"),
        ("bins(age)", "bins(age)", "two arguments"),
        ("bins(age, [age])", "age", "expected a number"),
        ("bins + age", "bins", "is a function"),
        ("age * 1e999", "1e999", "not finite"),
        ("age +", "+", "malformed"),
        ("(age", "(age", "malformed"),
        ("", "", "empty"),
        ("2 * 3", "2 * 3", "uses no column"),
        ("age; chol", "; chol", "malformed"),
    ],
)
def test_anything_outside_the_grammar_names_the_offending_token(
    text: str, token: str, words: str
) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(text, COLUMNS)
    assert words in str(info.value)
    assert info.value.token == token


def test_evaluation_is_float64_elementwise_and_missing_stays_missing() -> None:
    age = np.array([40.0, 41.0, 60.0, 61.0, math.nan])
    chol = np.array([200.0, 0.0, 250.0, 300.0, 180.0])
    columns = {"age": age, "chol": chol}
    np.testing.assert_array_equal(
        evaluate(parse("bins(age, [40, 50, 60])", COLUMNS), columns), [0, 1, 2, 3, math.nan]
    )
    with np.errstate(divide="ignore"):
        expected = chol / age
    np.testing.assert_array_equal(evaluate(parse("chol / age", COLUMNS), columns), expected)
    # 220 - age, then thalach minus that: the seed's grouping, not thalach - 220 + age.
    got = evaluate(parse("chol - (220 - age)", COLUMNS), columns)
    np.testing.assert_array_equal(got, chol - (220.0 - age))
