"""`heartml monitor check` as a CronJob runs it: the installed command, a real SQLite prediction
store holding the 303 Cleveland rows scored by a real package's pipeline, their true (or
flipped) outcomes recorded through the store's own feedback path. Oracles: sklearn's
roc_auc_score for the live AUC the message names; which columns were shifted for the drift."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from heartml.settings import Settings
from heartml.spec import TARGET, DatasetSpec
from heartml.store.engine import create_engine, upgrade
from heartml.store.outcomes import Outcome, record_outcomes
from serving_packages import fit, heart_spec, read_source, write_package
from stored_predictions import store_predictions

pytestmark = pytest.mark.monitoring

CV_LOW = 0.85  # the package's CV ROC-AUC interval, lower end (its model_config.yaml)
SHIFTED = {"chol": 120.0, "trestbps": 40.0}  # mg/dl, mm Hg added to every row


@pytest.fixture(scope="module")
def model() -> tuple[DatasetSpec, pd.DataFrame, Pipeline]:
    spec = heart_spec()
    frame = read_source(spec)
    return spec, frame, fit(spec, frame, LogisticRegression(max_iter=2000))


@pytest.fixture
def setup(
    project: Settings,
    model: tuple[DatasetSpec, pd.DataFrame, Pipeline],
    make_cli_env: Callable[..., dict[str, str]],
    heartml_cli: Callable[..., Any],
) -> Callable[..., Any]:
    """record(frame, outcomes, prefix, age_days=0) puts scored rows in the store;
    run(*args, **env) runs `heartml monitor check` on it."""
    spec, train, pipeline = model
    metrics = {"cv": {"roc_auc": {"mean": 0.9, "ci_low": CV_LOW, "ci_high": 0.95}}}
    package = write_package(project.root / "packages", spec, pipeline, train, metrics=metrics)
    store = project.root / "monitoring" / "predictions.db"
    engine = create_engine(f"sqlite:///{store}")
    upgrade(engine, create_parent=True)
    names = list(spec.raw_names)

    def record(
        frame: pd.DataFrame, outcomes: np.ndarray, prefix: str, age_days: float = 0
    ) -> np.ndarray:
        probabilities = pipeline.predict_proba(frame[names])[:, 1]
        ids = [f"{prefix}{i}" for i in range(len(frame))]
        inputs = frame[names].to_numpy(dtype=float).tolist()
        store_predictions(engine, spec, ids, inputs, probabilities=probabilities, age_days=age_days)
        record_outcomes(engine, [Outcome(i, 0, int(y)) for i, y in zip(ids, outcomes, strict=True)])
        return probabilities

    def run(*args: str, **env: str) -> Any:
        environment = make_cli_env(HEARTML_MODEL_PACKAGE=str(package), HEARTML_OFFLINE="1", **env)
        return heartml_cli("monitor", "check", *args, cwd=project.root, env=environment)

    return record, run, train


def flipped(outcomes: np.ndarray, share: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(outcomes), size=round(share * len(outcomes)), replace=False)
    changed = outcomes.copy()
    changed[chosen] = 1 - changed[chosen]
    return changed


def named_features(stdout: str) -> set[str]:
    return set(re.findall(r"^drift: (\w+):", stdout, flags=re.MULTILINE))


def test_clean_data_passes(setup: Any) -> None:
    record, run, train = setup
    record(train, train[TARGET].to_numpy(), "clean")
    result = run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: no drift or performance limit crossed" in result.stdout
    assert "303 predictions, 303 outcomes" in result.stdout


def test_drift_and_degradation_fail_naming_the_features_and_the_metric(setup: Any) -> None:
    record, run, train = setup
    shifted = train.copy()
    for column, amount in SHIFTED.items():
        shifted[column] = shifted[column] + amount
    outcomes = flipped(train[TARGET].to_numpy(), 0.4)
    probabilities = record(shifted, outcomes, "bad")
    expected_auc = roc_auc_score(outcomes, probabilities)
    assert expected_auc < CV_LOW  # the injected degradation is real

    result = run("--since", "7d")
    assert result.returncode == 1, result.stdout + result.stderr
    assert named_features(result.stdout) == set(SHIFTED)
    performance = [line for line in result.stdout.splitlines() if line.startswith("performance:")]
    assert len(performance) == 1
    assert f"live ROC-AUC {expected_auc:.3f} < {CV_LOW:.3f}" in performance[0]
    assert "303 outcomes" in performance[0]


def test_degradation_alone_names_only_the_metric(setup: Any) -> None:
    record, run, train = setup
    record(train, flipped(train[TARGET].to_numpy(), 0.4), "flip")
    result = run()
    assert result.returncode == 1, result.stdout + result.stderr
    assert named_features(result.stdout) == set()
    assert "performance: heart_disease_logistic_regression v1: live ROC-AUC" in result.stdout


def test_too_few_outcomes_or_old_predictions_raise_nothing(setup: Any) -> None:
    record, run, train = setup
    shifted = train.copy()
    shifted["chol"] += SHIFTED["chol"]
    record(shifted, flipped(train[TARGET].to_numpy(), 0.4), "old", age_days=10)
    record(train, train[TARGET].to_numpy(), "new")
    # The drifted, degraded rows are ten days old: a 7-day check does not see them...
    result = run("--since", "7d")
    assert result.returncode == 0, result.stdout + result.stderr
    # ... a 14-day one does; and with more outcomes required than there are, only drift counts.
    result = run("--since", "14d")
    assert result.returncode == 1 and "chol" in named_features(result.stdout)
    assert "performance:" in result.stdout
    result = run("--since", "2w", HEARTML_MONITOR_MIN_LABELS="1000")
    assert result.returncode == 1 and "performance:" not in result.stdout


def test_limits_come_from_the_settings(setup: Any) -> None:
    record, run, train = setup
    shifted = train.copy()
    shifted["chol"] += SHIFTED["chol"]
    record(shifted, train[TARGET].to_numpy(), "shift")
    assert "chol" in named_features(run().stdout)
    relaxed = run(HEARTML_MONITOR_PSI_MAX="100", HEARTML_MONITOR_KS_MAX="1")
    assert "chol" not in named_features(relaxed.stdout)


def test_a_bad_duration_or_missing_store_is_one_line_and_exit_2(setup: Any, tmp_path: Path) -> None:
    _, run, _ = setup
    result = run("--since", "7 days")
    assert result.returncode == 2
    assert "--since '7 days' is not a duration" in result.stderr
    result = run(HEARTML_STORE_URL=f"sqlite:///{tmp_path / 'none.db'}")
    assert result.returncode == 2 and "no such database" in result.stderr
    assert "Traceback" not in result.stderr
