"""The everyday loop of the seed: a data scientist adds a feature by editing the dataset spec
ONLY, then runs data -> train -> track -> package -> serve; the feature reaches the MLflow run,
the package, the served model and its graph, which scores like the sklearn pipeline."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import joblib
import numpy as np
import pandas as pd
import pytest
from harness.projects import Project, describe, new_project
from harness.serve import launch_server

from heartml.onnx_runtime import OnnxModel

pytestmark = [pytest.mark.task2, pytest.mark.task4, pytest.mark.integration, pytest.mark.slow]

LAST_FEATURE_LINE = "  cp_exang_interaction: cp * exang\n"
NEW_FEATURE_LINE = "  bp_chol: trestbps * chol / 1000\n"


def test_a_feature_added_to_the_spec_reaches_every_stage(tmp_path: Path) -> None:
    project = Project(new_project(tmp_path / "project"))
    spec_file = project.root / "configs" / "datasets" / "uci_heart.yaml"
    text = spec_file.read_text()
    assert text.count(LAST_FEATURE_LINE) == 1
    spec_file.write_text(text.replace(LAST_FEATURE_LINE, LAST_FEATURE_LINE + NEW_FEATURE_LINE))

    for command in ("data", "train", "track", "package"):
        result = project.run("heartml", command)
        assert result.returncode == 0, describe(result)

    # The MLflow run of the champion logged the feature among its features.
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=project.store_uri, registry_uri=project.store_uri)
    (package,) = sorted((project.root / "packages").iterdir())
    manifest = json.loads((package / "MANIFEST.json").read_text())
    features_file = client.download_artifacts(manifest["run_id"], "features.json", str(tmp_path))
    logged = json.loads(Path(features_file).read_text())
    assert logged["engineered"][-1] == "bp_chol"
    assert client.get_run(manifest["run_id"]).data.tags["engineered_features"].endswith(",bp_chol")

    # The package's graph scores every row like the pipeline it was exported from (the joblib
    # file is read only after its sha256 matched the manifest, as the packager does).
    rows = pd.read_parquet(project.root / "data" / "processed" / "heart.parquet")
    joblib_file = package / "model.joblib"
    assert (
        hashlib.sha256(joblib_file.read_bytes()).hexdigest()
        == (manifest["files"]["model.joblib"]["sha256"])
    )
    pipeline = joblib.load(joblib_file)
    assert pipeline.named_steps["features"].get_feature_names_out()[-1] == "bp_chol"
    onnx = OnnxModel.from_path(package / "model.onnx")
    expected = pipeline.predict_proba(rows[list(onnx.columns)])[:, 1]
    assert len(rows) == 303
    assert np.max(np.abs(onnx.predict_proba(rows) - expected)) <= 1e-6

    # And the served model says it computes it.
    server = launch_server(tmp_path / "serve", packages=(package,))
    try:
        server.wait_ready()
        info = httpx.get(f"{server.url}/model/info", timeout=5).json()
        assert info["engineered_feature_names"][-1] == "bp_chol"
        assert len(info["engineered_feature_names"]) == 13 + 7
    finally:
        server.stop()
