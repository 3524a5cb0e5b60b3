"""Shared tuning studies: the objective is the training stage's own CV score on the training split,
workers join one study, and the best trial becomes a config that `track` trains and registers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
import yaml

from heartml.config import PipelineConfig, load_config, parse_config
from heartml.settings import Settings
from heartml.stages import processed_data_sha256, run_data
from heartml.train import train_model
from heartml.tuning import (
    TuningError,
    best_config,
    default_storage,
    search_space,
    tune,
)

pytestmark = pytest.mark.scale


@pytest.fixture(scope="module")
def prepared(
    tmp_path_factory: pytest.TempPathFactory,
    project_factory: Callable[[Path], Settings],
    small_config: PipelineConfig,
) -> tuple[Settings, pd.DataFrame, pd.DataFrame]:
    settings = project_factory(tmp_path_factory.mktemp("tuning") / "project")
    (settings.resolved_root / "configs" / "pipeline.yaml").write_text(
        yaml.safe_dump(small_config.model_dump(mode="json"), sort_keys=False)
    )
    run_data(settings, small_config)
    from heartml.data.prepare import read_split

    train, test = read_split(settings.catalog)
    return settings, train, test


@pytest.mark.slow
def test_trial_values_are_the_training_stages_cv_scores(
    prepared: tuple[Settings, pd.DataFrame, pd.DataFrame],
    small_config: PipelineConfig,
    tmp_path: Path,
) -> None:
    """Every grid point once (GridSampler): the study's scores are GridSearchCV's, to the bit."""
    settings, train, test = prepared
    space = search_space(small_config, "logistic_regression")
    summary = tune(
        "logistic_regression",
        train,
        settings.catalog.spec,
        small_config,
        processed_data_sha256(settings),
        "grid",
        default_storage(tmp_path),
        n_trials=len(space["C"]),
        sampler=optuna.samplers.GridSampler(space, seed=0),
    )
    reference = train_model("logistic_regression", train, test, settings.catalog.spec, small_config)
    assert summary.trials_run == summary.trials_total == len(space["C"])
    assert summary.best_params == reference.summary.best_params
    assert summary.best_value == reference.summary.tuning.best_inner_score
    assert summary.scoring == small_config.tuning.scoring == "roc_auc"
    study = optuna.load_study(study_name="grid", storage=default_storage(tmp_path))
    for trial in study.trials:  # each trial records its worker and its fold scores
        assert trial.user_attrs["worker"].endswith(f":{os.getpid()}")
        assert len(trial.user_attrs["fold_scores"]) == small_config.tuning.cv_folds


@pytest.mark.slow
def test_a_study_refuses_workers_with_other_data_or_config(
    prepared: tuple[Settings, pd.DataFrame, pd.DataFrame],
    small_config: PipelineConfig,
    tmp_path: Path,
) -> None:
    settings, train, _ = prepared
    storage = default_storage(tmp_path)
    sha = processed_data_sha256(settings)
    spec = settings.catalog.spec
    tune("logistic_regression", train, spec, small_config, sha, "shared", storage, n_trials=1)
    with pytest.raises(TuningError, match="made with data_sha256"):
        tune(
            "logistic_regression",
            train,
            spec,
            small_config,
            "0" * 64,
            "shared",
            storage,
            n_trials=1,
        )
    other = parse_config({**small_config.model_dump(mode="json"), "seed": 7})
    with pytest.raises(TuningError, match="made with config_hash"):
        tune("logistic_regression", train, spec, other, sha, "shared", storage, n_trials=1)
    with pytest.raises(TuningError, match="made with algorithm"):
        tune("svm", train, spec, small_config, sha, "shared", storage, n_trials=1)
    with pytest.raises(TuningError, match="not in the config's models"):
        tune("knn", train, spec, small_config, sha, "other", storage, n_trials=1)


def test_best_config_fixes_the_params_and_searches_nothing(
    small_config: PipelineConfig, tmp_path: Path
) -> None:
    raw = best_config(small_config, "svm", {"C": 3.0, "gamma": "scale"})
    config = parse_config(raw)
    assert config.models["svm"].params == {
        **small_config.models["svm"].params,
        "C": 3.0,
        "gamma": "scale",
    }
    assert config.models["svm"].search_space == {}
    assert config.models["random_forest"] == small_config.models["random_forest"]
    assert config.seed == small_config.seed


def _tune_cli(root: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTML_")}
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "heartml"), "tune", *args],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_two_workers_share_a_sqlite_study_then_track_trains_the_best(
    prepared: tuple[Settings, pd.DataFrame, pd.DataFrame],
    heartml_cli: Callable[..., Any],
    make_cli_env: Callable[..., dict[str, str]],
) -> None:
    """The default storage (sqlite:///optuna.db in the project) with two processes at once,
    then the documented flow: --write-config, and `heartml --config FILE track`."""
    settings, _, _ = prepared
    root = settings.resolved_root
    # Only the tuned model in this project's config, so that `track` stays quick.
    config = load_config(root / "configs" / "pipeline.yaml")
    lean = config.model_dump(mode="json")
    lean["models"] = {"logistic_regression": lean["models"]["logistic_regression"]}
    lean["models"]["logistic_regression"]["search_space"] = {"C": [0.01, 0.03, 0.1, 0.3, 1.0]}
    (root / "configs" / "pipeline.yaml").write_text(yaml.safe_dump(lean, sort_keys=False))

    args = ("--algorithm", "logistic_regression", "--study", "team", "--n-trials", "4")
    workers = [_tune_cli(root, *args) for _ in range(2)]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    for worker, (stdout, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr
        assert "this worker ran 4 trials" in stdout
    assert (root / "optuna.db").is_file()
    study = optuna.load_study(study_name="team", storage=f"sqlite:///{root / 'optuna.db'}")
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert sorted(t.number for t in trials) == list(range(8))
    assert {w.pid for w in workers} == {
        int(t.user_attrs["worker"].rsplit(":", 1)[1]) for t in trials
    }

    exported = root / "configs" / "tuned.yaml"
    written = heartml_cli(
        "tune",
        *args[:4],
        "--n-trials",
        "0",
        "--write-config",
        str(exported),
        cwd=root,
        env=make_cli_env(),
    )
    assert written.returncode == 0, written.stderr
    tuned = load_config(exported)
    assert tuned.models["logistic_regression"].params["C"] == study.best_params["C"]
    assert tuned.models["logistic_regression"].search_space == {}

    tracked = heartml_cli(
        "--config", str(exported), "track", cwd=root, env=make_cli_env(), timeout=300
    )
    assert tracked.returncode == 0, tracked.stderr
    assert "registered heart_disease_logistic_regression version 1" in tracked.stdout
    import mlflow

    store = f"sqlite:///{root / 'mlflow.db'}"
    # Both URIs: a client's registry otherwise follows MLflow's process-wide one.
    client = mlflow.MlflowClient(tracking_uri=store, registry_uri=store)
    version = client.get_model_version("heart_disease_logistic_regression", "1")
    assert version.run_id is not None
    run = client.get_run(version.run_id)
    assert float(run.data.params["C"]) == study.best_params["C"]
    assert run.data.tags["config_hash"] == tuned.config_hash()
