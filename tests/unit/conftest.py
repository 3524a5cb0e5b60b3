"""Fixtures the unit tests of several areas share: a real, embedded MLflow store.

Creating an MLflow SQLite database runs its migrations (~6 s), so one empty database is made
per session and copied by each test that needs one. `isolated_mlflow` undoes whatever a test
does to MLflow's process-wide URIs (and MLFLOW_TRACKING_URI), so no other test can write into
a deleted folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

CONNECT_ENV = (
    "HEARTML_MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR",
)


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite database with its migrations run, to be copied per test."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments(max_results=1)
    return path


@pytest.fixture
def isolated_mlflow(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Whatever a test does to MLflow's process-wide state is undone after it."""
    import mlflow.tracking._model_registry.utils as registry_uri
    import mlflow.tracking._tracking_service.utils as tracking_uri

    for name in CONNECT_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tracking_uri, "_tracking_uri", tracking_uri._tracking_uri)
    monkeypatch.setattr(registry_uri, "_registry_uri", registry_uri._registry_uri)
    yield
