"""A real, embedded MLflow store per test: SQLite in the test's tmp folder, artifacts beside it.

One empty database is made per session and copied for each test (tests/unit/conftest.py).
Registry.connect points MLflow's process-wide URIs (and
MLFLOW_TRACKING_URI) at the test's store; they are put back afterwards, so no other test can
write into a deleted folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from heartml.settings import Settings
from oracles import REPO_ROOT


@pytest.fixture
def store_settings(tmp_path: Path, empty_store: Path, isolated_mlflow: None) -> Settings:
    """Settings of a project whose embedded store (mlflow.db + mlartifacts/) is fresh."""
    shutil.copyfile(empty_store, tmp_path / "mlflow.db")
    # The registered names come from the project's dataset spec.
    shutil.copytree(REPO_ROOT / "configs" / "datasets", tmp_path / "configs" / "datasets")
    return Settings(root=tmp_path)


@pytest.fixture
def register(store_settings: Settings, tmp_path: Path) -> Callable[..., str]:
    """Register a version of `<prefix>_<algorithm>` with tags; returns its version number."""
    from mlflow import MlflowClient

    uri = store_settings.tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    def make(algorithm: str, run_id: str | None = None, **tags: Any) -> str:
        name = store_settings.registered_model_name(algorithm)
        if not client.search_registered_models(f"name = '{name}'"):
            client.create_registered_model(name)
        source = (tmp_path / "sources" / name).as_uri()
        version = client.create_model_version(name, source=source, run_id=run_id)
        for key, value in {"algorithm": algorithm, **tags}.items():
            client.set_model_version_tag(name, version.version, key, str(value))
        return str(version.version)

    return make
