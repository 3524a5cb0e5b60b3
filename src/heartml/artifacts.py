"""Local model artifacts: models/<algorithm>/ with the fitted pipeline and its metadata, and
models/evaluation_results.json.

A joblib file is a pickle, so it is only ever loaded after its sha256 matches metadata.json.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import joblib
from sklearn.pipeline import Pipeline

from heartml.catalog import METADATA_FILE, MODEL_FILE, Catalog
from heartml.documents.evaluation import SELECTION_RULE, EvaluationResults, ModelMetadata
from heartml.errors import ArtifactError, DocumentError
from heartml.provenance import git_commit, library_versions, sha256_file
from heartml.train import TrainingResult


def evaluation_results(result: TrainingResult, root: Path) -> EvaluationResults:
    return EvaluationResults(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        dataset=result.spec.name,
        data_sha256=result.data_sha256,
        config_hash=result.config.config_hash(),
        spec_hash=result.spec.spec_hash(),
        config=result.config.model_dump(mode="json"),
        seed=result.config.seed,
        n_train=result.n_train,
        n_test=result.n_test,
        threshold=result.config.evaluation.threshold,
        best_algorithm=result.best_algorithm,
        selection_rule=SELECTION_RULE,
        feature_names=result.feature_names,
        library_versions=library_versions(),
        git_commit=git_commit(root),
        models={name: model.summary for name, model in result.models.items()},
    )


def model_metadata(results: EvaluationResults, algorithm: str, model_sha256: str) -> ModelMetadata:
    summary = results.models[algorithm]
    return ModelMetadata(
        algorithm=algorithm,
        estimator=summary.estimator,
        model_file=MODEL_FILE,
        model_sha256=model_sha256,
        params=summary.best_params,
        estimator_params=summary.estimator_params,
        cv_metrics=summary.cv_metrics,
        test_metrics=summary.test_metrics,
        data_sha256=results.data_sha256,
        config_hash=results.config_hash,
        spec_hash=results.spec_hash,
        seed=results.seed,
        threshold=results.threshold,
        feature_names=results.feature_names,
        library_versions=results.library_versions,
        git_commit=results.git_commit,
        created_at=results.created_at,
    )


def save_training(result: TrainingResult, catalog: Catalog, root: Path) -> EvaluationResults:
    """Write every model folder and evaluation_results.json; return the results document."""
    results = evaluation_results(result, root)
    for algorithm, model in result.models.items():
        path = catalog.model_file(algorithm)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        joblib.dump(model.pipeline, tmp)
        tmp.replace(path)
        model_metadata(results, algorithm, sha256_file(path)).write(
            catalog.metadata_file(algorithm)
        )
    results.write(catalog.results_file)
    return results


def read_metadata(directory: Path) -> ModelMetadata:
    path = directory / METADATA_FILE
    if not path.is_file():
        raise ArtifactError(f"{path} not found", hint="run `heartml train` first")
    try:
        return ModelMetadata.read(path)
    except DocumentError as exc:
        raise ArtifactError(str(exc), hint="run `heartml train` again") from None


def load_verified_pipeline(directory: Path) -> Pipeline:
    """Load models/<algorithm>/model.joblib only if its sha256 matches metadata.json."""
    metadata = read_metadata(directory)
    path = directory / metadata.model_file
    if not path.is_file():
        raise ArtifactError(f"{path} not found")
    actual = sha256_file(path)
    if actual != metadata.model_sha256:
        raise ArtifactError(
            f"{path} has sha256 {actual}, {METADATA_FILE} records {metadata.model_sha256}: "
            "refusing to load it"
        )
    pipeline: Pipeline = joblib.load(path)
    return pipeline
