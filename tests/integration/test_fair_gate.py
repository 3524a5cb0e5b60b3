"""The promotion gate when the data changed (issue 13): a new data version with feedback rows
(`heartml data --with-feedback` on a prediction store holding labelled predictions), and the
champion's configuration is retrained on the new data's folds and both models are compared on the same folds, through the seed's own
commands against the embedded store and a real `mlflow server` on PostgreSQL.

Oracle for the retrained figure: the champion's registered model (the artifact, not the logged
parameters the code under test reads), cloned unfitted by scikit-learn and scored with
sklearn.metrics on sklearn's RepeatedStratifiedKFold over the new training split. Oracle for the
recent labelled window: the feedback rows as this test wrote them, scored by the registered
candidate, the registered champion and that champion cloned and fitted on the new training
split, with sklearn's roc_auc_score and brier_score_loss."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from harness.mlflow_server import BACKENDS, MlflowServer
from harness.projects import Project, describe
from harness.registry import registry_client
from sklearn.base import clone
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold

from heartml.data.prepare import read_split
from heartml.settings import Settings
from heartml.spec import TARGET
from heartml.store.engine import create_engine, upgrade
from heartml.store.outcomes import Outcome, record_outcomes
from heartml.tracking.registry import Registry
from serving_packages import heart_spec, read_source
from stored_predictions import store_predictions

pytestmark = [pytest.mark.task3, pytest.mark.integration, pytest.mark.slow]

FEEDBACK_ROWS = 80  # the new data version: the shipped file plus 80 labelled predictions


def store_feedback(store: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """FEEDBACK_ROWS predictions in a SQLite prediction store (Cleveland rows a year older),
    each with its true outcome, recorded through the store's own feedback path; returns the
    inputs and outcomes as written."""
    spec = heart_spec()
    rows = read_source(spec).iloc[:FEEDBACK_ROWS]
    names = list(spec.raw_names)
    inputs = rows[names].copy()
    inputs["age"] += 1
    ids = [f"fb{i}" for i in range(len(rows))]
    engine = create_engine(f"sqlite:///{store}")
    upgrade(engine, create_parent=True)
    store_predictions(engine, spec, ids, inputs.to_numpy(dtype=float).tolist())
    outcomes = rows[TARGET].to_numpy()
    record_outcomes(engine, [Outcome(i, 0, int(y)) for i, y in zip(ids, outcomes, strict=True)])
    engine.dispose()
    return inputs, outcomes


def parent_runs(uri: str) -> list:
    client = registry_client(uri)
    experiment = client.get_experiment_by_name("heart-disease")
    assert experiment is not None, "no heart-disease experiment"
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string="tags.`heartml.run_type` = 'pipeline'",
        order_by=["attributes.start_time ASC"],
    )
    return list(runs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_new_data_retrains_the_champions_configuration_and_names_both_figures(
    make_project: Callable[..., Project],
    mlflow_server_factory: Callable[[], MlflowServer],
    backend: str,
    tmp_path: Path,
) -> None:
    uri = mlflow_server_factory().url if backend == "server" else None
    project = make_project(uri)
    first = project.track()
    assert "champion decision: promoted - no champion yet" in first.stdout

    store = tmp_path / "predictions.db"
    window_inputs, window_outcomes = store_feedback(store)
    env = project.env | {"HEARTML_STORE_URL": f"sqlite:///{store}"}
    fed = project.run("heartml", "data", "--with-feedback", env=env)
    assert fed.returncode == 0, describe(fed)
    second = project.run("python", "src/experiment_tracking.py", env=env)
    assert second.returncode == 0, describe(second)
    assert "retrained on the candidate's data and folds" in second.stdout, describe(second)

    settings = Settings(root=project.root, offline=True, mlflow_tracking_uri=project.store_uri)
    registry = Registry.connect(settings)
    before, after = parent_runs(project.store_uri)
    record_path = registry_client(project.store_uri).download_artifacts(
        after.info.run_id, "promotion_decision.json", str(tmp_path)
    )
    record = json.loads(Path(record_path).read_text())
    previous = record["previous_champion"]
    assert previous is not None and previous["version"] == "1"
    assert before.data.tags["data_sha256"] == previous["data_sha256"]
    assert after.data.tags["data_sha256"] != previous["data_sha256"]  # the data did change

    # The oracle: the champion's fitted pipeline, cloned unfitted, on the new data's folds.
    config = yaml.safe_load((project.root / "configs" / "pipeline.yaml").read_text())
    train, _ = read_split(settings.catalog)
    feedback = json.loads(settings.catalog.provenance_file.read_text())["feedback"]
    assert feedback["rows_from_feedback"] == FEEDBACK_ROWS
    assert after.data.tags["data_sha256"] == feedback["sha256"]
    assert len(train) > 242  # the source's training split plus its share of the feedback rows
    champion = registry.load_pipeline(f"models:/{previous['model_name']}/1")
    X, y = train[list(settings.catalog.spec.raw_names)], train[TARGET].to_numpy()
    splitter = RepeatedStratifiedKFold(
        n_splits=config["evaluation"]["cv_folds"],
        n_repeats=config["evaluation"]["cv_repeats"],
        random_state=config["seed"],
    )
    aucs = []
    for fit_rows, held_out in splitter.split(X, y):
        fitted = clone(champion).fit(X.iloc[fit_rows], y[fit_rows])
        aucs.append(roc_auc_score(y[held_out], fitted.predict_proba(X.iloc[held_out])[:, 1]))
    expected = float(np.mean(aucs))
    assert record["statistics"]["champion_retrained_cv_roc_auc"] == pytest.approx(
        expected, abs=1e-6
    )

    reason = record["reason"]
    assert reason == after.data.tags["promotion.reason"]
    candidate_auc = record["candidate"]["cv_roc_auc"]
    assert (
        f"CV ROC-AUC {candidate_auc:.4f} vs the champion's configuration "
        f"({previous['model_name']} v1) retrained on the candidate's data and folds "
        f"{expected:.4f} (on its own data sha256 {previous['data_sha256'][:12]}…: "
        f"{previous['roc_auc']:.4f})"
    ) in reason, reason
    assert f"same {len(aucs)} folds" in reason
    assert record["statistics"]["mean_roc_auc_difference"] == pytest.approx(
        candidate_auc - expected, abs=1e-5
    )

    # The recent labelled window (the 80 feedback predictions, all within the default 30 days):
    # information beside the folds, each model's figures equal sklearn's on the same rows.
    stats = record["statistics"]
    assert stats["window_rows"] == FEEDBACK_ROWS
    candidate_model = registry.load_pipeline(
        f"models:/{record['candidate']['model_name']}/{record['candidate']['version']}"
    )
    retrained_model = clone(champion).fit(X, y)
    shown = []
    for key, name, model in [
        ("candidate", "candidate", candidate_model),
        ("champion", "champion", champion),
        ("champion_retrained", "retrained champion", retrained_model),
    ]:
        p = model.predict_proba(window_inputs)[:, 1]
        auc, brier = roc_auc_score(window_outcomes, p), brier_score_loss(window_outcomes, p)
        assert stats[f"window_{key}_roc_auc"] == pytest.approx(auc, abs=1e-9), key
        assert stats[f"window_{key}_brier"] == pytest.approx(brier, abs=1e-9), key
        shown.append(f"{name} {auc:.4f}/{brier:.3f}")
    assert (
        f"on the recent labelled window ({FEEDBACK_ROWS} rows; information only) ROC-AUC/Brier "
        + ", ".join(shown)
    ) in reason, reason
