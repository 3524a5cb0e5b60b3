"""Fixtures for the deploy-config tests: one small model package and the app's real /metrics."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from deploy_helpers import OTHER_RECORD, SEED_RECORD, build_package, sample_names


@pytest.fixture(scope="session")
def model_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real package (ONNX + MANIFEST), made by `heartml pipeline` on a small config."""
    return build_package(tmp_path_factory.mktemp("deploy-project"))


@pytest.fixture(scope="session")
def app_metrics_text(model_package: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The app's /metrics after a few predictions, a batch, a bad request and a drift report."""
    from fastapi.testclient import TestClient

    from heartml.serving.app import create_app
    from heartml.settings import Settings

    root = tmp_path_factory.mktemp("deploy-app")
    settings = Settings(
        root=root, model_source="package", model_package=model_package, serve_drift_window=10
    )
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 60
        while client.get("/ready").status_code != 200:
            assert time.monotonic() < deadline, client.get("/ready").text
            time.sleep(0.05)
        answered = []
        for i in range(30):
            record = SEED_RECORD if i % 2 else OTHER_RECORD
            response = client.post("/predict", json=record)
            assert response.status_code == 200
            answered.append(response.json()["request_id"])
        batch = {"records": [SEED_RECORD, OTHER_RECORD]}
        assert client.post("/predict/batch", json=batch).status_code == 200
        assert client.post("/predict", json={**SEED_RECORD, "age": 500}).status_code == 422
        assert client.get("/monitoring/drift").status_code == 200
        # Outcomes for most of them: the live-performance and estimation series get values.
        outcomes = [{"request_id": rid, "outcome": i % 2} for i, rid in enumerate(answered[:20])]
        assert client.post("/feedback", json=outcomes).status_code == 200
        assert client.get("/monitoring/performance").status_code == 200
        response = client.get("/metrics")
        assert response.status_code == 200
        return response.text


@pytest.fixture(scope="session")
def app_series(app_metrics_text: str) -> set[str]:
    return sample_names(app_metrics_text)


@pytest.fixture(scope="session")
def app_routes() -> dict[str, set[str]]:
    """path -> HTTP methods, from the FastAPI app itself: its OpenAPI table (every API route,
    whatever the router nesting) plus the plain routes outside the schema (/, /docs)."""
    from heartml.serving.app import create_app
    from heartml.settings import Settings

    app = create_app(Settings())
    routes: dict[str, set[str]] = {}
    for path, operations in app.openapi()["paths"].items():
        routes.setdefault(path, set()).update(method.upper() for method in operations)
    for route in app.routes:
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if path is not None and methods:
            routes.setdefault(path, set()).update(methods)
    return routes
