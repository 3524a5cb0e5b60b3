"""The request model: the UCI coding from heartml.coding, strict numbers, nullable measurements."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from heartml.coding import COLUMNS_BY_NAME, RAW_COLUMNS, RAW_FEATURES, example_record
from heartml.serving.schemas import NULLABLE, BatchRequest, PatientRecord, risk_level

pytestmark = pytest.mark.serving

SEED = example_record()


def errors_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as caught:
        PatientRecord.model_validate_json(orjson.dumps(body))
    return [dict(error) for error in caught.value.errors()]


def test_fields_are_the_raw_features_in_model_order() -> None:
    assert tuple(PatientRecord.model_fields) == RAW_FEATURES
    record = PatientRecord.model_validate(SEED)
    assert record.as_row() == [float(SEED[name]) for name in RAW_FEATURES]


def test_nullable_fields_are_the_measurements_uci_leaves_missing() -> None:
    assert {"ca", "thal", "chol", "trestbps"} == NULLABLE
    record = PatientRecord.model_validate({**SEED, **dict.fromkeys(NULLABLE)})
    row = dict(zip(RAW_FEATURES, record.as_row(), strict=True))
    assert all(math.isnan(row[name]) for name in NULLABLE)


@pytest.mark.parametrize("column", [c for c in RAW_COLUMNS if not c.codes], ids=lambda c: c.name)
def test_numeric_bounds_come_from_the_coding(column: Any) -> None:
    assert column.minimum is not None and column.maximum is not None
    PatientRecord.model_validate({**SEED, column.name: column.minimum})
    PatientRecord.model_validate({**SEED, column.name: column.maximum})
    for outside in (column.minimum - 0.5, column.maximum + 0.5):
        (error,) = errors_of({**SEED, column.name: outside})
        assert error["loc"] == (column.name,)


@pytest.mark.parametrize("column", [c for c in RAW_COLUMNS if c.codes], ids=lambda c: c.name)
def test_codes_come_from_the_coding(column: Any) -> None:
    for code in column.codes:
        PatientRecord.model_validate({**SEED, column.name: code})
        PatientRecord.model_validate({**SEED, column.name: float(code)})  # pandas writes 1.0
    (error,) = errors_of({**SEED, column.name: max(column.codes) + 1})
    assert error["type"] == "code_not_allowed"
    assert column.allowed in error["msg"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("age", "63"), ("sex", True), ("cp", "1"), ("oldpeak", [2.3]), ("age", None), ("cp", 1.5)],
)
def test_only_json_numbers_are_accepted(field: str, value: Any) -> None:
    (error,) = errors_of({**SEED, field: value})
    assert error["loc"] == (field,)


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_numbers_are_refused(literal: bytes) -> None:
    body = orjson.dumps(SEED).replace(b'"oldpeak":2.3', b'"oldpeak":' + literal)
    with pytest.raises(ValidationError) as caught:
        PatientRecord.model_validate_json(body)
    assert caught.value.errors()[0]["loc"] == ("oldpeak",)


def test_extra_and_missing_fields_are_refused() -> None:
    types = {e["type"] for e in errors_of({**SEED, "smoker": 1})}
    assert types == {"extra_forbidden"}
    missing = {k: v for k, v in SEED.items() if k != "thalach"}
    assert [e["type"] for e in errors_of(missing)] == ["missing"]


def test_schema_documents_units_meanings_and_an_example() -> None:
    schema = PatientRecord.model_json_schema()
    assert schema["examples"] == [SEED]
    assert schema["additionalProperties"] is False
    chol = schema["properties"]["chol"]
    assert "mg/dl" in chol["description"] and "null" in chol["description"]
    assert chol["anyOf"][0]["minimum"] == COLUMNS_BY_NAME["chol"].minimum
    assert "typical angina" in schema["properties"]["cp"]["description"]
    assert schema["properties"]["cp"]["enum"] == [1, 2, 3, 4]
    assert schema["properties"]["thal"]["enum"] == [3, 6, 7, None]


def test_batch_needs_at_least_one_record() -> None:
    with pytest.raises(ValidationError):
        BatchRequest.model_validate({"records": []})
    assert len(BatchRequest.model_validate({"records": [SEED, SEED]}).records) == 2


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
def test_risk_bands(probability: float, level: str) -> None:
    assert risk_level(probability) == level
