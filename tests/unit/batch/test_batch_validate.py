"""Row rules of batch scoring: the package's dataset spec decides, in the words every door uses.

The expected reasons are written out by hand here: they are the texts Task 1 and the API give
(heartml.spec.rules), so a change of wording anywhere shows up as a failure.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import yaml

from heartml.batch import contract, validate_frame
from heartml.spec import DatasetSpec, spec_from_text

pytestmark = pytest.mark.scale

CP = "one of 1 (typical angina), 2 (atypical angina), 3 (non-anginal pain), 4 (asymptomatic)"
SEX = "one of 0 (female), 1 (male)"
AGE = "a number from 18 to 100 years"

# (changes to the spec's example patient, expected): "ok", "imputed:<fields>" or the reasons.
CASES: list[tuple[dict[str, Any], str]] = [
    ({}, "ok"),
    ({"ca": None}, "imputed:ca"),
    ({"thal": "?"}, "imputed:thal"),
    ({"chol": 0}, "imputed:chol"),
    ({"trestbps": 0, "ca": None}, "imputed:trestbps,ca"),
    # No exercise test: the whole block unknown. Then no fasting blood sugar.
    (
        {"slope": None, "oldpeak": None, "thalach": None, "exang": None},
        "imputed:thalach,exang,oldpeak,slope",
    ),
    ({"fbs": "NA"}, "imputed:fbs"),
    ({"restecg": "nan", "oldpeak": " ? "}, "imputed:restecg,oldpeak"),
    ({"chol": " 233 ", "oldpeak": ".7"}, "ok"),
    ({"age": None}, f"age: missing; required: {AGE}"),
    ({"sex": "NAN"}, f"sex: 'NAN' is not a number; expected {SEX}"),
    ({"age": "sixty"}, f"age: 'sixty' is not a number; expected {AGE}"),
    (
        {"thalach": "1_000"},
        "thalach: '1_000' is not a number; expected a number from 50 to 230 beats/min",
    ),
    ({"oldpeak": "inf"}, "oldpeak: 'inf' is not a number; expected a number from -3 to 10 mm"),
    ({"cp": 5}, f"cp: 5 is not allowed; expected {CP}"),
    ({"cp": 1.5}, f"cp: 1.5 is not allowed; expected {CP}"),
    ({"sex": 2}, f"sex: 2 is not allowed; expected {SEX}"),
    (
        {"thal": 4},
        "thal: 4 is not allowed; expected one of 3 (normal), 6 (fixed defect), "
        "7 (reversible defect)",
    ),
    ({"ca": 4}, "ca: 4 is not allowed; expected one of 0 (none), 1 (one), 2 (two), 3 (three)"),
    ({"age": 150}, f"age: 150 is not allowed; expected {AGE}"),
    ({"chol": 5}, "chol: 5 is not allowed; expected a number from 80 to 700 mg/dl"),
    ({"trestbps": -120}, "trestbps: -120 is not allowed; expected a number from 70 to 250 mm Hg"),
]


def text_table(spec: DatasetSpec, rows: list[dict[str, Any]]) -> pa.Table:
    """Rows as a CSV reader gives them: every field text, an empty field for None."""
    return pa.table(
        {
            name: pa.array(["" if r[name] is None else str(r[name]) for r in rows], pa.string())
            for name in spec.raw_names
        }
    )


def records(spec: DatasetSpec) -> list[dict[str, Any]]:
    return [{**spec.example_record(), **changes} for changes, _ in CASES]


def imputed_fields(check: Any, spec: DatasetSpec, i: int) -> str:
    names = [n for n in spec.raw_names if not spec.columns[n].required]
    assert check.imputed[i] == check.unknown[:, i].any()
    return ",".join(n for n, hit in zip(names, check.unknown[:, i], strict=True) if hit)


def test_each_row_gets_the_verdict_and_the_words_of_the_rules(spec: DatasetSpec) -> None:
    check = validate_frame(text_table(spec, records(spec)), contract(spec))
    reasons = iter(check.reasons)
    for i, (changes, expected) in enumerate(CASES):
        if expected == "ok" or expected.startswith("imputed:"):
            assert check.valid[i], (changes, expected)
            assert imputed_fields(check, spec, i) == expected.removeprefix("imputed:").replace(
                "ok", ""
            ), changes
        else:
            assert not check.valid[i], changes
            assert next(reasons) == expected, changes


def test_what_the_model_sees(spec: DatasetSpec) -> None:
    """Unknown fields and a column's missing_values are NaN; the rest as written."""
    rows = [spec.example_record(), {**spec.example_record(), "chol": 0, "fbs": "NA", "ca": None}]
    check = validate_frame(text_table(spec, rows), contract(spec))
    expected = np.array([[float(spec.example_record()[n]) for n in spec.raw_names]] * 2)
    for name in ("chol", "fbs", "ca"):
        expected[1, spec.raw_names.index(name)] = np.nan
    np.testing.assert_array_equal(check.matrix, expected)
    assert check.given[spec.raw_names.index("chol")][1] == 0  # written as 0, shown as 0


