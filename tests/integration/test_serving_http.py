"""The prediction service over real HTTP: `heartml serve` (uvicorn) on a free port, in its own
process group, against packages built by the real commands in a temporary project.

One project per module: trained once for the session (shared template), then
`heartml track --force-champion` + `heartml package` twice, giving two genuine versions of the
champion's package (v1, v2). Each scenario starts its own server on its own folder of packages.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest
from harness.processes import tail
from harness.projects import Project, describe
from harness.serve import (
    SEED_BODY,
    Load,
    Server,
    check_answers_follow_the_model,
    launch_server,
    offline_probabilities,
    records_of,
)

from heartml.catalog import Catalog
from heartml.data.prepare import read_split
from serving_packages import heart_spec, read_source

pytestmark = [pytest.mark.serving, pytest.mark.integration, pytest.mark.slow]

JSON = {"content-type": "application/json"}
POLL_S = 0.5  # the servers' HEARTML_SERVE_RELOAD_INTERVAL_S
ADMIN_KEY = "integration-secret"
RAW_FEATURES = heart_spec().raw_names


@dataclass
class Built:
    """The module's project and its two packaged champion versions (kept outside packages/),
    plus version 2 of ANOTHER algorithm: a model whose answers differ from the champion's."""

    project: Project
    v1: Path
    v2: Path
    other: Path


@pytest.fixture(scope="module")
def built(make_project: Callable[..., Project], tmp_path_factory: pytest.TempPathFactory) -> Built:
    project = make_project()
    stash = tmp_path_factory.mktemp("built-packages")
    made = []
    for _ in range(2):
        for command in (("heartml", "track", "--force-champion"), ("heartml", "package")):
            result = project.run(*command)
            assert result.returncode == 0, describe(result)
        (directory,) = (project.root / "packages").glob("heart_disease_model_*")
        made.append(directory.rename(stash / directory.name))
    champion = manifest_of(made[0])["algorithm"]
    other = "random_forest" if champion != "random_forest" else "logistic_regression"
    result = project.run(
        "heartml", "package", "--model", f"heart_disease_{other}", "--version", "2"
    )
    assert result.returncode == 0, describe(result)
    (directory,) = (project.root / "packages").glob(f"heart_disease_model_{other}_v2")
    return Built(project, made[0], made[1], directory.rename(stash / directory.name))


@pytest.fixture(scope="module")
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Server]]:
    """start_server(packages=[...], args=(), **env): a running server; all stopped at the end."""
    servers: list[Server] = []

    def start(
        packages: tuple[Path, ...] = (),
        args: tuple[str, ...] = (),
        root: Path | None = None,
        **env: str,
    ) -> Server:
        if root is None:
            root = tmp_path_factory.mktemp("serve-root")
        settings = {"HEARTML_SERVE_RELOAD_INTERVAL_S": str(POLL_S), **env}
        server = launch_server(root, packages, args, settings)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def server(built: Built, start_server: Callable[..., Server]) -> Server:
    """The main server: serves v2 named with --package, admin key set."""
    started = start_server(args=("--package", str(built.v2)), HEARTML_SERVE_ADMIN_API_KEY=ADMIN_KEY)
    started.wait_ready()
    return started


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def manifest_of(package: Path) -> dict[str, Any]:
    return dict(json.loads((package / "MANIFEST.json").read_text()))


# --------------------------------------------------------------------------------------------


