"""The served model's contract: imputed fields and their parity with the offline pipeline,
/model/info's form description, and a hot reload to a package whose spec adds a column."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from heartml.settings import Settings
from heartml.spec import DatasetSpec, rules
from serving_packages import write_package

pytestmark = pytest.mark.serving

PackageFactory = Callable[..., Path]
EXERCISE_TEST = ("slope", "oldpeak", "thalach", "exang")
TOLERANCE = {"logistic_regression": 1e-9, "random_forest": 1e-6}
ADMIN = {"X-API-Key": "k"}


def offline(pipeline: Any, spec: DatasetSpec, body: dict[str, Any]) -> float:
    """The sklearn pipeline's probability for a body (null -> NaN), the oracle."""
    row = {name: (math.nan if body[name] is None else float(body[name])) for name in spec.raw_names}
    return float(pipeline.predict_proba(pd.DataFrame([row])[list(spec.raw_names)])[0, 1])


CASES = {
    "no exercise test": dict.fromkeys(EXERCISE_TEST),
    "no fbs": {"fbs": None},
    "no lab values, chol written as UCI's 0": {"chol": 0, "fbs": None},
    "nothing but the required fields": dict.fromkeys(
        ("trestbps", "chol", "fbs", "restecg", "thalach", "exang", "oldpeak", "slope", "ca", "thal")
    ),
}


@pytest.mark.parametrize("algorithm", ["logistic_regression", "random_forest"])
@pytest.mark.parametrize("case", list(CASES))
def test_unknown_fields_are_imputed_named_and_scored_as_offline(
    case: str,
    algorithm: str,
    tmp_path: Path,
    make_package: PackageFactory,
    fitted: dict[str, Any],
    spec: DatasetSpec,
    settings_for: Callable[..., Settings],
    client_for: Callable[..., TestClient],
) -> None:
    make_package(tmp_path / "packages", algorithm=algorithm)
    client = client_for(settings_for())
    body = {**spec.example_record(), **CASES[case]}
    # Named in model column order, and only those (not the ones given).
    unknown = [
        n for n in spec.raw_names if body[n] is None or body[n] in spec.columns[n].missing_values
    ]
    expected = offline(fitted[algorithm][0], spec, {**body, **dict.fromkeys(unknown)})

    single = client.post("/predict", json=body)
    assert single.status_code == 200, single.text
    answer = single.json()
    assert answer["imputed_fields"] == unknown
    assert answer["note"] and "less certain" in answer["note"]
    for name in unknown:
        assert spec.columns[name].label in answer["note"]
    assert answer["probability"] == pytest.approx(expected, abs=TOLERANCE[algorithm])

    batch = client.post("/predict/batch", json={"records": [spec.example_record(), body]})
    assert batch.status_code == 200, batch.text
    complete, partial = batch.json()["results"]
    assert complete["imputed_fields"] == [] and complete["note"] is None
    assert partial["imputed_fields"] == unknown and partial["note"] == answer["note"]
    assert partial["probability"] == pytest.approx(expected, abs=TOLERANCE[algorithm])

    explained = client.post("/predict/explain", json=body).json()
    assert explained["imputed_fields"] == unknown and explained["note"] == answer["note"]
    assert explained["probability"] == pytest.approx(expected, abs=TOLERANCE[algorithm])
    shown = {c["feature"]: c["value"] for c in explained["contributions"]}
    assert [name for name in spec.raw_names if shown[name] is None] == unknown


def test_the_imputation_changes_the_estimate_only_through_the_unknown_fields(
    packaged: TestClient, fitted: dict[str, Any], spec: DatasetSpec, cleveland: pd.DataFrame
) -> None:
    """A null is imputed with the training median / most frequent code: the same answer as
    sending that value (the RawImputer's statistics), not the old 'feature median'."""
    imputer = fitted["logistic_regression"][0].named_steps["impute"]
    filled = dict(zip(spec.raw_names, imputer.statistics_.tolist(), strict=True))
    body = {**spec.example_record(), **dict.fromkeys(EXERCISE_TEST)}
    given = {**body, **{name: filled[name] for name in EXERCISE_TEST}}
    p_null = packaged.post("/predict", json=body).json()["probability"]
    p_given = packaged.post("/predict", json=given).json()
    assert p_given["imputed_fields"] == []
    assert p_null == pytest.approx(p_given["probability"], abs=1e-12)