def test_every_column_but_the_required_ones_may_be_unknown(spec: DatasetSpec) -> None:
    assert [n for n in spec.raw_names if spec.columns[n].required] == ["age", "sex", "cp"]
    for name in spec.raw_names:
        check = validate_frame(
            text_table(spec, [{**spec.example_record(), name: None}]), contract(spec)
        )
        required = spec.columns[name].required
        assert bool(check.valid[0]) is not required, name
        if required:
            assert check.reasons[0] == f"{name}: missing; required: {spec.columns[name].allowed}"
        else:
            assert imputed_fields(check, spec, 0) == name


def test_the_packages_spec_decides_not_a_fixed_list(spec: DatasetSpec) -> None:
    """Another spec (fbs required, 'NA' not a marker, chol 0 a value like any other): the same
    rows get that spec's verdicts."""
    data = yaml.safe_load(spec.to_yaml())
    data["columns"]["fbs"]["required"] = True
    data["missing_blocks"]["lab_values"] = ["chol"]
    data["missing_markers"] = ["", "?"]
    data["columns"]["chol"]["missing_values"] = []
    other = spec_from_text(yaml.safe_dump(data))
    rows = [
        {**spec.example_record(), "fbs": None},
        {**spec.example_record(), "slope": "NA"},
        {**spec.example_record(), "chol": 0},
    ]
    check = validate_frame(text_table(spec, rows), contract(other))
    assert not check.valid.any()
    assert list(check.reasons) == [
        "fbs: missing; required: one of 0 (false), 1 (true)",
        "slope: 'NA' is not a number; expected one of 1 (upsloping), 2 (flat), 3 (downsloping)",
        "chol: 0 is not allowed; expected a number from 80 to 700 mg/dl",
    ]
    # ... while the shipped spec imputes all three.
    check = validate_frame(text_table(spec, rows), contract(spec))
    assert check.valid.all()


def test_every_broken_field_of_a_row_is_named_in_column_order(spec: DatasetSpec) -> None:
    row = {**spec.example_record(), "thal": "x", "age": 7, "cp": 9}
    check = validate_frame(text_table(spec, [row]), contract(spec))
    assert not check.valid[0]
    assert check.reasons[0] == "; ".join(
        [
            f"age: 7 is not allowed; expected {AGE}",
            f"cp: 9 is not allowed; expected {CP}",
            "thal: 'x' is not a number; expected one of 3 (normal), 6 (fixed defect), "
            "7 (reversible defect)",
        ]
    )
    assert not check.unknown[:, 0].any() and not check.imputed[0]  # nothing imputed


def test_numbers_typed_by_the_reader_follow_the_same_rules(spec: DatasetSpec) -> None:
    """Parquet gives numbers, not text: null is unknown, 0 chol is missing, codes are checked."""
    rows = [
        {**spec.example_record(), "chol": 0.0, "slope": None},
        {**spec.example_record(), "cp": 5.0},
    ]
    table = pa.table({n: pa.array([r[n] for r in rows], pa.float64()) for n in spec.raw_names})
    check = validate_frame(table, contract(spec))
    assert check.valid.tolist() == [True, False]
    assert imputed_fields(check, spec, 0) == "chol,slope"
    assert list(check.reasons) == [f"cp: 5 is not allowed; expected {CP}"]
