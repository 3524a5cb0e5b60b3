"""The promotion gate when the data changed (issue 13): the champion's configuration is retrained
on the new data's folds and both models are compared on the same folds, through the seed's own
commands against the embedded store and a real `mlflow server` on PostgreSQL.

Oracle for the retrained figure: the champion's registered model (the artifact, not the logged
parameters the code under test reads), cloned unfitted by scikit-learn and scored with
sklearn.metrics on sklearn's RepeatedStratifiedKFold over the new training split."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from harness.mlflow_server import BACKENDS, MlflowServer
from harness.projects import Project, describe
from harness.registry import registry_client
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold

from heartml.data.prepare import read_split
from heartml.settings import Settings
from heartml.spec import TARGET
from heartml.tracking.registry import Registry

pytestmark = [pytest.mark.task3, pytest.mark.integration, pytest.mark.slow]

DROPPED_ROWS = 40  # the new data version: the shipped file without its last 40 records


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

    raw = project.root / "data" / "raw" / "processed.cleveland.data"
    lines = raw.read_bytes().splitlines(keepends=True)
    raw.write_bytes(b"".join(lines[:-DROPPED_ROWS]))
    env = project.env | {"HEARTML_DATA_SHA256": hashlib.sha256(raw.read_bytes()).hexdigest()}
    for command in (("heartml", "data"), ("python", "src/experiment_tracking.py")):
        result = project.run(*command, env=env)
        assert result.returncode == 0, describe(result)
    second = result
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
    assert len(train) < 242  # the new, smaller data version
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