def test_seed_body_over_http(client: httpx.Client, built: Built) -> None:
    manifest = manifest_of(built.v2)
    response = client.post("/predict", json=SEED_BODY)
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
    assert body["imputed_fields"] == [] and body["note"] is None
    assert body["site"] is None and body["calibration"] is None  # no site: the model's own
    assert (body["model_name"], body["model_version"]) == (
        manifest["model_name"],
        manifest["version"],
    )
    assert body["prediction"] == int(body["probability"] >= manifest["threshold"])
    assert body["risk_level"] in ("low", "moderate", "high")
    assert body["request_id"] == response.headers["x-request-id"]
    info = client.get("/model/info").json()
    assert info["version"] == manifest["version"] and info["run_id"] == manifest["run_id"]
    assert info["source"] == f"package:{built.v2}"
    docs = client.get("/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in docs.text and "/openapi.json" in docs.text
    assert client.get("/openapi.json").json()["paths"]["/predict"]["post"]


def test_parity_with_the_offline_pipeline_on_every_row(client: httpx.Client, built: Built) -> None:
    package = built.v2
    joblib_path = package / "model.joblib"
    digest = hashlib.sha256(joblib_path.read_bytes()).hexdigest()
    assert digest == manifest_of(package)["files"]["model.joblib"]["sha256"]
    pipeline = joblib.load(joblib_path)  # a pickle: loaded only after its checksum matched
    rows = read_source(heart_spec())
    expected = pipeline.predict_proba(rows[list(RAW_FEATURES)])[:, 1]
    records = records_of(rows)
    response = client.post("/predict/batch", json={"records": records})
    assert response.status_code == 200, response.text
    got = np.array([result["probability"] for result in response.json()["results"]])
    assert len(got) == len(rows) == 303
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    missing = np.flatnonzero(rows[["ca", "thal"]].isna().any(axis=1).to_numpy())
    for index in [0, 1, 2, *missing.tolist()]:
        single = client.post("/predict", json=records[index]).json()
        assert abs(single["probability"] - expected[index]) <= 1e-5, (index, single)


def _raw(text: str) -> bytes:
    return text.encode()


BAD_INPUTS: list[tuple[str, str, Any, dict[str, str], int, tuple[str, ...]]] = [
    # (case, path, body (dict: JSON; bytes: raw), headers, status, words in the message)
    (
        "wrong type",
        "/predict",
        {**SEED_BODY, "age": "old"},
        JSON,
        422,
        ("age", '"old"', "18 to 100 years"),
    ),
    (
        "out of range",
        "/predict",
        {**SEED_BODY, "trestbps": 400},
        JSON,
        422,
        ("trestbps", "400", "mm Hg"),
    ),
    ("bad code", "/predict", {**SEED_BODY, "cp": 0}, JSON, 422, ("cp", "1 (typical angina)")),
    (
        "bad thal code",
        "/predict",
        {**SEED_BODY, "thal": 2},
        JSON,
        422,
        ("thal", "7 (reversible defect)"),
    ),
    (
        "missing field",
        "/predict",
        {k: v for k, v in SEED_BODY.items() if k != "oldpeak"},
        JSON,
        422,
        ("oldpeak is missing",),
    ),
    ("extra field", "/predict", {**SEED_BODY, "bmi": 31}, JSON, 422, ("bmi", "accepted fields")),
    ("null age", "/predict", {**SEED_BODY, "age": None}, JSON, 422, ("age", "required")),
    (
        "NaN",
        "/predict",
        _raw(json.dumps(SEED_BODY).replace("150", "NaN")),
        JSON,
        422,
        ("thalach", "NaN"),
    ),
    (
        "Infinity",
        "/predict",
        _raw(json.dumps(SEED_BODY).replace("145", "Infinity")),
        JSON,
        422,
        ("trestbps", "Infinity"),
    ),
    (
        "-Infinity",
        "/predict",
        _raw(json.dumps(SEED_BODY).replace("2.3", "-Infinity")),
        JSON,
        422,
        ("oldpeak", "-Infinity"),
    ),
    ("empty body", "/predict", b"", JSON, 422, ("empty",)),
    ("malformed JSON", "/predict", b'{"age": 63, "sex": }', JSON, 400, ("not valid JSON",)),
    (
        "not JSON content",
        "/predict",
        _raw(json.dumps(SEED_BODY)),
        {"content-type": "text/plain"},
        415,
        ("application/json",),
    ),
    (
        "batch bad record",
        "/predict/batch",
        {"records": [SEED_BODY, {**SEED_BODY, "sex": 2}]},
        JSON,
        422,
        ("records[1].sex", "0 (female)"),
    ),
    (
        "batch over limit",
        "/predict/batch",
        {"records": [SEED_BODY] * 1001},
        JSON,
        413,
        ("1001 records", "limit is 1000"),
    ),
    ("body too large", "/predict", b" " * (1 << 20) + b"{}", JSON, 413, ("1048576 bytes",)),
]


@pytest.mark.parametrize(
    ("case", "path", "body", "headers", "status", "words"),
    BAD_INPUTS,
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_inputs_get_a_4xx_naming_the_problem(
    client: httpx.Client,
    case: str,
    path: str,
    body: Any,
    headers: dict[str, str],
    status: int,
    words: tuple[str, ...],
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post(path, content=content, headers=headers)
    assert response.status_code == status, (case, response.text)
    payload = response.json()
    assert payload["request_id"] == response.headers["x-request-id"]
    text = json.dumps(payload["detail"])
    for word in words:
        assert word in text, (case, payload)


def test_tampered_package_is_refused_and_not_ready(
    built: Built, start_server: Callable[..., Server], tmp_path: Path
) -> None:
    tampered = tmp_path / built.v1.name
    shutil.copytree(built.v1, tampered)
    onnx = bytearray((tampered / "model.onnx").read_bytes())
    onnx[len(onnx) // 2] ^= 0x01  # one byte
    (tampered / "model.onnx").write_bytes(bytes(onnx))
    server = start_server(packages=(tampered,))
    time.sleep(1.5)  # the first load and a few polls
    ready = httpx.get(f"{server.url}/ready")
    assert ready.status_code == 503
    assert "model.onnx" in ready.json()["detail"] and "sha256" in ready.json()["detail"]
    predict = httpx.post(f"{server.url}/predict", json=SEED_BODY)
    assert predict.status_code == 503 and "model.onnx" in predict.json()["detail"]
    assert httpx.get(f"{server.url}/health").status_code == 200
    rejected = [line for line in server.log_lines() if line["message"] == "model package rejected"]
    assert len(rejected) == 1, server.log()  # said once, not at every poll
    assert "model.onnx" in rejected[0]["reason"] and rejected[0]["level"] == "ERROR"
    # Without an admin key the admin endpoint does not exist.
    assert httpx.post(f"{server.url}/admin/reload").status_code == 404


def test_hot_reload_under_load_fails_no_request(
    built: Built, start_server: Callable[..., Server]
) -> None:
    """From the champion (version 1) to another algorithm's version 2 under load: every answer
    is the probability, for the row it was sent with, of the model it names (sklearn offline),
    and no request sent after the first answer of the new model is answered by the old one."""
    rows = read_source(heart_spec())
    old, new = manifest_of(built.v1), manifest_of(built.other)
    old_key, new_key = (old["model_name"], old["version"]), (new["model_name"], new["version"])
    expected = {
        old_key: offline_probabilities(built.v1, rows),
        new_key: offline_probabilities(built.other, rows),
    }
    assert old_key != new_key
    assert np.max(np.abs(expected[old_key] - expected[new_key])) > 0.1, "the models must differ"
    server = start_server(packages=(built.v1,))
    assert server.wait_ready()["model_version"] == old["version"]
    with Load(server.url, bodies=records_of(rows)) as load:
        time.sleep(1.0)
        # As `heartml package` does: build beside, then one rename into packages/.
        staging = server.root / "packages" / f".staging-{built.other.name}"
        shutil.copytree(built.other, staging)
        placed = time.monotonic()
        staging.rename(server.root / "packages" / built.other.name)
        switched = None
        while time.monotonic() - placed < 10:
            if httpx.get(f"{server.url}/model/info").json()["name"] == new["model_name"]:
                switched = time.monotonic() - placed
                break
            time.sleep(0.05)
        time.sleep(1.0)
    assert switched is not None, tail(server.log_path)
    assert switched <= POLL_S + 2.0, f"took {switched:.2f} s with a {POLL_S} s poll"
    assert not load.errors, load.errors[:5]
    statuses = {outcome.status for outcome in load.results}
    assert statuses == {200}, statuses
    assert len(load.results) > 100
    answered = check_answers_follow_the_model(load.results, expected)
    assert answered[old_key] > 10 and answered[new_key] > 10, answered
    first_new = min(o.finished for o in load.results if (o.model_name, o.version) == new_key)
    stale = [o for o in load.results if o.started > first_new and o.model_name != new_key[0]]
    assert not stale, f"{len(stale)} requests sent after the swap were answered by the old model"
    ordered = sorted(load.results, key=lambda o: o.started)
    assert (ordered[0].model_name, ordered[-1].model_name) == (old_key[0], new_key[0])
    assert any(
        line["message"] == "model loaded" and line["model_version"] == new["version"]
        for line in server.log_lines()
    )


def test_admin_reload_needs_the_key(client: httpx.Client, built: Built) -> None:
    before = client.get("/model/info").json()["loaded_at"]
    for headers in ({}, {"X-API-Key": "wrong"}):
        refused = client.post("/admin/reload", headers=headers)
        assert refused.status_code == 401, refused.text
        assert refused.json()["detail"] == "missing or wrong X-API-Key"
        assert refused.headers["www-authenticate"] == "ApiKey"
    assert client.get("/model/info").json()["loaded_at"] == before, "a refused call reloaded"
    response = client.post("/admin/reload", headers={"X-API-Key": ADMIN_KEY})
    assert response.status_code == 200, response.text
    manifest = manifest_of(built.v2)
    assert response.json() == {
        "status": "loaded",
        "detail": f"loaded {manifest['model_name']} version {manifest['version']}",
        "model_version": manifest["version"],
    }
    assert client.get("/model/info").json()["loaded_at"] > before  # really loaded again


def test_drift_rises_for_a_shifted_stream_only(client: httpx.Client, built: Built) -> None:
    train, _ = read_split(Catalog.load(built.project.root, "uci_heart"))
    resample = train.sample(500, replace=True, random_state=7)
    assert client.post("/predict/batch", json={"records": records_of(resample)}).status_code == 200
    report = client.get("/monitoring/drift").json()
    assert report["window_size"] == 500 and report["reference_rows"] == len(train)
    for name, feature in report["features"].items():
        assert feature["psi"] < 0.1, (name, feature)

    shifted = resample.assign(
        age=(resample["age"] + 25).clip(upper=100), chol=(resample["chol"] * 1.5).clip(upper=700)
    )
    assert client.post("/predict/batch", json={"records": records_of(shifted)}).status_code == 200
    report = client.get("/monitoring/drift").json()
    for name in ("age", "chol"):
        assert report["features"][name]["psi"] > 0.25, report["features"][name]
        assert report["features"][name]["ks_p_value"] < 0.001
    assert report["features"]["thalach"]["psi"] < 0.1
    metrics = client.get("/metrics").text
    age_psi = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith('heartml_drift_psi{feature="age"}')
    )
    assert age_psi > 0.25


def test_metrics_series(client: httpx.Client, built: Built) -> None:
    client.post("/predict", json=SEED_BODY)
    text = client.get("/metrics").text
    version = manifest_of(built.v2)["version"]
    for series in (
        'heartml_http_requests_total{endpoint="/predict",method="POST",status="200"}',
        'heartml_http_requests_total{endpoint="/predict",method="POST",status="422"}',
        'heartml_http_requests_total{endpoint="/predict/batch",method="POST",status="413"}',
        "heartml_http_request_duration_seconds_bucket{",
        'heartml_predictions_total{prediction="0"}',
        'heartml_predictions_total{prediction="1"}',
        "heartml_prediction_probability_bucket{",
        f'version="{version}"}} 1.0',
        "heartml_model_ready 1.0",
        'heartml_drift_psi{feature="chol"}',
        'heartml_drift_ks_p_value{feature="age"}',
        "heartml_drift_window_size 500.0",
    ):
        assert series in text, series
    assert text.count("heartml_model_info{") == 1
