"""The HTTP API in-process (TestClient): responses, errors, limits, admin, metrics, logs."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from heartml.serving.loaded_model import LoadedModel
from heartml.serving.logging import JsonFormatter
from heartml.serving.model_store import ModelStore
from heartml.settings import Settings
from heartml.spec import rules
from serving_packages import heart_spec

pytestmark = pytest.mark.serving

PackageFactory = Callable[..., Path]
SEED_BODY: dict[str, Any] = {
    "age": 63,
    "sex": 1,
    "cp": 1,
    "trestbps": 145,
    "chol": 233,
    "fbs": 1,
    "restecg": 2,
    "thalach": 150,
    "exang": 0,
    "oldpeak": 2.3,
    "slope": 3,
    "ca": 0,
    "thal": 6,
}
JSON = {"content-type": "application/json"}
SPEC = heart_spec()
RAW_FEATURES = SPEC.raw_names


def records_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    values = frame[list(RAW_FEATURES)].astype(object).where(frame[list(RAW_FEATURES)].notna(), None)
    return [dict(zip(RAW_FEATURES, row, strict=True)) for row in values.itertuples(index=False)]


def test_seed_body_gives_a_prediction(packaged: TestClient) -> None:
    response = packaged.post("/predict", json=SEED_BODY)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "prediction",
        "probability",
        "risk_level",
        "imputed_fields",
        "note",
        "model_name",
        "model_version",
        "request_id",
        "site",
        "calibration",
    }
    assert body["site"] is None and body["calibration"] is None  # no site: no calibration
    assert body["imputed_fields"] == [] and body["note"] is None
    assert body["prediction"] == int(body["probability"] >= 0.5)
    assert 0 <= body["probability"] <= 1
    assert body["model_name"] == "heart_disease_logistic_regression"
    assert body["model_version"] == "1"
    assert body["request_id"] == response.headers["x-request-id"]


def test_caller_request_id_is_kept_and_unsafe_ones_replaced(packaged: TestClient) -> None:
    kept = packaged.post("/predict", json=SEED_BODY, headers={"X-Request-ID": "abc-123"})
    assert kept.json()["request_id"] == kept.headers["x-request-id"] == "abc-123"
    for unsafe in ("x" * 65, "a b", "<script>", "id\\n"):
        response = packaged.get("/health", headers={"X-Request-ID": unsafe})
        assert response.headers["x-request-id"] != unsafe
        assert len(response.headers["x-request-id"]) == 24


def test_predictions_match_the_pipeline_on_every_row(
    packaged: TestClient, fitted: dict[str, Any], cleveland: pd.DataFrame
) -> None:
    records = records_of(cleveland)
    response = packaged.post("/predict/batch", json={"records": records})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == len(records) == len(body["results"])
    got = np.array([r["probability"] for r in body["results"]])
    expected = fitted["logistic_regression"][0].predict_proba(cleveland[list(RAW_FEATURES)])[:, 1]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert [r["prediction"] for r in body["results"]] == (expected >= 0.5).astype(int).tolist()
    missing = int(np.flatnonzero(cleveland["ca"].isna())[0])
    single = packaged.post("/predict", json=records[missing]).json()
    assert single["probability"] == pytest.approx(expected[missing], abs=1e-5)


def test_explanation_contributions_are_occlusion_deltas(
    packaged: TestClient, fitted: dict[str, Any]
) -> None:
    response = packaged.post("/predict/explain", json=SEED_BODY)
    assert response.status_code == 200, response.text
    body = response.json()
    contributions = body["contributions"]
    assert {c["feature"] for c in contributions} == set(RAW_FEATURES)
    sizes = [abs(c["contribution"]) for c in contributions]
    assert sizes == sorted(sizes, reverse=True)
    pipeline = fitted["logistic_regression"][0]
    top = contributions[0]
    replaced = pd.DataFrame([{**SEED_BODY, top["feature"]: top["reference_value"]}])
    p_replaced = pipeline.predict_proba(replaced[list(RAW_FEATURES)].astype(float))[0, 1]
    assert top["contribution"] == pytest.approx(body["probability"] - p_replaced, abs=1e-6)
    assert body["probability"] == pytest.approx(
        packaged.post("/predict", json=SEED_BODY).json()["probability"]
    )


BAD_INPUTS: list[tuple[str, str, Any, int, tuple[str, ...]]] = [
    # (case, path, body (dict: JSON; bytes: raw), status, words the message must contain)
    ("wrong type", "/predict", {**SEED_BODY, "age": "sixty"}, 422, ("age", '"sixty"', "18 to 100")),
    ("number as text", "/predict", {**SEED_BODY, "thalach": "150"}, 422, ("thalach",)),
    ("out of range", "/predict", {**SEED_BODY, "age": 150}, 422, ("age", "150", "years")),
    ("low cholesterol", "/predict", {**SEED_BODY, "chol": 5}, 422, ("chol", "80 to 700")),
    ("bad code", "/predict", {**SEED_BODY, "cp": 5}, 422, ("cp", "typical angina", "5")),
    ("boolean code", "/predict", {**SEED_BODY, "sex": True}, 422, ("sex", "female")),
    ("fractional code", "/predict", {**SEED_BODY, "slope": 1.5}, 422, ("slope", "upsloping")),
    ("null required", "/predict", {**SEED_BODY, "age": None}, 422, ("age", "required")),
    (
        "missing field",
        "/predict",
        {k: v for k, v in SEED_BODY.items() if k != "exang"},
        422,
        ("exang is missing", "or null when unknown"),
    ),
    ("extra field", "/predict", {**SEED_BODY, "smoker": 1}, 422, ("smoker", "accepted fields")),
    (
        "NaN",
        "/predict",
        json.dumps(SEED_BODY).replace("2.3", "NaN").encode(),
        422,
        ("oldpeak", "NaN"),
    ),
    (
        "Infinity",
        "/predict",
        json.dumps(SEED_BODY).replace("233", "Infinity").encode(),
        422,
        ("chol", "Infinity"),
    ),
    ("empty body", "/predict", b"", 422, ("empty",)),
    ("malformed JSON", "/predict", b'{"age": 63,', 400, ("not valid JSON",)),
    ("not an object", "/predict", b"[63, 1]", 422, ("JSON object", "age")),
    (
        "batch record",
        "/predict/batch",
        {"records": [SEED_BODY, {**SEED_BODY, "thal": 4}]},
        422,
        ("records[1].thal", "fixed defect"),
    ),
    ("batch not a list", "/predict/batch", {"records": SEED_BODY}, 422, ("records",)),
    ("batch empty", "/predict/batch", {"records": []}, 422, ("records",)),
    ("explain", "/predict/explain", {**SEED_BODY, "restecg": 3}, 422, ("restecg", "normal")),
]


@pytest.mark.parametrize(
    ("case", "path", "body", "status", "words"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_inputs_are_refused_with_a_clear_message(
    packaged: TestClient,
    case: str,
    path: str,
    body: Any,
    status: int,
    words: tuple[str, ...],
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = packaged.post(path, content=content, headers=JSON)
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["request_id"] == response.headers["x-request-id"]
    text = json.dumps(payload["detail"])
    for word in words:
        assert word in text, (case, payload)
    if isinstance(payload["detail"], list):
        for item in payload["detail"]:
            assert set(item) == {"field", "value", "message", "type"}
            name = item["field"].rpartition(".")[2]
            if item["type"] in (rules.NOT_A_NUMBER, rules.NOT_ALLOWED, rules.REQUIRED):
                # A value problem: the words of the rules every door uses, as they are.
                value = item["value"] if item["value"] not in ("NaN", "Infinity") else None
                if value is not None:
                    expected = rules.problem_message(SPEC.columns[name], item["type"], value)
                    assert item["message"] == expected, (case, item)
            else:
                assert item["field"] in item["message"], (case, item)


def test_limits_give_413(
    tmp_path: Path,
    make_package: PackageFactory,
    settings_for: Callable[..., Settings],
    client_for: Callable[..., TestClient],
) -> None:
    make_package(tmp_path / "packages")
    client = client_for(settings_for(serve_batch_limit=5, serve_max_body_bytes=4096))
    over = client.post("/predict/batch", json={"records": [SEED_BODY] * 6})
    assert over.status_code == 413
    assert "6 records" in over.json()["detail"] and "limit is 5" in over.json()["detail"]
    assert client.post("/predict/batch", json={"records": [SEED_BODY] * 5}).status_code == 200
    big = client.post("/predict", content=b" " * 5000, headers=JSON)
    assert big.status_code == 413
    assert "4096 bytes" in big.json()["detail"] and big.json()["request_id"]

    def chunks() -> Any:  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b" " * 1000

    chunked = client.post("/predict", content=chunks(), headers=JSON)
    assert chunked.status_code == 413


def test_body_must_be_sent_as_json(packaged: TestClient) -> None:
    raw = json.dumps(SEED_BODY).encode()
    for headers in (
        {"content-type": "text/plain"},
        {"content-type": "application/x-www-form-urlencoded"},
        {},
    ):
        response = packaged.post("/predict", content=raw, headers=headers)
        assert response.status_code == 415, headers
        assert "application/json" in response.json()["detail"]
    charset = packaged.post(
        "/predict", content=raw, headers={"content-type": "application/json; charset=utf-8"}
    )
    assert charset.status_code == 200


def test_not_ready_without_a_package(
    settings_for: Callable[..., Settings], client_for: Callable[..., TestClient]
) -> None:
    client = client_for(settings_for(), ready=False)
    assert client.get("/health").status_code == 200
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "not_ready" and "no package" in ready.json()["detail"]
    predict = client.post("/predict", json=SEED_BODY)
    assert predict.status_code == 503 and "no package" in predict.json()["detail"]
    assert client.get("/model/info").status_code == 503
    assert "heartml_model_ready 0.0" in client.get("/metrics").text


class BrokenScorer:
    def predict_proba(self, data: Any) -> np.ndarray:
        raise RuntimeError("secret internals: /etc/passwd at 0xdeadbeef")


class BrokenStore(ModelStore):
    """A store whose model raises while scoring: the one way to reach a 500 from outside."""

    def __init__(self, settings: Settings, model: LoadedModel) -> None:
        super().__init__(settings)
        self.current = model

    async def run(self, interval_s: float) -> None:
        return None


def test_unexpected_errors_give_500_without_internals(
    tmp_path: Path,
    make_package: PackageFactory,
    settings_for: Callable[..., Settings],
    client_for: Callable[..., TestClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from dataclasses import replace

    from heartml.serving.loaded_model import load_package

    good = load_package(make_package(tmp_path / "packages"), "test", "f", 1)
    settings = settings_for()
    client = client_for(settings, store=BrokenStore(settings, replace(good, scorer=BrokenScorer())))
    with caplog.at_level(logging.ERROR):
        response = client.post("/predict", json=SEED_BODY)
    assert response.status_code == 500
    assert response.json() == {
        "detail": "internal error",
        "request_id": response.headers["x-request-id"],
    }
    assert "secret" not in response.text
    logged = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert logged and "secret internals" in caplog.text  # the log has it, the client does not
    assert client.get("/health").status_code == 200  # the service goes on
    assert 'status="500"' in client.get("/metrics").text


def test_model_info(packaged: TestClient) -> None:
    info = packaged.get("/model/info").json()
    assert info["name"] == "heart_disease_logistic_regression"
    assert info["algorithm"] == "logistic_regression" and info["version"] == "1"
    assert info["run_id"] == "run-logistic_regression-1"
    assert info["threshold"] == 0.5
    assert info["raw_feature_names"] == list(RAW_FEATURES)
    assert info["engineered_feature_names"] == list(SPEC.all_features)
    assert "chol_age_ratio" in info["engineered_feature_names"]
    assert info["metrics"]["test"]["roc_auc"] == 0.88
    assert info["source"].startswith("package:") and info["loaded_at"]


def test_admin_reload_needs_the_key(
    tmp_path: Path,
    make_package: PackageFactory,
    settings_for: Callable[..., Settings],
    client_for: Callable[..., TestClient],
) -> None:
    packages = tmp_path / "packages"
    make_package(packages, version="1")
    disabled = client_for(settings_for())
    absent = disabled.post("/admin/reload")
    assert absent.status_code == 404 and absent.json()["detail"] == "Not Found"
    client = client_for(settings_for(serve_admin_api_key="s3cret"))
    for headers in ({}, {"X-API-Key": "wrong"}):
        refused = client.post("/admin/reload", headers=headers)
        assert refused.status_code == 401
        assert refused.json()["detail"] == "missing or wrong X-API-Key"
        assert refused.headers["www-authenticate"] == "ApiKey"
    assert client.get("/model/info").json()["version"] == "1"  # nothing was reloaded
    make_package(packages, version="2")
    reloaded = client.post("/admin/reload", headers={"X-API-Key": "s3cret"})
    assert reloaded.status_code == 200, reloaded.text
    assert reloaded.json() == {
        "status": "loaded",
        "detail": "loaded heart_disease_logistic_regression version 2",
        "model_version": "2",
    }
    assert client.get("/model/info").json()["version"] == "2"


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_admin_key_disables_the_endpoint(
    blank: str,
    tmp_path: Path,
    make_package: PackageFactory,
    settings_for: Callable[..., Settings],
    client_for: Callable[..., TestClient],
) -> None:
    # A blank key must not let in a request that sends a blank header.
    make_package(tmp_path / "packages", version="1")
    client = client_for(settings_for(serve_admin_api_key=blank))
    assert client.post("/admin/reload", headers={"X-API-Key": blank}).status_code == 404


def test_metrics_expose_the_expected_series(packaged: TestClient) -> None:
    packaged.post("/predict", json=SEED_BODY)
    packaged.post("/predict/batch", json={"records": [SEED_BODY] * 40})
    packaged.post("/predict", json={**SEED_BODY, "cp": 9})
    response = packaged.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for series in (
        'heartml_http_requests_total{endpoint="/predict",method="POST",status="200"} 1.0',
        'heartml_http_requests_total{endpoint="/predict",method="POST",status="422"} 1.0',
        'heartml_http_request_duration_seconds_bucket{endpoint="/predict",le="0.005",method="POST",status="200"}',
        'heartml_predictions_total{prediction="0"}',
        'heartml_predictions_total{prediction="1"}',
        "heartml_prediction_probability_count 41.0",
        'heartml_model_info{algorithm="logistic_regression",name="heart_disease_logistic_regression",run_id="run-logistic_regression-1",version="1"} 1.0',
        "heartml_model_ready 1.0",
        'heartml_model_reloads_total{result="success"} 1.0',
        'heartml_drift_psi{feature="age"}',
        'heartml_drift_ks_statistic{feature="chol"}',
        'heartml_drift_ks_p_value{feature="age"}',
        "heartml_drift_window_size 41.0",
        "heartml_batch_records_count 1.0",
    ):
        assert series in text, series


def test_drift_endpoint(packaged: TestClient, cleveland: pd.DataFrame) -> None:
    sample = cleveland.sample(500, replace=True, random_state=3)
    packaged.post("/predict/batch", json={"records": records_of(sample)})
    report = packaged.get("/monitoring/drift").json()
    assert report["window_size"] == report["window_capacity"] == 500
    assert report["reference_rows"] == len(cleveland) and report["model_version"] == "1"
    assert max(f["psi"] for f in report["features"].values()) < 0.1
    shifted = sample.assign(age=(sample["age"] + 25).clip(upper=100))
    packaged.post("/predict/batch", json={"records": records_of(shifted)})
    report = packaged.get("/monitoring/drift").json()
    assert report["features"]["age"]["psi"] > 0.25
    assert report["features"]["age"]["psi_status"] == "significant"


def test_prediction_log_writes_one_line_per_prediction(
    tmp_path: Path,
    make_package: PackageFactory,
    settings_for: Callable[..., Settings],
    client_for: Callable[..., TestClient],
) -> None:
    make_package(tmp_path / "packages")
    path = tmp_path / "logs" / "predictions.jsonl"
    client = client_for(settings_for(serve_prediction_log=path))
    single = client.post("/predict", json=SEED_BODY).json()
    client.post("/predict/batch", json={"records": [SEED_BODY, {**SEED_BODY, "ca": None}]})
    client.__exit__(None, None, None)  # shutdown drains the writer
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 3
    assert lines[0]["request_id"] == single["request_id"]
    assert lines[0]["probability"] == pytest.approx(single["probability"])
    assert lines[0]["inputs"] == {k: float(v) for k, v in SEED_BODY.items()}
    assert lines[2]["inputs"]["ca"] is None and lines[2]["model_version"] == "1"


def test_cors_is_off_unless_configured(
    tmp_path: Path,
    make_package: PackageFactory,
    settings_for: Callable[..., Settings],
    client_for: Callable[..., TestClient],
) -> None:
    make_package(tmp_path / "packages")
    origin = {"Origin": "https://clinic.example"}
    closed = client_for(settings_for())
    assert "access-control-allow-origin" not in closed.get("/health", headers=origin).headers
    opened = client_for(settings_for(serve_cors_origins=["https://clinic.example"]))
    allowed = opened.get("/health", headers=origin)
    assert allowed.headers["access-control-allow-origin"] == "https://clinic.example"
    preflight = opened.options(
        "/predict",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    allow = preflight.headers
    assert allow["access-control-allow-origin"] == "https://clinic.example"
    assert {m.strip() for m in allow["access-control-allow-methods"].split(",")} == {
        "GET",
        "POST",
    }
    assert "content-type" in allow["access-control-allow-headers"].lower()
    assert "x-api-key" in allow["access-control-allow-headers"].lower()
    # Another origin gets no permission, and no preflight answer that could be mistaken for one.
    other = opened.options(
        "/predict",
        headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"},
    )
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers


def test_json_logs_carry_request_id_model_version_and_latency(
    packaged: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="heartml.serving.access"):
        response = packaged.post("/predict", json=SEED_BODY, headers={"X-Request-ID": "log-1"})
    assert response.status_code == 200
    (record,) = [r for r in caplog.records if r.name == "heartml.serving.access"]
    entry = json.loads(JsonFormatter().format(record))
    assert entry["request_id"] == "log-1" and entry["status"] == 200
    assert entry["model_version"] == "1" and entry["latency_ms"] > 0
    assert entry["path"] == "/predict" and entry["level"] == "INFO" and entry["ts"]


def test_docs_openapi_and_web_page(packaged: TestClient) -> None:
    docs = packaged.get("/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in docs.text and "/openapi.json" in docs.text  # the UI, on our schema
    spec = packaged.get("/openapi.json").json()
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"] == "#/components/schemas/PredictRequest"
    schemas = spec["components"]["schemas"]
    assert schemas["PredictRequest"]["properties"]["site"]["anyOf"][0]["maxLength"] == 64
    assert schemas["PatientRecord"]["examples"] == [
        {k: float(v) if k == "oldpeak" else v for k, v in SEED_BODY.items()}
    ]
    assert (
        schemas["BatchRequest"]["properties"]["records"]["items"]["$ref"]
        == "#/components/schemas/PatientRecord"
    )
    for path in (
        "/predict/batch",
        "/predict/explain",
        "/health",
        "/ready",
        "/model/info",
        "/metrics",
        "/monitoring/drift",
        "/admin/reload",
    ):
        assert path in spec["paths"], path
    page = packaged.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


def test_importing_the_app_is_light_and_does_nothing() -> None:
    code = (
        "import sys, heartml.serving.app, heartml.serving.server;"
        "heavy = [m for m in ('pandas', 'sklearn', 'mlflow', 'scipy', 'skl2onnx', 'onnxruntime') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    # onnxruntime is loaded with the first model (in a worker thread), not at import.
    assert result.stdout.strip() == "", result.stdout
    assert result.stderr == ""
