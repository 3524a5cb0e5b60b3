"""Proof that heartml is general, not heart-shaped: scikit-learn's Wisconsin breast-cancer data,
declared by configs/datasets/breast_cancer.yaml and nothing else, goes through the whole
pipeline under its own names, and `heartml serve` serves it with its own fields."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import joblib
import pandas as pd
import pytest
from harness.projects import Project, describe, new_project
from harness.serve import launch_server
from sklearn.datasets import load_breast_cancer

from heartml.spec import load_spec

pytestmark = [pytest.mark.task2, pytest.mark.serving, pytest.mark.integration, pytest.mark.slow]

SPEC_FILE = Path(__file__).resolve().parents[2] / "configs" / "datasets" / "breast_cancer.yaml"
ALGORITHMS = ("random_forest", "logistic_regression", "gradient_boosting", "svm")


def test_breast_cancer_from_spec_to_served_model(tmp_path: Path) -> None:
    spec = load_spec(SPEC_FILE)
    project = Project(new_project(tmp_path / "project"))
    result = project.run("heartml", "--dataset", "breast_cancer", "pipeline", timeout=600)
    assert result.returncode == 0, describe(result)

    # Its own workspace and names; the heart-disease defaults are untouched.
    workspace = project.root / "workspaces" / "breast_cancer"
    assert not (project.root / "data" / "processed").exists()
    train = pd.read_parquet(workspace / "data" / "processed" / "train.parquet")
    test = pd.read_parquet(workspace / "data" / "processed" / "test.parquet")
    assert len(train) + len(test) == 569
    # The label, against scikit-learn's own copy: 212 malignant (target 0 there), 357 benign.
    assert int(train["target"].sum() + test["target"].sum()) == 212
    assert (workspace / "reports" / "evaluation" / "index.html").is_file()
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=project.store_uri, registry_uri=project.store_uri)
    names = {model.name for model in client.search_registered_models()}
    assert names == {f"breast_cancer_{a}" for a in ALGORITHMS}
    assert client.get_experiment_by_name("breast-cancer") is not None
    (package,) = (project.root / "packages").iterdir()
    assert package.name.startswith("breast_cancer_model_")

    # Served with its own contract: /docs, /model/info and /predict speak its 30 fields.
    server = launch_server(project.root, env={"HEARTML_DATASET": "breast_cancer"})
    try:
        server.wait_ready()
        schema = httpx.get(f"{server.url}/openapi.json", timeout=5).json()
        fields = schema["components"]["schemas"]["PatientRecord"]["properties"]
        assert list(fields) == list(spec.raw_names)
        info = httpx.get(f"{server.url}/model/info", timeout=5).json()
        assert info["name"].startswith("breast_cancer_")
        assert [f["name"] for f in info["fields"]] == list(spec.raw_names)
        seed = spec.example_record()  # the first sample of scikit-learn's file
        assert seed["mean_radius"] == load_breast_cancer().data[0][0]
        response = httpx.post(f"{server.url}/predict", json=seed, timeout=5)
        assert response.status_code == 200, response.text
        answered = response.json()
        heart_body = {"age": 63, "sex": 1, "cp": 1}
        refused = httpx.post(f"{server.url}/predict", json=heart_body, timeout=5)
        assert refused.status_code == 422
        assert {item["field"] for item in refused.json()["detail"]} >= {"age", "mean_radius"}
    finally:
        server.stop()

    # The answer is the sklearn pipeline's (model.joblib, read after its sha256 matched).
    manifest = json.loads((package / "MANIFEST.json").read_text())
    content = (package / "model.joblib").read_bytes()
    assert hashlib.sha256(content).hexdigest() == manifest["files"]["model.joblib"]["sha256"]
    pipeline = joblib.load(package / "model.joblib")
    expected = pipeline.predict_proba(pd.DataFrame([seed])[list(spec.raw_names)])[0, 1]
    assert abs(answered["probability"] - expected) <= 1e-5
    assert answered["probability"] > 0.5  # sample 0 is malignant in scikit-learn's data
