"""`heartml reproduce`: a registered version is rebuilt from its logged data hash, config and seed
and gives the logged metrics; when it cannot, the report names the input that differs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
import yaml
from harness.projects import Project, describe, new_project

from heartml.data.acquire import sha256_bytes

pytestmark = [pytest.mark.scale, pytest.mark.slow]

MODEL = "heart_disease_logistic_regression"


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A project on the embedded store after one `heartml track` (logistic regression only)."""
    project = Project(new_project(tmp_path_factory.mktemp("reproduce") / "project"))
    config_path = project.root / "configs" / "pipeline.yaml"
    raw = yaml.safe_load(config_path.read_text())
    raw["models"] = {"logistic_regression": raw["models"]["logistic_regression"]}
    config_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    result = project.run("heartml", "track")
    assert result.returncode == 0, describe(result)
    assert f"registered {MODEL} version 1" in result.stdout
    return project


def _reproduce(project: Project, version: str = "1") -> subprocess.CompletedProcess[str]:
    return project.run("heartml", "reproduce", "--model", MODEL, "--version", version)


def _client(project: Project) -> Any:
    import mlflow

    return mlflow.MlflowClient(tracking_uri=project.store_uri, registry_uri=project.store_uri)


def test_a_version_is_rebuilt_with_its_logged_metrics(tracked: Project) -> None:
    # The local config may have moved on since: the logged one is what gets used.
    config_path = tracked.root / "configs" / "pipeline.yaml"
    original = config_path.read_text()
    config_path.write_text(original.replace("seed: 42", "seed: 7"))
    try:
        result = _reproduce(tracked)
    finally:
        config_path.write_text(original)
    assert result.returncode == 0, describe(result)
    out = result.stdout
    assert "reproduced: " in out
    assert "metrics equal within 1e-09 (max |Δ| 0)" in out  # bit for bit on the same stack
    sha = sha256_bytes((tracked.root / "data" / "raw" / "processed.cleveland.data").read_bytes())
    assert sha in out  # the inputs table shows the data hash that was checked


def test_a_mismatch_names_the_inputs_that_differ(tracked: Project) -> None:
    """Tampered record: a metric and a library version no longer match what the rebuild gives."""
    client = _client(tracked)
    version = client.get_model_version(MODEL, "1")
    run = client.get_run(version.run_id)
    summary_path = (
        Path(unquote(urlparse(run.info.artifact_uri).path)) / "evaluation" / "summary.json"
    )
    original_summary = summary_path.read_text()
    original_version = run.data.tags["version.scikit-learn"]
    summary = json.loads(original_summary)
    summary["test_metrics"]["brier"] += 1e-6
    summary_path.write_text(json.dumps(summary))
    client.set_tag(version.run_id, "version.scikit-learn", "0.0.1")
    try:
        result = _reproduce(tracked)
    finally:
        summary_path.write_text(original_summary)
        client.set_tag(version.run_id, "version.scikit-learn", original_version)
    assert result.returncode == 1, describe(result)
    out = result.stdout
    assert "not reproduced: 1 of" in out
    assert "test.brier" in out
    assert f"scikit-learn differs: local {original_version}, logged 0.0.1" in out


def test_other_data_is_named_with_both_hashes(tracked: Project) -> None:
    raw_file = tracked.root / "data" / "raw" / "processed.cleveland.data"
    original = raw_file.read_bytes()
    changed = original.replace(b"63.0,1.0,1.0,145.0", b"64.0,1.0,1.0,145.0", 1)
    assert changed != original
    raw_file.write_bytes(changed)
    try:
        result = _reproduce(tracked)
    finally:
        raw_file.write_bytes(original)
    assert result.returncode == 1, describe(result)
    assert (
        f"data differs: local sha256 {sha256_bytes(changed)}, logged {sha256_bytes(original)}"
        in result.stdout
    )


def test_an_unknown_version_is_one_clear_line(tracked: Project) -> None:
    result = _reproduce(tracked, "99")
    assert result.returncode == 2
    assert f"no version 99 of {MODEL}" in result.stderr
    assert "Traceback" not in result.stderr
