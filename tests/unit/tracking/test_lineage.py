"""heartml.tracking.lineage: what a registered version was built from, read from a real
embedded MLflow store laid out as `heartml track` lays it out (parent run, nested model run)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from heartml.errors import TrackingError
from heartml.settings import Settings
from heartml.tracking.lineage import run_data_info, run_summary, version_lineage
from heartml.tracking.registry import Registry

pytestmark = pytest.mark.task3

SVM = "heart_disease_svm"
SUMMARY = {"algorithm": "svm", "cv_metrics": {"roc_auc": {"mean": 0.9}}}
PROVENANCE = {"source": "shipped copy", "rows": 303}
RESULTS = {"config": {"seed": 42}, "best_algorithm": "svm"}


def logged_runs(settings: Settings, tmp_path: Path, provenance: bool = True) -> dict[str, Any]:
    """A pipeline run with evaluation_results.json and a nested model run with its artifacts."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=settings.tracking_uri)
    experiment = Registry(client, settings).ensure_experiment()
    parent = client.create_run(experiment).info.run_id
    child = client.create_run(
        experiment,
        tags={
            "mlflow.parentRunId": parent,
            "threshold": "0.4",
            "data_sha256": "d" * 64,
            "data_source": "tagged source",
        },
    ).info.run_id
    files = tmp_path / "files"
    files.mkdir()
    for name, content in (
        ("evaluation_results.json", RESULTS),
        ("summary.json", SUMMARY),
        ("provenance.json", PROVENANCE),
    ):
        (files / name).write_text(json.dumps(content))
    client.log_artifact(parent, str(files / "evaluation_results.json"), "evaluation")
    client.log_artifact(child, str(files / "summary.json"), "evaluation")
    if provenance:
        client.log_artifact(child, str(files / "provenance.json"), "data")
    return {"parent": parent, "child": child}


def test_the_lineage_of_a_registered_version(
    store_settings: Settings, register: Callable[..., str], tmp_path: Path
) -> None:
    runs = logged_runs(store_settings, tmp_path)
    register("svm", run_id=runs["child"])
    lineage = version_lineage(Registry.connect(store_settings), SVM, "1")
    assert (lineage.run_id, lineage.parent_run_id) == (runs["child"], runs["parent"])
    assert lineage.summary == SUMMARY and lineage.provenance == PROVENANCE
    assert lineage.results == RESULTS
    assert lineage.results_path == "evaluation/evaluation_results.json"
    assert lineage.tags["data_sha256"] == "d" * 64


def test_run_summary_and_data_info(store_settings: Settings, tmp_path: Path) -> None:
    runs = logged_runs(store_settings, tmp_path, provenance=False)
    registry = Registry.connect(store_settings)
    assert run_summary(registry, runs["child"]) == {**SUMMARY, "threshold": 0.4}
    # No provenance artifact: what the run's tags say.
    assert run_data_info(registry, runs["child"]) == {"sha256": "d" * 64, "source": "tagged source"}


def test_a_missing_version_or_run_is_one_clear_error(
    store_settings: Settings, register: Callable[..., str]
) -> None:
    register("svm")  # registered without a run
    registry = Registry.connect(store_settings)
    with pytest.raises(TrackingError, match=f"^{SVM} version 1 has no run to rebuild it from$"):
        version_lineage(registry, SVM, "1")
    with pytest.raises(TrackingError, match=f"^no version 7 of {SVM} in the registry at "):
        version_lineage(registry, SVM, "7")
    with pytest.raises(TrackingError, match=r"^reading run 0+ failed on sqlite:///"):
        run_summary(registry, "0" * 32)
