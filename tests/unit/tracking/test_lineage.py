"""heartml.tracking.lineage: what a registered version was built from, read from a real
embedded MLflow store laid out as `heartml track` lays it out (parent run, nested model run)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from heartml.documents import DataProvenance, EvaluationResults, ModelSummary
from heartml.documents.data import LoggedData
from heartml.errors import DocumentError, TrackingError
from heartml.settings import Settings
from heartml.tracking.lineage import run_data_info, run_evaluation, version_lineage
from heartml.tracking.registry import Registry

pytestmark = pytest.mark.task3

SVM = "heart_disease_svm"
# What `heartml data` + `heartml train` wrote for a small run (tests/unit/documents/data).
WRITTEN = Path(__file__).resolve().parents[1] / "documents" / "data" / "small_run"
RESULTS: dict[str, Any] = json.loads((WRITTEN / "evaluation_results.json").read_text())
SUMMARY: dict[str, Any] = RESULTS["models"]["logistic_regression"]
PROVENANCE: dict[str, Any] = json.loads((WRITTEN / "provenance.json").read_text())


def logged_runs(
    settings: Settings,
    tmp_path: Path,
    provenance: bool = True,
    summary: dict[str, Any] = SUMMARY,
) -> dict[str, Any]:
    """A pipeline run with evaluation_results.json and a nested model run with its artifacts."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
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
        ("summary.json", summary),
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
    assert isinstance(lineage.summary, ModelSummary)
    assert lineage.summary.to_json_dict() == SUMMARY
    assert isinstance(lineage.provenance, DataProvenance)
    assert lineage.provenance.to_json_dict() == PROVENANCE
    assert isinstance(lineage.results, EvaluationResults)
    assert lineage.results.to_json_dict() == RESULTS
    assert lineage.results_path == "evaluation/evaluation_results.json"
    assert lineage.tags["data_sha256"] == "d" * 64


def test_run_evaluation_and_data_info(store_settings: Settings, tmp_path: Path) -> None:
    runs = logged_runs(store_settings, tmp_path, provenance=False)
    registry = Registry.connect(store_settings)
    evaluation = run_evaluation(registry, runs["child"])
    assert evaluation.summary.to_json_dict() == SUMMARY
    assert evaluation.threshold == 0.4  # from the run's tag
    # No provenance artifact: what the run's tags say.
    assert run_data_info(registry, runs["child"]) == LoggedData("d" * 64, "tagged source", None)


def test_data_info_prefers_the_logged_provenance(store_settings: Settings, tmp_path: Path) -> None:
    runs = logged_runs(store_settings, tmp_path)
    info = run_data_info(Registry.connect(store_settings), runs["child"])
    assert (info.sha256, info.source) == (PROVENANCE["sha256"], PROVENANCE["source"])
    assert info.provenance is not None and info.provenance.rows_train == PROVENANCE["rows_train"]


def test_a_malformed_summary_artifact_names_the_run_the_artifact_and_the_field(
    store_settings: Settings, register: Callable[..., str], tmp_path: Path
) -> None:
    broken = {**SUMMARY, "cv_metrics": {**SUMMARY["cv_metrics"], "roc_auc": {"mean": "high"}}}
    runs = logged_runs(store_settings, tmp_path, summary=broken)
    register("svm", run_id=runs["child"])
    registry = Registry.connect(store_settings)
    expected = (
        rf"^run {runs['child']}, artifact evaluation/summary.json: cv_metrics\.roc_auc\.mean: "
        r"input should be a valid number \(found 'high'\)"
    )
    with pytest.raises(DocumentError, match=expected):
        version_lineage(registry, SVM, "1")
    with pytest.raises(DocumentError, match=expected):
        run_evaluation(registry, runs["child"])


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
        run_evaluation(registry, "0" * 32)
