"""Local model artifacts: models/<algorithm>/ with the fitted pipeline and its metadata.

A joblib file is a pickle, so it is only ever loaded after its sha256 matches metadata.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
from sklearn.pipeline import Pipeline

from heartml.catalog import Catalog
from heartml.errors import ArtifactError
from heartml.provenance import git_commit, library_versions, read_json, sha256_file, write_json
from heartml.train import TrainingResult

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"


@dataclass(frozen=True)
class SavedModel:
    algorithm: str
    directory: Path
    metadata: dict[str, Any]


def evaluation_results(result: TrainingResult, root: Path) -> dict[str, Any]:
    return {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": result.spec.name,
        "data_sha256": result.data_sha256,
        "config_hash": result.config.config_hash(),
        "spec_hash": result.spec.spec_hash(),
        "config": result.config.model_dump(mode="json"),
        "seed": result.config.seed,
        "n_train": result.n_train,
        "n_test": result.n_test,
        "threshold": result.config.evaluation.threshold,
        "best_algorithm": result.best_algorithm,
        "selection_rule": "highest mean repeated-CV ROC-AUC on the training split",
        "feature_names": result.feature_names,
        "library_versions": library_versions(),
        "git_commit": git_commit(root),
        "models": {name: model.summary() for name, model in result.models.items()},
    }


def save_training(result: TrainingResult, catalog: Catalog, root: Path) -> dict[str, Any]:
    """Write every model folder and evaluation_results.json; return the results document."""
    results = evaluation_results(result, root)
    for algorithm, model in result.models.items():
        directory = catalog.model_dir(algorithm)
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{MODEL_FILE}.tmp"
        joblib.dump(model.pipeline, tmp)
        tmp.replace(directory / MODEL_FILE)
        summary = results["models"][algorithm]
        write_json(
            directory / METADATA_FILE,
            {
                "algorithm": algorithm,
                "estimator": summary["estimator"],
                "model_file": MODEL_FILE,
                "model_sha256": sha256_file(directory / MODEL_FILE),
                "params": summary["best_params"],
                "estimator_params": summary["estimator_params"],
                "cv_metrics": summary["cv_metrics"],
                "test_metrics": summary["test_metrics"],
                "data_sha256": results["data_sha256"],
                "config_hash": results["config_hash"],
                "spec_hash": results["spec_hash"],
                "seed": results["seed"],
                "threshold": results["threshold"],
                "feature_names": results["feature_names"],
                "library_versions": results["library_versions"],
                "git_commit": results["git_commit"],
                "created_at": results["created_at"],
            },
        )
    write_json(catalog.results_file, results)
    return results


def read_metadata(directory: Path) -> dict[str, Any]:
    path = directory / METADATA_FILE
    if not path.is_file():
        raise ArtifactError(f"{path} not found", hint="run `heartml train` first")
    metadata: dict[str, Any] = read_json(path)
    return metadata


def load_verified_pipeline(directory: Path) -> Pipeline:
    """Load models/<algorithm>/model.joblib only if its sha256 matches metadata.json."""
    metadata = read_metadata(directory)
    path = directory / metadata["model_file"]
    if not path.is_file():
        raise ArtifactError(f"{path} not found")
    actual = sha256_file(path)
    if actual != metadata["model_sha256"]:
        raise ArtifactError(
            f"{path} has sha256 {actual}, metadata.json records {metadata['model_sha256']}: "
            "refusing to load it"
        )
    pipeline: Pipeline = joblib.load(path)
    return pipeline