def test_a_left_out_field_is_never_imputed(packaged: TestClient, spec: DatasetSpec) -> None:
    body = {k: v for k, v in spec.example_record().items() if k not in ("fbs", "slope")}
    response = packaged.post("/predict", json=body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [(d["field"], d["type"]) for d in detail] == [("fbs", "missing"), ("slope", "missing")]
    assert (
        detail[0]["message"]
        == "fbs is missing: send one of 0 (false), 1 (true), or null when unknown"
    )


@pytest.mark.parametrize(
    ("path", "field", "value", "problem"),
    [
        ("/predict", "thalach", 300, rules.NOT_ALLOWED),
        ("/predict", "ca", 4, rules.NOT_ALLOWED),
        ("/predict", "oldpeak", "2.3", rules.NOT_A_NUMBER),
        ("/predict", "sex", None, rules.REQUIRED),
        ("/predict/explain", "cp", 0, rules.NOT_ALLOWED),
        ("/predict/batch", "thal", 4, rules.NOT_ALLOWED),
    ],
)
def test_a_bad_value_gets_the_rules_message(
    packaged: TestClient, spec: DatasetSpec, path: str, field: str, value: Any, problem: str
) -> None:
    body: dict[str, Any] = {**spec.example_record(), field: value}
    response = packaged.post(path, json={"records": [body]} if path.endswith("batch") else body)
    assert response.status_code == 422, response.text
    (item,) = response.json()["detail"]
    assert item["field"] == (f"records[0].{field}" if path.endswith("batch") else field)
    assert item["type"] == problem and item["value"] == value
    assert item["message"] == rules.problem_message(spec.columns[field], problem, value)


def test_model_info_describes_every_field_for_a_form(
    packaged: TestClient, spec: DatasetSpec
) -> None:
    info = packaged.get("/model/info").json()
    assert info["spec_hash"] == spec.spec_hash()
    assert info["dataset"] == {
        "name": "uci_heart",
        "title": spec.title,
        "description": spec.description,
        "record_title": "patient",
        "positive_label": "heart disease",
        "negative_label": "no heart disease",
    }
    assert info["risk_bands"] == "low: p < 0.3; moderate: 0.3 <= p < 0.6; high: p >= 0.6"
    assert info["risk_levels"] == [
        {"label": "low", "minimum": 0.0, "below": 0.3},
        {"label": "moderate", "minimum": 0.3, "below": 0.6},
        {"label": "high", "minimum": 0.6, "below": None},
    ]
    fields = {field["name"]: field for field in info["fields"]}
    assert list(fields) == list(spec.raw_names)
    assert fields["chol"] == {
        "name": "chol",
        "label": "Serum cholesterol",
        "description": "Total cholesterol in the blood",
        "kind": "number",
        "unit": "mg/dl",
        "minimum": 80,
        "maximum": 700,
        "codes": None,
        "required": False,
        "missing_values": [0],
        "example": 233,
        "group": "At rest",
        "step": 1,
        "allowed": "a number from 80 to 700 mg/dl, or null when unknown",
    }
    assert fields["cp"]["codes"][3] == {"code": 4, "label": "asymptomatic"}
    assert fields["cp"]["required"] is True and fields["cp"]["minimum"] is None
    assert fields["oldpeak"]["step"] == 0.1
    assert [f["group"] for f in info["fields"]][:3] == ["Patient", "Patient", "At rest"]


# --------------------------------------------------------------------------------------------
# A hot reload to a package with another input contract


def test_a_reload_to_another_contract_switches_validation_docs_and_info(
    tmp_path: Path,
    make_package: PackageFactory,
    spec: DatasetSpec,
    smoker_model: tuple[DatasetSpec, Any, pd.DataFrame],
    settings_for: Callable[..., Settings],
    client_for: Callable[..., TestClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    packages = tmp_path / "packages"
    make_package(packages, version="1")
    client = client_for(settings_for(serve_admin_api_key="k"))
    seed = spec.example_record()
    before = client.get("/openapi.json").json()["components"]["schemas"]["PatientRecord"]
    assert "smoker" not in before["properties"]
    assert client.post("/predict", json=seed).status_code == 200
    assert client.post("/predict", json={**seed, "smoker": 1}).status_code == 422  # extra field
    old_info = client.get("/model/info").json()

    extended, pipeline, frame = smoker_model
    write_package(packages, extended, pipeline, frame, version="2")
    with caplog.at_level(logging.INFO, logger="heartml.serving"):
        reloaded = client.post("/admin/reload", headers=ADMIN)
    assert reloaded.json()["status"] == "loaded" and reloaded.json()["model_version"] == "2"

    # Validation: the body that was fine is now missing the new column, by name.
    response = client.post("/predict", json=seed)
    assert response.status_code == 422
    (item,) = response.json()["detail"]
    assert (item["field"], item["type"]) == ("smoker", "missing")
    assert item["message"] == "smoker is missing: send one of 0 (no), 1 (yes)"
    bad = client.post("/predict", json={**seed, "smoker": 2}).json()["detail"][0]
    assert bad["message"] == rules.problem_message(extended.columns["smoker"], rules.NOT_ALLOWED, 2)
    with_smoker = {**seed, "smoker": 1}
    scored = client.post("/predict", json=with_smoker)
    assert scored.status_code == 200, scored.text
    assert scored.json()["probability"] == pytest.approx(
        offline(pipeline, extended, with_smoker), abs=1e-9
    )
    assert client.post("/predict/batch", json={"records": [seed]}).status_code == 422

    # /docs: the OpenAPI document is the new contract's.
    after = client.get("/openapi.json").json()["components"]["schemas"]["PatientRecord"]
    assert after["properties"]["smoker"]["enum"] == [0, 1]
    assert "smoker" in after["required"] and after["examples"] == [extended.example_record()]

    # /model/info: the new fields and hash, for the web form.
    info = client.get("/model/info").json()
    assert info["spec_hash"] == extended.spec_hash() != old_info["spec_hash"]
    assert [f["name"] for f in info["fields"]] == [*spec.raw_names, "smoker"]
    assert info["raw_feature_names"] == [*spec.raw_names, "smoker"]

    # One log line says so, with the old and the new columns.
    lines = [r for r in caplog.records if r.getMessage().startswith("input contract changed")]
    assert len(lines) == 1
    assert lines[0].getMessage().endswith(", thal -> " + ", ".join([*spec.raw_names, "smoker"]))
    assert lines[0].__dict__["added"] == ["smoker"] and lines[0].__dict__["removed"] == []

    # Drift follows the new columns.
    client.post("/predict/batch", json={"records": [with_smoker] * 3})
    assert "smoker" in client.get("/monitoring/drift").json()["features"]


def test_a_reload_within_one_contract_logs_no_contract_change(
    tmp_path: Path,
    make_package: PackageFactory,
    settings_for: Callable[..., Settings],
    client_for: Callable[..., TestClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    packages = tmp_path / "packages"
    make_package(packages, version="1")
    client = client_for(settings_for(serve_admin_api_key="k"))
    make_package(packages, version="2", algorithm="random_forest")
    with caplog.at_level(logging.INFO, logger="heartml.serving"):
        assert client.post("/admin/reload", headers=ADMIN).json()["model_version"] == "2"
    assert not [r for r in caplog.records if "contract" in r.getMessage()]


def test_before_a_model_the_docs_describe_the_projects_spec_or_a_generic_record(
    tmp_path: Path,
    settings_for: Callable[..., Settings],
    client_for: Callable[..., TestClient],
    spec: DatasetSpec,
) -> None:
    bare = client_for(settings_for(), ready=False)
    generic = bare.get("/openapi.json").json()["components"]["schemas"]["PatientRecord"]
    assert generic["type"] == "object" and "properties" not in generic
    assert bare.get("/model/info").status_code == 503

    project = tmp_path / "project"
    (project / "configs" / "datasets").mkdir(parents=True)
    (project / "configs" / "datasets" / "uci_heart.yaml").write_text(spec.to_yaml())
    configured = client_for(settings_for(root=project), ready=False)
    record = configured.get("/openapi.json").json()["components"]["schemas"]["PatientRecord"]
    assert list(record["properties"]) == list(spec.raw_names)


@pytest.mark.parametrize("configured", [False, True])
def test_before_a_model_bad_input_is_still_a_422_and_good_input_a_503(
    configured: bool,
    tmp_path: Path,
    spec: DatasetSpec,
    settings_for: Callable[..., Settings],
    client_for: Callable[..., TestClient],
) -> None:
    root = tmp_path / "project"
    if configured:
        (root / "configs" / "datasets").mkdir(parents=True)
        (root / "configs" / "datasets" / "uci_heart.yaml").write_text(spec.to_yaml())
    client = client_for(settings_for(root=root), ready=False)
    seed = spec.example_record()
    for path, good in (("/predict", seed), ("/predict/batch", {"records": [seed]})):
        assert client.post(path, json=good).status_code == 503, path
        for bad in ([seed], "text", {"records": "x"} if "batch" in path else {**seed, "age": "x"}):
            response = client.post(path, json=bad)
            assert response.status_code == 422, (path, bad, response.text)
    refused = client.post("/predict", json={**seed, "cp": 9})
    # With the project's spec, its rules; without one, only the shape can be checked.
    assert refused.status_code == (422 if configured else 503)
    if configured:
        assert refused.json()["detail"][0]["message"] == rules.problem_message(
            spec.columns["cp"], rules.NOT_ALLOWED, 9
        )
