"""The input contract: derived from the dataset spec, judged by heartml.spec.rules."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
import yaml
from pydantic import ValidationError

from heartml.serving.contract import Contract, build_contract
from heartml.serving.requests import field_schema
from heartml.spec import DatasetSpec, rules, spec_from_text
from serving_packages import HEART_SPEC_FILE as heart_spec_file
from serving_packages import heart_spec

pytestmark = pytest.mark.serving


@pytest.fixture(scope="module")
def contract(spec: DatasetSpec) -> Contract:
    return build_contract(spec)


def seed(spec: DatasetSpec) -> dict[str, Any]:
    return dict(spec.example_record())


def errors_of(contract: Contract, body: dict[str, Any] | bytes) -> list[dict[str, Any]]:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    with pytest.raises(ValidationError) as caught:
        contract.record.model_validate_json(raw)
    return [dict(error) for error in caught.value.errors()]


def test_fields_are_the_specs_raw_columns_in_model_order(
    contract: Contract, spec: DatasetSpec
) -> None:
    assert tuple(contract.record.model_fields) == spec.raw_names == contract.names
    record = contract.record.model_validate(seed(spec))
    assert contract.record_row(record) == [float(v) for v in seed(spec).values()]
    # The seed's own body, as the seed wrote it, is the spec's example.
    assert seed(spec) == {
        "age": 63, "sex": 1, "cp": 1, "trestbps": 145, "chol": 233, "fbs": 1, "restecg": 2,
        "thalach": 150, "exang": 0, "oldpeak": 2.3, "slope": 3, "ca": 0, "thal": 6,
    }  # fmt: skip


def test_every_column_the_spec_does_not_require_may_be_null(
    contract: Contract, spec: DatasetSpec
) -> None:
    optional = [c.name for c in spec.raw_columns if not c.required]
    # The issue's cases: the whole exercise test, fbs, and what UCI already leaves missing.
    assert {"slope", "oldpeak", "thalach", "exang", "fbs", "chol", "trestbps", "ca", "thal"} <= set(
        optional
    )
    record = contract.record.model_validate({**seed(spec), **dict.fromkeys(optional)})
    row = dict(zip(contract.names, contract.record_row(record), strict=True))
    assert [name for name, value in row.items() if math.isnan(value)] == optional
    assert contract.imputed(list(row.values())) == optional


@pytest.mark.parametrize("name", ["age", "sex", "cp"])
def test_a_required_column_refuses_null_in_the_rules_words(
    contract: Contract, spec: DatasetSpec, name: str
) -> None:
    column = spec.columns[name]
    assert column.required
    (error,) = errors_of(contract, {**seed(spec), name: None})
    assert error["loc"] == (name,) and error["type"] == rules.REQUIRED
    assert error["msg"] == rules.problem_message(column, rules.REQUIRED, None)
    assert error["msg"] == f"missing; required: {column.allowed}"


def test_a_not_measured_value_is_unknown(contract: Contract, spec: DatasetSpec) -> None:
    # UCI writes 0 for an unmeasured cholesterol: the same as null, in every door.
    assert spec.columns["chol"].missing_values == (0,)
    record = contract.record.model_validate({**seed(spec), "chol": 0, "trestbps": 0.0})
    row = contract.record_row(record)
    assert contract.imputed(row) == ["trestbps", "chol"]


def test_a_required_column_with_missing_values_refuses_them() -> None:
    data = yaml.safe_load(heart_spec().to_yaml())
    data["columns"]["trestbps"]["required"] = True
    strict = build_contract(spec_from_text(yaml.safe_dump(data)))
    (error,) = errors_of(strict, {**strict.spec.example_record(), "trestbps": 0})
    assert error["type"] == rules.REQUIRED and error["loc"] == ("trestbps",)


@pytest.mark.parametrize("name", ["age", "trestbps", "chol", "thalach", "oldpeak"])
def test_numeric_bounds_come_from_the_spec(
    contract: Contract, spec: DatasetSpec, name: str
) -> None:
    column = spec.columns[name]
    assert column.range is not None
    low, high = column.range
    contract.record.model_validate({**seed(spec), name: low})
    contract.record.model_validate({**seed(spec), name: high})
    for outside in (low - 0.5, high + 0.5):
        (error,) = errors_of(contract, {**seed(spec), name: outside})
        assert error["loc"] == (name,) and error["type"] == rules.NOT_ALLOWED
        assert error["msg"] == rules.problem_message(column, rules.NOT_ALLOWED, outside)


def test_messages_are_the_rules_words_written_out() -> None:
    # Hand-written oracles, so a change of wording anywhere shows here.
    contract = build_contract(heart_spec())
    body = {**contract.spec.example_record(), "chol": 5000, "cp": 5, "age": "63"}
    messages = {e["loc"][0]: e["msg"] for e in errors_of(contract, body)}
    assert messages == {
        "age": "'63' is not a number; expected a number from 18 to 100 years",
        "cp": "5 is not allowed; expected one of 1 (typical angina), 2 (atypical angina), "
        "3 (non-anginal pain), 4 (asymptomatic)",
        "chol": "5000 is not allowed; expected a number from 80 to 700 mg/dl",
    }


@pytest.mark.parametrize("name", ["sex", "cp", "fbs", "restecg", "exang", "slope", "ca", "thal"])
def test_codes_come_from_the_spec(contract: Contract, spec: DatasetSpec, name: str) -> None:
    column = spec.columns[name]
    assert column.codes is not None
    for code in column.codes:
        contract.record.model_validate({**seed(spec), name: code})
        contract.record.model_validate({**seed(spec), name: float(code)})  # pandas writes 1.0
    wrong = max(column.codes) + 1
    (error,) = errors_of(contract, {**seed(spec), name: wrong})
    assert error["type"] == rules.NOT_ALLOWED
    assert error["msg"] == rules.problem_message(column, rules.NOT_ALLOWED, wrong)


@pytest.mark.parametrize(
    ("name", "value"),
    [("age", "63"), ("sex", True), ("cp", "1"), ("oldpeak", [2.3]), ("chol", {"v": 1})],
)
def test_only_json_numbers_are_accepted(
    contract: Contract, spec: DatasetSpec, name: str, value: Any
) -> None:
    (error,) = errors_of(contract, {**seed(spec), name: value})
    assert error["loc"] == (name,) and error["type"] == rules.NOT_A_NUMBER
    assert error["msg"] == rules.problem_message(spec.columns[name], rules.NOT_A_NUMBER, value)


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_non_finite_numbers_are_refused(
    contract: Contract, spec: DatasetSpec, literal: bytes
) -> None:
    body = orjson.dumps(seed(spec)).replace(b'"oldpeak":2.3', b'"oldpeak":' + literal)
    (error,) = errors_of(contract, body)
    assert error["loc"] == ("oldpeak",) and error["type"] == rules.NOT_A_NUMBER


def test_an_integer_beyond_float_range_is_a_422_not_a_crash(
    contract: Contract, spec: DatasetSpec
) -> None:
    body = orjson.dumps(seed(spec)).replace(b'"chol":233', b'"chol":1' + b"0" * 400)
    (error,) = errors_of(contract, body)
    assert error["loc"] == ("chol",) and error["type"] == rules.NOT_A_NUMBER
    assert len(error["msg"]) < 200


def test_extra_and_left_out_fields_are_refused(contract: Contract, spec: DatasetSpec) -> None:
    assert {e["type"] for e in errors_of(contract, {**seed(spec), "smoker": 1})} == {
        "extra_forbidden"
    }
    # An optional field left out is refused too: never silently imputed.
    left_out = {k: v for k, v in seed(spec).items() if k != "thalach"}
    assert [(e["type"], e["loc"]) for e in errors_of(contract, left_out)] == [
        ("missing", ("thalach",))
    ]


def test_schema_documents_units_meanings_null_and_an_example(
    contract: Contract, spec: DatasetSpec
) -> None:
    schema = contract.record.model_json_schema()
    assert schema["title"] == "PatientRecord"
    assert schema["examples"] == [seed(spec)]
    assert schema["additionalProperties"] is False
    assert schema["required"] == list(spec.raw_names)  # present, even when null
    chol = schema["properties"]["chol"]
    assert chol["title"] == "Serum cholesterol"
    assert "mg/dl" in chol["description"] and "null" in chol["description"]
    assert chol["anyOf"][0] == {"type": "number", "minimum": 80, "maximum": 700}
    assert {"enum": [0], "description": "not measured: the same as null"} in chol["anyOf"]
    assert {"type": "null"} in chol["anyOf"]
    age = schema["properties"]["age"]
    assert age["type"] == "number" and (age["minimum"], age["maximum"]) == (18, 100)
    assert "Required" in age["description"] and "anyOf" not in age
    assert "typical angina" in schema["properties"]["cp"]["description"]
    assert schema["properties"]["cp"]["enum"] == [1, 2, 3, 4]
    assert schema["properties"]["thal"]["enum"] == [3, 6, 7, None]
    assert schema["properties"]["oldpeak"]["examples"] == [2.3]


def test_field_schema_of_a_required_coded_column(spec: DatasetSpec) -> None:
    assert field_schema(spec.columns["sex"]) == {"enum": [0, 1]}


def test_batch_needs_at_least_one_record(contract: Contract, spec: DatasetSpec) -> None:
    with pytest.raises(ValidationError):
        contract.batch.model_validate({"records": []})
    assert len(contract.batch.model_validate({"records": [seed(spec)] * 2}).records) == 2  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("probability", "level"),
    [
        (0.0, "low"),
        (0.2999, "low"),
        (0.3, "moderate"),
        (0.5999, "moderate"),
        (0.6, "high"),
        (1.0, "high"),
    ],
)
def test_risk_bands_come_from_the_spec(contract: Contract, probability: float, level: str) -> None:
    assert contract.risk_level(probability) == level


def test_other_bands_in_another_spec(spec: DatasetSpec) -> None:
    data = yaml.safe_load(spec.to_yaml())
    data["risk_bands"] = [{"label": "routine", "below": 0.5}, {"label": "refer"}]
    other = build_contract(spec_from_text(yaml.safe_dump(data)))
    assert [other.risk_level(p) for p in (0.1, 0.4999, 0.5, 0.9)] == [
        "routine", "routine", "refer", "refer"
    ]  # fmt: skip
    assert other.risk_levels() == [
        {"label": "routine", "minimum": 0.0, "below": 0.5},
        {"label": "refer", "minimum": 0.5, "below": None},
    ]
    assert other.key != build_contract(spec).key


def test_the_note_names_the_imputed_fields_in_words(contract: Contract) -> None:
    assert contract.note([]) is None
    note = contract.note(["chol", "thal"])
    assert note is not None
    assert "Serum cholesterol" in note and "Thallium stress test" in note
    assert "less certain" in note


def test_a_not_measured_value_that_is_also_allowed_turns_the_fast_check_off(
    spec: DatasetSpec,
) -> None:
    """The fast check tests "not measured" values only where a value is refused; a spec whose
    missing value is also an allowed value gets the model's check alone, with the rules' verdict
    (measured first: 0 is unknown)."""
    from heartml.serving.fast_check import checked_record, patient_row

    assert build_contract(spec).fast_path
    data = yaml.safe_load(spec.to_yaml())
    data["columns"]["oldpeak"]["missing_values"] = [0]  # inside [-3, 10]
    odd = build_contract(spec_from_text(yaml.safe_dump(data)))
    assert not odd.fast_path
    body = orjson.dumps({**odd.spec.example_record(), "oldpeak": 0})
    assert checked_record(body, odd) is None and patient_row(body, odd) is None
    row = odd.record_row(odd.record.model_validate_json(body))
    assert odd.imputed(row) == ["oldpeak"]


def test_the_request_paths_band_lookup_is_the_specs(contract: Contract, spec: DatasetSpec) -> None:
    """Contract.risk_level is DatasetSpec.risk_level without its objects (the request path asks
    once per answer): the same band for every probability, edges included."""
    grid = [i / 1000 for i in range(1001)] + [0.3, 0.6, math.nextafter(0.3, 0), 1e-12]
    assert [contract.risk_level(p) for p in grid] == [spec.risk_level(p) for p in grid]


@pytest.mark.parametrize(
    "path", sorted(heart_spec_file.parent.glob("*.yaml")), ids=lambda p: p.stem
)
def test_every_shipped_spec_gives_a_contract(path: Any) -> None:
    """Nothing heart-shaped: each spec under configs/datasets/ gets its request model, fast
    check and form fields, and its own example record passes both checks with the same row."""
    from heartml.serving.fast_check import checked_record
    from heartml.spec import load_spec

    spec = load_spec(path)
    contract = build_contract(spec)
    body = orjson.dumps(spec.example_record())
    checked = checked_record(body, contract)
    assert checked is not None and checked[1] == []
    assert checked[0] == contract.record_row(contract.record.model_validate_json(body))
    assert [field["name"] for field in contract.fields_info()] == list(spec.raw_names)
    schema = contract.record.model_json_schema()
    assert schema["required"] == list(spec.raw_names)
