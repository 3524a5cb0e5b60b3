"""Logging one pipeline execution: a parent run, and per model a nested run and a new version.

Each version gets the tags the gate and the registry listing read (`versions.VersionTag`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from heartml.choices import ALGORITHMS
from heartml.package.manifest import SPEC_FILE
from heartml.tracking.connection import mlflow_module
from heartml.tracking.model_format import log_pipeline_model
from heartml.tracking.registry import Registry
from heartml.tracking.versions import RegisteredVersion, VersionTag, cv_scheme, fold_tag

SUMMARY_ARTIFACT = "evaluation/summary.json"  # a model run's evaluation summary
PROVENANCE_ARTIFACT = "data/provenance.json"  # a model run's data provenance
FEATURES_ARTIFACT = "features.json"  # a model run's raw, engineered and model-input names


def _flat_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for name, stats in summary["cv_metrics"].items():
        for key, value in stats.items():
            metrics[f"cv_{name}_{key}"] = float(value)
    for name, value in summary["test_metrics"].items():
        metrics[f"test_{name}"] = float(value)
    for name, interval in summary["test_ci"].items():
        for key, value in interval.items():
            metrics[f"test_{name}_{key}"] = float(value)
    return metrics


def _common_tags(results: Mapping[str, Any], provenance: Mapping[str, Any]) -> dict[str, str]:
    versions = results["library_versions"]
    return {
        VersionTag.DATA_SHA256: results["data_sha256"],
        "data_source": str(provenance.get("source", "unknown")),
        "data_location": str(provenance.get("location", "")),
        VersionTag.CONFIG_HASH: results["config_hash"],
        "dataset": str(results.get("dataset", "")),
        "spec_hash": str(results.get("spec_hash", "")),
        "engineered_features": ",".join(results["feature_names"]["engineered"]),
        "git_commit": str(results.get("git_commit") or "unknown"),
        "seed": str(results["seed"]),
        "library_versions": json.dumps(versions, sort_keys=True),
        **{f"version.{name}": value for name, value in versions.items()},
    }


def _scheme(results: Mapping[str, Any]) -> str:
    evaluation = results["config"]["evaluation"]
    return cv_scheme(
        evaluation["cv_folds"], evaluation["cv_repeats"], results["seed"], results["n_train"]
    )


def log_pipeline_execution(
    registry: Registry,
    results: Mapping[str, Any],
    pipelines: Mapping[str, Any],
    example: pd.DataFrame,
    artifacts: Mapping[str, Path],
    provenance: Mapping[str, Any],
    spec_text: str,
    progress: Callable[[str], None] | None = None,
) -> tuple[str, list[RegisteredVersion]]:
    """One parent run; one nested run and one new registered version per model. Every run
    carries the dataset spec its models were trained with (SPEC_FILE): packaging and
    reproduce read it back, so a model never meets another version of its contract."""
    mlflow = mlflow_module()
    report = progress or (lambda _m: None)
    experiment_id = registry.ensure_experiment()
    tags = _common_tags(results, provenance)
    model_tags = {
        **tags,
        VersionTag.CV_SCHEME: _scheme(results),
        VersionTag.THRESHOLD: str(results["threshold"]),
    }
    registered: list[RegisteredVersion] = []
    with (
        registry.errors("logging the pipeline run"),
        mlflow.start_run(
            experiment_id=experiment_id,
            run_name=f"pipeline-{datetime.now(UTC):%Y%m%d-%H%M%S}",
            tags={**tags, "heartml.run_type": "pipeline"},
        ) as parent,
    ):
        mlflow.log_params(
            {
                "seed": results["seed"],
                "n_train": results["n_train"],
                "n_test": results["n_test"],
                "best_algorithm": results["best_algorithm"],
            }
        )
        _log_paths(registry, parent.info.run_id, artifacts)
        registry.client.log_text(parent.info.run_id, spec_text, SPEC_FILE)
        for algorithm in (a for a in ALGORITHMS if a in results["models"]):
            report(f"tracking {algorithm}")
            version = _log_model_run(
                registry,
                experiment_id,
                algorithm,
                results["models"][algorithm],
                pipelines[algorithm],
                example,
                model_tags,
                provenance,
            )
            registered.append(version)
            # Each model run carries the reports it was judged by, not only the parent.
            _log_paths(registry, version.run_id, artifacts)
            registry.client.log_text(version.run_id, spec_text, SPEC_FILE)
            registry.client.log_dict(
                version.run_id,
                {
                    "dataset": results.get("dataset"),
                    "spec_hash": results.get("spec_hash"),
                    **results["feature_names"],
                },
                FEATURES_ARTIFACT,
            )
        mlflow.set_tag(
            "registered_versions",
            json.dumps({v.model_name: v.version for v in registered}, sort_keys=True),
        )
        return parent.info.run_id, registered


def _log_paths(registry: Registry, run_id: str, artifacts: Mapping[str, Path]) -> None:
    for name, path in artifacts.items():
        if path.is_file():
            registry.client.log_artifact(run_id, str(path), artifact_path=name)
        elif path.is_dir():
            registry.client.log_artifacts(run_id, str(path), artifact_path=name)


def _log_model_run(
    registry: Registry,
    experiment_id: str,
    algorithm: str,
    summary: Mapping[str, Any],
    pipeline: Any,
    example: pd.DataFrame,
    tags: Mapping[str, str],
    provenance: Mapping[str, Any],
) -> RegisteredVersion:
    mlflow = mlflow_module()
    model_name = registry.settings.registered_model_name(algorithm)
    # The experiment must be named here too: a nested run otherwise lands in experiment 0
    # ("Default", artifacts under ./mlruns), away from its parent.
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=algorithm,
        nested=True,
        tags={**tags, VersionTag.ALGORITHM: algorithm},
    ) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in summary["estimator_params"].items()})
        mlflow.log_params({f"tuned.{k}": str(v) for k, v in summary["best_params"].items()})
        mlflow.log_metrics(_flat_metrics(summary))
        for step, value in enumerate(summary["cv_fold_metrics"]["roc_auc"]):
            mlflow.log_metric("cv_fold_roc_auc", value, step=step)
        mlflow.log_dict(dict(summary), SUMMARY_ARTIFACT)
        mlflow.log_dict(dict(provenance), PROVENANCE_ARTIFACT)
        version = log_pipeline_model(pipeline, example, model_name)
        cv_auc = float(summary["cv_metrics"]["roc_auc"]["mean"])
        folds = summary["cv_fold_metrics"]
        version_tags = {
            **{k: v for k, v in tags.items() if not k.startswith("version.")},
            VersionTag.ALGORITHM: algorithm,
            VersionTag.CV_ROC_AUC: f"{cv_auc:.6f}",
            VersionTag.TEST_ROC_AUC: f"{summary['test_metrics']['roc_auc']:.6f}",
            VersionTag.CV_BRIER: f"{summary['cv_metrics']['brier']['mean']:.6f}",
            VersionTag.CV_FOLD_ROC_AUC: fold_tag(folds["roc_auc"]),
            VersionTag.CV_FOLD_BRIER: fold_tag(folds["brier"]),
        }
        for key, value in version_tags.items():
            registry.client.set_model_version_tag(model_name, version, key, value)
        return RegisteredVersion(algorithm, model_name, version, run.info.run_id, cv_auc)
