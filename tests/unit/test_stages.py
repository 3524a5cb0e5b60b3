"""The data and train stages end to end in a throwaway project: model folders with verified
metadata, evaluation_results.json, the evaluation report; pickles load only when their hash
matches."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from heartml.artifacts import ArtifactError, load_verified_pipeline
from heartml.choices import ALGORITHMS
from heartml.config import PipelineConfig
from heartml.errors import DataError
from heartml.settings import Settings
from heartml.stages import TrainStageResult, run_data, run_train
from oracles import CLEVELAND_SHA256

RAW_FEATURES = (
    "age",
    "sex",
    "cp",
    "trestbps",
    "chol",
    "fbs",
    "restecg",
    "thalach",
    "exang",
    "oldpeak",
    "slope",
    "ca",
    "thal",
)  # the seed's 13 columns, in the UCI file's order

pytestmark = [pytest.mark.task2, pytest.mark.slow]

METADATA_KEYS = {
    "algorithm",
    "estimator",
    "model_file",
    "model_sha256",
    "params",
    "cv_metrics",
    "test_metrics",
    "data_sha256",
    "config_hash",
    "seed",
    "threshold",
    "feature_names",
    "library_versions",
    "created_at",
}


@pytest.fixture(scope="module")
def stage_project(
    tmp_path_factory: pytest.TempPathFactory, project_factory, small_config: PipelineConfig
) -> tuple[Settings, TrainStageResult]:
    settings = project_factory(tmp_path_factory.mktemp("stages") / "project")
    run_data(settings, small_config)
    return settings, run_train(settings, small_config)


@pytest.fixture(scope="module")
def settings(stage_project: tuple[Settings, TrainStageResult]) -> Settings:
    return stage_project[0]


@pytest.fixture(scope="module")
def test_split(settings: Settings) -> pd.DataFrame:
    return pd.read_parquet(settings.processed_dir / "test.parquet")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_outputs_stay_inside_the_project(
    stage_project: tuple[Settings, TrainStageResult], tmp_path_factory: pytest.TempPathFactory
) -> None:
    _, result = stage_project
    base = tmp_path_factory.getbasetemp().resolve()
    assert result.models_dir.resolve().is_relative_to(base)
    assert result.evaluation_report.resolve().is_relative_to(base)


def test_every_model_folder_has_model_and_metadata(
    settings: Settings, small_config: PipelineConfig
) -> None:
    for algorithm in ALGORITHMS:
        directory = settings.models_dir / algorithm
        model_file = directory / "model.joblib"
        assert model_file.is_file(), algorithm
        metadata = json.loads((directory / "metadata.json").read_text())
        assert metadata.keys() >= METADATA_KEYS, METADATA_KEYS - metadata.keys()
        assert metadata["algorithm"] == algorithm
        assert metadata["model_sha256"] == sha256(model_file)
        assert metadata["data_sha256"] == CLEVELAND_SHA256
        assert metadata["config_hash"] == small_config.config_hash()
        assert metadata["spec_hash"] == settings.catalog.spec.spec_hash()
        assert metadata["seed"] == small_config.seed
        assert metadata["threshold"] == small_config.evaluation.threshold
        assert metadata["feature_names"]["raw"] == list(RAW_FEATURES)
        assert len(metadata["feature_names"]["engineered"]) == 19
        assert {"python", "scikit-learn", "numpy", "pandas"} <= metadata["library_versions"].keys()
        assert set(metadata["params"]) == set(small_config.models[algorithm].search_space)
        roc = metadata["cv_metrics"]["roc_auc"]
        assert roc["ci_low"] <= roc["mean"] <= roc["ci_high"]
    assert not list(settings.models_dir.rglob("*.tmp"))


def test_evaluation_results_document(
    stage_project: tuple[Settings, TrainStageResult], small_config: PipelineConfig
) -> None:
    settings, result = stage_project
    results = json.loads((settings.models_dir / "evaluation_results.json").read_text())
    assert results == json.loads(json.dumps(result.results, default=str))
    assert set(results["models"]) == set(ALGORITHMS)
    assert (results["n_train"], results["n_test"]) == (242, 61)
    assert results["data_sha256"] == CLEVELAND_SHA256
    assert results["config_hash"] == small_config.config_hash()
    assert results["config"] == small_config.model_dump(mode="json")
    cv_auc = {n: m["cv_metrics"]["roc_auc"]["mean"] for n, m in results["models"].items()}
    assert results["best_algorithm"] == max(cv_auc, key=cv_auc.__getitem__)
    for model in results["models"].values():
        assert set(model["cv_metrics"]) >= {"roc_auc", "pr_auc", "brier", "f1"}
        assert len(model["cv_fold_metrics"]["roc_auc"]) == 6
        assert model["test_curves"]["confusion_matrix"]["matrix"]


def test_evaluation_report_is_written(stage_project: tuple[Settings, TrainStageResult]) -> None:
    settings, result = stage_project
    index = settings.reports_dir / "evaluation" / "index.html"
    assert result.evaluation_report == index
    html = index.read_text(encoding="utf-8")
    assert len(html) > 1000
    for algorithm in ALGORITHMS:
        assert algorithm in html or algorithm.replace("_", " ") in html.lower()


def test_verified_pipeline_is_the_evaluated_model(
    settings: Settings, test_split: pd.DataFrame
) -> None:
    for algorithm in ALGORITHMS:
        directory = settings.models_dir / algorithm
        pipeline = load_verified_pipeline(directory)
        assert isinstance(pipeline, Pipeline)
        probabilities = pipeline.predict_proba(test_split[list(RAW_FEATURES)])[:, 1]
        assert np.isfinite(probabilities).all()
        recorded = json.loads((directory / "metadata.json").read_text())["test_metrics"]
        assert roc_auc_score(test_split["target"], probabilities) == pytest.approx(
            recorded["roc_auc"], abs=1e-12
        )


def test_models_are_reused_only_for_the_same_spec(
    settings: Settings, small_config: PipelineConfig
) -> None:
    """Adding a feature must retrain: a stale model.joblib would be registered and then fail
    ("X has 20 features, but ColumnTransformer is expecting 19")."""
    from heartml.stages import _reusable_training

    reused = _reusable_training(settings, small_config)
    assert reused is not None and set(reused["pipelines"]) == set(ALGORITHMS)
    spec_file = settings.catalog.spec_file
    original = spec_file.read_text()
    line = "  cp_exang_interaction: cp * exang\n"
    assert line in original
    try:
        spec_file.write_text(original.replace(line, line + "  bp_chol: trestbps * chol / 1000\n"))
        changed = Settings(root=settings.root, offline=True)
        assert "bp_chol" in changed.catalog.spec.features
        assert _reusable_training(changed, small_config) is None
    finally:
        spec_file.write_text(original)
    assert _reusable_training(Settings(root=settings.root, offline=True), small_config)


@pytest.fixture
def model_copy(settings: Settings, tmp_path: Path) -> Path:
    """A private copy of one model folder, for tests that damage it."""
    return Path(shutil.copytree(settings.models_dir / "logistic_regression", tmp_path / "model"))


def test_one_flipped_byte_is_refused(model_copy: Path) -> None:
    path = model_copy / "model.joblib"
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0x01
    path.write_bytes(bytes(content))
    with pytest.raises(ArtifactError, match="refusing to load"):
        load_verified_pipeline(model_copy)


class _Payload:
    """Unpickling this creates a directory: proof of whether a file was ever unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def test_a_substituted_pickle_is_never_unpickled(model_copy: Path, tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    joblib.dump(_Payload(marker), model_copy / "model.joblib")
    with pytest.raises(ArtifactError, match="refusing to load") as info:
        load_verified_pipeline(model_copy)
    assert "sha256" in str(info.value)
    assert not marker.exists(), "the tampered file was unpickled"
    # The payload is live: loading it without the check would have run it.
    joblib.load(model_copy / "model.joblib")
    assert marker.is_dir()


def test_missing_metadata_or_model_is_an_artifact_error(model_copy: Path) -> None:
    (model_copy / "model.joblib").unlink()
    with pytest.raises(ArtifactError, match="not found"):
        load_verified_pipeline(model_copy)
    (model_copy / "metadata.json").unlink()
    with pytest.raises(ArtifactError, match=r"metadata\.json not found") as info:
        load_verified_pipeline(model_copy)
    assert info.value.hint == "run `heartml train` first"  # advice for the CLI, not the message


def test_train_before_data_says_what_to_run(project: Settings, small_config) -> None:
    with pytest.raises(DataError, match=r"has no train\.parquet, test\.parquet") as info:
        run_train(project, small_config)
    assert info.value.hint is not None and "heartml data" in info.value.hint
    assert not project.models_dir.exists()
