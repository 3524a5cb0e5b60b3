"""POST /feedback and GET /monitoring/performance in-process (TestClient, a real package, the
store on SQLite under the test's root): statuses, messages, the admin key, nothing changed by a
refused call, and the live figures against scikit-learn."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import brier_score_loss, roc_auc_score

from heartml.settings import Settings
from heartml.store.engine import create_engine

pytestmark = [pytest.mark.serving, pytest.mark.monitoring]
PackageFactory = Callable[..., Path]
SEED_BODY = {"age": 63, "sex": 1, "cp": 1, "trestbps": 145, "chol": 233, "fbs": 1, "restecg": 2,
             "thalach": 150, "exang": 0, "oldpeak": 2.3, "slope": 3, "ca": 0, "thal": 6}  # fmt: skip
JSON = {"content-type": "application/json"}


def stored_rows(root: Path) -> list[tuple[Any, ...]]:
    engine = create_engine(f"sqlite:///{root / 'monitoring' / 'predictions.db'}")
    with engine.connect() as connection:
        return [
            tuple(r) for r in connection.exec_driver_sql("SELECT * FROM predictions ORDER BY id")
        ]


@pytest.fixture
def store_client(
    tmp_path: Path,
    make_package: PackageFactory,
    settings_for: Callable[..., Settings],
    client_for: Callable[..., TestClient],
) -> Callable[..., TestClient]:
    make_package(tmp_path / "packages")

    def start(**settings: Any) -> TestClient:
        return client_for(settings_for(store_flush_interval_s=0.05, **settings))

    return start


def predict(client: TestClient, count: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    answers = []
    for _ in range(count):
        body = {**SEED_BODY, "age": int(rng.integers(30, 78)), "thalach": int(rng.integers(90, 200)),
                "cp": int(rng.integers(1, 5)), "oldpeak": round(float(rng.uniform(0, 4)), 1)}  # fmt: skip
        response = client.post("/predict", json=body)
        assert response.status_code == 200
        answers.append(response.json())
    return answers


def test_bad_feedback_table(tmp_path: Path, store_client: Callable[..., TestClient]) -> None:
    """Each bad call gets its documented status and a message naming the problem; none of them
    changes anything stored."""
    client = store_client()
    answers = predict(client, 3)
    ids = [a["request_id"] for a in answers]
    assert client.post("/feedback", json={"request_id": ids[2], "outcome": 1}).status_code == 200
    before = stored_rows(tmp_path)
    cases: list[tuple[str, bytes, int, str]] = [
        ("unknown id", json.dumps([{"request_id": ids[0], "outcome": 1}, {"request_id": "no-such-id", "outcome": 0}]).encode(),
         404, "no stored prediction has request_id 'no-such-id' row 0"),
        ("outcome 2", json.dumps({"request_id": ids[0], "outcome": 2}).encode(), 422, "outcome must be 0 or 1; got 2"),
        ("NaN", f'[{{"request_id": "{ids[0]}", "outcome": NaN}}]'.encode(), 422, "[0].outcome must be 0 or 1; got NaN"),
        ("missing field", json.dumps([{"request_id": ids[0]}]).encode(), 422, "[0].outcome is missing: send 0 or 1"),
        ("10,001 items", json.dumps([{"request_id": ids[0], "outcome": 1}] * 10_001).encode(), 413,
         "the call has 10,001 outcomes; the limit is 10,000 per call"),
        ("same id twice, different outcomes",
         json.dumps([{"request_id": ids[0], "outcome": 1}, {"request_id": ids[0], "outcome": 0}]).encode(), 409,
         f"[1]: request_id '{ids[0]}' row 0 is sent twice with different outcomes ([0]: 1, [1]: 0)"),
        ("the other outcome", json.dumps({"request_id": ids[2], "outcome": 0}).encode(), 409,
         f"request_id '{ids[2]}' row 0 (stored 1, sent 0) (send ?overwrite=true to replace them)"),
        ("not JSON", b"{request_id", 400, "the request body is not valid JSON"),
        # Found by fuzzing: each was a 500 (an echo JSON cannot hold) or a 503 (the database
        # refused the value) before it was checked here.
        ("row past the column", json.dumps({"request_id": ids[0], "outcome": 1, "row": 10**30}).encode(),
         422, "row must be a whole number from 0 to 2147483647"),
        ("a 20-digit number echoed", json.dumps([{"request_id": ids[0], "outcome": 1, "observed_at": -(10**19)}]).encode(),
         422, "observed_at must be an ISO 8601 date and time"),
        ("a lone surrogate", b'{"request_id": "a\\ud8ae", "outcome": 1}', 422,
         "request_id must be a prediction's request_id"),
        ("a time before year 1 in UTC",
         json.dumps({"request_id": ids[0], "outcome": 1, "observed_at": "0001-01-01T00:30:00+01:00"}).encode(),
         422, "observed_at must be an ISO 8601 date and time"),
    ]  # fmt: skip
    for name, body, status, message in cases:
        response = client.post("/feedback", content=body, headers=JSON)
        assert response.status_code == status, (name, response.text)
        detail = response.json()["detail"]
        text = detail if isinstance(detail, str) else " ".join(d["message"] for d in detail)
        assert message in text, (name, text)
        assert response.json()["request_id"], name
        assert stored_rows(tmp_path) == before, f"{name} changed the store"
    response = client.post(
        "/feedback", content=b"request_id=x", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415


def test_outcomes_idempotent_overwrite_and_batch_rows(
    store_client: Callable[..., TestClient],
) -> None:
    client = store_client()
    one = predict(client, 1)[0]
    batch = client.post(
        "/predict/batch", json={"records": [SEED_BODY, SEED_BODY, SEED_BODY]}
    ).json()
    items = [{"request_id": one["request_id"], "outcome": 1},
             {"request_id": batch["request_id"], "row": 2, "outcome": 0}]  # fmt: skip
    first = client.post("/feedback", json=items)
    assert first.json() | {"request_id": ""} == {
        "received": 2, "recorded": 2, "overwritten": 0, "unchanged": 0, "request_id": ""
    }  # fmt: skip
    assert client.post("/feedback", json=items).json()["unchanged"] == 2
    missing_row = client.post(
        "/feedback", json={"request_id": batch["request_id"], "row": 3, "outcome": 0}
    )
    assert missing_row.status_code == 404 and "row 3" in missing_row.json()["detail"]
    flipped = {"request_id": one["request_id"], "outcome": 0}
    assert client.post("/feedback", json=flipped).status_code == 409
    replaced = client.post("/feedback?overwrite=true", json=flipped)
    assert replaced.status_code == 200 and replaced.json()["overwritten"] == 1
    metrics = client.get("/metrics").text
    assert 'heartml_feedback_outcomes_total{result="recorded"} 2.0' in metrics
    assert 'heartml_feedback_outcomes_total{result="overwritten"} 1.0' in metrics


def test_feedback_needs_the_admin_key_when_one_is_set(
    store_client: Callable[..., TestClient],
) -> None:
    client = store_client(serve_admin_api_key="s3cret")
    rid = predict(client, 1)[0]["request_id"]
    body = {"request_id": rid, "outcome": 1}
    assert client.post("/feedback", json=body).status_code == 401
    assert client.post("/feedback", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.post("/feedback", json=body, headers={"X-API-Key": "s3cret"}).status_code == 200


def test_store_off(store_client: Callable[..., TestClient], tmp_path: Path) -> None:
    client = store_client(store_enabled=False)
    rid = predict(client, 1)[0]["request_id"]
    response = client.post("/feedback", json={"request_id": rid, "outcome": 1})
    assert response.status_code == 503 and "HEARTML_STORE_ENABLED" in response.json()["detail"]
    assert client.get("/monitoring/performance").status_code == 503
    assert "heartml_store_" not in client.get("/metrics").text
    assert not (tmp_path / "monitoring").exists()


def test_live_performance_equals_sklearn(store_client: Callable[..., TestClient]) -> None:
    client = store_client(monitor_refresh_s=0)
    answers = predict(client, 120)
    p = np.array([a["probability"] for a in answers])
    rng = np.random.default_rng(3)
    y = (rng.random(len(p)) < p).astype(int)
    labelled = 100
    items = [
        {"request_id": a["request_id"], "outcome": int(o)}
        for a, o in zip(answers[:labelled], y[:labelled], strict=True)
    ]
    assert client.post("/feedback", json=items).status_code == 200
    report = client.get("/monitoring/performance").json()
    (version,) = report["versions"]
    assert version["predictions"] == 120
    realised, estimated = version["labelled"], version["unlabelled"]
    assert realised["count"] == labelled and estimated["count"] == 20
    assert realised["roc_auc"] == pytest.approx(roc_auc_score(y[:labelled], p[:labelled]), abs=1e-9)
    assert realised["brier"] == pytest.approx(
        brier_score_loss(y[:labelled], p[:labelled]), abs=1e-12
    )
    assert realised["roc_auc_low"] < realised["roc_auc"] < realised["roc_auc_high"]
    assert estimated["calibrated_on"] == labelled
    assert estimated["roc_auc_low"] <= estimated["roc_auc"] <= estimated["roc_auc_high"]
    metrics = client.get("/metrics").text  # the GET refreshed the gauges' figures
    model = f'model_name="{version["model_name"]}",model_version="{version["model_version"]}"'
    assert f"heartml_live_labels{{{model}}} {labelled}.0" in metrics
    assert f"heartml_live_roc_auc{{{model}}} {realised['roc_auc']!r}" in metrics
    assert "heartml_store_written_rows_total 120.0" in metrics
    only = client.get("/monitoring/performance", params={"model_version": "nope"}).json()
    assert only["versions"] == []
    bad_site = client.get("/monitoring/performance", params={"site": "a b"})
    assert bad_site.status_code == 422 and bad_site.json()["detail"][0]["field"] == "site"
