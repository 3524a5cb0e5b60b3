"""Serving unit-test fixtures: real packages, built in seconds from a pipeline fitted here.

The packages come from tests/serving_packages.py: the pipeline is built from the dataset spec
(configs/datasets/uci_heart.yaml), fitted on the shipped Cleveland file, exported to ONNX and
written with its spec, config, reference statistics and a checksummed MANIFEST; only the MLflow
round trip of `heartml package` is skipped (the integration tests run the real command).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from heartml.onnx_export import pipeline_to_onnx
from heartml.serving.app import create_app
from heartml.serving.model_store import ModelStore
from heartml.settings import Settings
from heartml.spec import DatasetSpec
from serving_packages import fit, heart_spec, read_source, with_extra_column, write_package

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
ESTIMATORS: dict[str, Callable[[], Any]] = {
    "logistic_regression": lambda: LogisticRegression(max_iter=2000),
    "random_forest": lambda: RandomForestClassifier(
        n_estimators=20, max_depth=4, n_jobs=1, random_state=0
    ),
}


@pytest.fixture(scope="session")
def spec() -> DatasetSpec:
    return heart_spec()


@pytest.fixture(scope="session")
def heart_frame(spec: DatasetSpec) -> pd.DataFrame:
    """The Cleveland rows as the spec reads them (NaN where unknown) plus `target`."""
    return read_source(spec)


@pytest.fixture
def cleveland(heart_frame: pd.DataFrame) -> pd.DataFrame:
    # A fresh copy per test (overrides the root conftest's parse_uci frame): tests may edit it.
    return heart_frame.copy()


@pytest.fixture(scope="session")
def fitted(spec: DatasetSpec, heart_frame: pd.DataFrame) -> dict[str, tuple[Pipeline, bytes]]:
    """Per algorithm: the fitted pipeline and its ONNX export (fitted once per session)."""
    out = {}
    for algorithm, estimator in ESTIMATORS.items():
        pipeline = fit(spec, heart_frame, estimator())
        out[algorithm] = (pipeline, pipeline_to_onnx(pipeline).SerializeToString())
    return out


# A column the heart spec lacks, for packages whose contract is not the seed's 13 fields.
SMOKER = {
    "kind": "binary",
    "label": "Current smoker",
    "description": "Smokes now (1 = yes)",
    "codes": {0: "no", 1: "yes"},
    "required": True,
    "example": 1,
    "group": "Patient",
}


@pytest.fixture(scope="session")
def smoker_model(
    spec: DatasetSpec, heart_frame: pd.DataFrame
) -> tuple[DatasetSpec, Any, pd.DataFrame]:
    """A spec with one more required column (14 raw columns, `smoker` last), and a pipeline
    fitted on data that has it."""
    extended = with_extra_column(spec, "smoker", SMOKER)
    rng = np.random.default_rng(0)
    frame = heart_frame.assign(
        smoker=np.where(rng.random(len(heart_frame)) < 0.3 + 0.4 * heart_frame["target"], 1.0, 0.0)
    )
    return extended, fit(extended, frame, LogisticRegression(max_iter=2000)), frame


PackageFactory = Callable[..., Path]


@pytest.fixture
def make_package(
    fitted: dict[str, tuple[Pipeline, bytes]], spec: DatasetSpec, heart_frame: pd.DataFrame
) -> PackageFactory:
    """Write a complete, checksummed package under `packages_dir`; returns its folder."""

    def make(
        packages_dir: Path,
        version: str = "1",
        algorithm: str = "logistic_regression",
        threshold: float = 0.5,
    ) -> Path:
        pipeline, onnx_bytes = fitted[algorithm]
        return write_package(
            packages_dir,
            spec,
            pipeline,
            heart_frame,
            algorithm=algorithm,
            version=version,
            threshold=threshold,
            onnx_bytes=onnx_bytes,
        )

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


def wait_settled(client: TestClient, timeout: float = 10.0) -> None:
    """Wait until the first load attempt has ended (ready, or not ready for a stated reason)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/ready").json()["detail"] != "loading":
            return
        time.sleep(0.02)
    raise AssertionError(f"still loading after {timeout} s")


@pytest.fixture
def client_for() -> Iterator[Callable[..., TestClient]]:
    """A started TestClient (lifespan running) for settings; waits for the model if asked,
    else for the first load attempt to end."""
    opened: list[TestClient] = []

    def start(settings: Settings, *, ready: bool = True, store: ModelStore | None = None) -> Any:
        client = TestClient(create_app(settings, store=store), raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        if ready:
            wait_ready(client)
        else:  # the first load attempt has ended: its answer no longer depends on timing
            wait_settled(client)
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
