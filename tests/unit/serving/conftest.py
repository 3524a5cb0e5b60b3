"""Serving unit-test fixtures: real packages, built in seconds from a pipeline fitted here.

The package layout comes from heartml.packaging's own pieces (model config, reference
statistics, manifest), so a change to the format reaches these tests; only the MLflow round trip
of `heartml package` is skipped (the integration tests run the real command).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from sklearn.pipeline import Pipeline

from heartml.coding import RAW_FEATURES
from heartml.config import ModelConfig
from heartml.features import build_pipeline
from heartml.manifest import MODEL_CONFIG, ONNX_FILE, REFERENCE_FILE
from heartml.models import make_estimator
from heartml.onnx_export import pipeline_to_onnx
from heartml.packaging import (
    model_config,
    package_dir_name,
    reference_statistics,
    write_manifest,
    write_parity_reference,
)
from heartml.provenance import write_json
from heartml.serving.app import create_app
from heartml.serving.model_store import ModelStore
from heartml.settings import Settings

with warnings.catch_warnings():
    # Starlette 1.x suggests httpx2 for its TestClient; httpx is what the project ships.
    warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
    from fastapi.testclient import TestClient

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
FAST_PARAMS: dict[str, dict[str, Any]] = {
    "logistic_regression": {"max_iter": 2000},
    "random_forest": {"n_estimators": 20, "max_depth": 4, "n_jobs": 1},
}


@pytest.fixture(scope="session")
def fitted(_cleveland: pd.DataFrame) -> dict[str, tuple[Pipeline, bytes]]:
    """Per algorithm: the fitted pipeline and its ONNX export (fitted once per session)."""
    out = {}
    for algorithm, params in FAST_PARAMS.items():
        estimator = make_estimator(algorithm, ModelConfig(params=params), seed=0)
        pipeline = build_pipeline(estimator).fit(
            _cleveland[list(RAW_FEATURES)], _cleveland["target"]
        )
        out[algorithm] = (pipeline, pipeline_to_onnx(pipeline).SerializeToString())
    return out


PackageFactory = Callable[..., Path]


@pytest.fixture
def make_package(
    fitted: dict[str, tuple[Pipeline, bytes]], _cleveland: pd.DataFrame
) -> PackageFactory:
    """Write a complete, checksummed package under `packages_dir`; returns its folder."""

    def make(
        packages_dir: Path,
        version: str = "1",
        algorithm: str = "logistic_regression",
        threshold: float = 0.5,
    ) -> Path:
        pipeline, onnx_bytes = fitted[algorithm]
        directory = packages_dir / package_dir_name(algorithm, version)
        directory.mkdir(parents=True)
        (directory / ONNX_FILE).write_bytes(onnx_bytes)
        champion = {
            "model_name": f"heart_disease_{algorithm}",
            "algorithm": algorithm,
            "version": version,
            "run_id": f"run-{algorithm}-{version}",
        }
        metrics = {"cv": {"roc_auc": {"mean": 0.9}}, "test": {"roc_auc": 0.88}}
        (directory / MODEL_CONFIG).write_text(
            yaml.safe_dump(model_config(champion, metrics, threshold), sort_keys=False)
        )
        write_json(directory / REFERENCE_FILE, reference_statistics(_cleveland))
        write_parity_reference(directory, pipeline, _cleveland)
        write_manifest(
            directory,
            {
                "package": directory.name,
                **champion,
                "model_uri": f"models:/{champion['model_name']}@champion",
                "threshold": threshold,
                "serving_file": ONNX_FILE,
            },
        )
        # A newer package must look newer to the "newest MANIFEST" rule, even within one tick.
        stamp = time.time() + int(version)
        os.utime(directory / "MANIFEST.json", (stamp, stamp))
        return directory

    return make


@pytest.fixture
def settings_for(tmp_path: Path) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"root": tmp_path, "serve_reload_interval_s": 0}
        values.update(overrides)
        return Settings(**values)

    return build


def wait_ready(client: TestClient, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/ready").status_code == 200:
            return
        time.sleep(0.02)
    raise AssertionError(f"not ready after {timeout} s: {client.get('/ready').json()}")


@pytest.fixture
def client_for() -> Iterator[Callable[..., TestClient]]:
    """A started TestClient (lifespan running) for settings; waits for the model if asked."""
    opened: list[TestClient] = []

    def start(settings: Settings, *, ready: bool = True, store: ModelStore | None = None) -> Any:
        client = TestClient(create_app(settings, store=store), raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        if ready:
            wait_ready(client)
        return client

    yield start
    for client in reversed(opened):
        client.__exit__(None, None, None)


@pytest.fixture
def packaged(
    tmp_path: Path,
    make_package: PackageFactory,
    settings_for: Callable[..., Settings],
    client_for: Callable[..., TestClient],
) -> TestClient:
    """A ready client on one logistic-regression package (version 1)."""
    make_package(tmp_path / "packages")
    return client_for(settings_for())
