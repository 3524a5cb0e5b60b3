"""CBPE (heartml.monitoring.estimation): the expected AUC by brute force, and the claim that the
estimate lies within its stated uncertainty of the realised AUC on held-out rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from heartml.monitoring.estimation import estimate as cbpe
from heartml.monitoring.estimation import (
    expected_accuracy,
    expected_auc,
    expit,
    recalibrations,
)
from heartml.monitoring.performance import logit
from heartml.spec import TARGET
from serving_packages import fit, heart_spec, read_source

pytestmark = pytest.mark.monitoring


def brute_force_expected_auc(q: np.ndarray, s: np.ndarray) -> float:
    """Sum over ordered pairs i != j of q_i (1 - q_j) [s_i > s_j] (+ half for ties), over the
    expected number of (positive, negative) pairs: written out pair by pair."""
    pairs = total = 0.0
    for i in range(len(q)):
        for j in range(len(q)):
            if i == j:
                continue
            weight = q[i] * (1 - q[j])
            total += weight
            pairs += weight * (1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0)
    return pairs / total


@pytest.mark.parametrize("decimals", [None, 1])
def test_expected_auc_equals_the_pairwise_sum(decimals: int | None) -> None:
    rng = np.random.default_rng(2)
    s = rng.random(60)
    if decimals is not None:
        s = np.round(s, decimals)
    q = expit(2 * logit(np.clip(s, 0.01, 0.99)) + 0.2)
    assert expected_auc(q, s) == pytest.approx(brute_force_expected_auc(q, s), abs=1e-12)
    assert expected_auc(s) == pytest.approx(brute_force_expected_auc(s, s), abs=1e-12)


def test_expected_figures_are_the_mean_of_sampled_outcomes() -> None:
    """With calibrated probabilities the estimate is what the realised figures average to."""
    rng = np.random.default_rng(4)
    p = rng.beta(1.5, 1.5, 400)
    decided = p >= 0.5
    aucs, accuracies = [], []
    for _ in range(3000):
        y = (rng.random(400) < p).astype(int)
        aucs.append(roc_auc_score(y, p))
        accuracies.append(np.mean((y == 1) == decided))
    assert expected_auc(p) == pytest.approx(np.mean(aucs), abs=2e-3)
    assert expected_accuracy(p, decided) == pytest.approx(np.mean(accuracies), abs=2e-3)
    figures = cbpe(p, decided, draws=2000)
    assert figures.calibrated_on == 0
    low, high = figures.roc_auc_interval
    assert low == pytest.approx(np.percentile(aucs, 2.5), abs=0.01)
    assert high == pytest.approx(np.percentile(aucs, 97.5), abs=0.01)


def test_vectorised_recalibrations_equal_sklearn_per_resample() -> None:
    rng = np.random.default_rng(8)
    p = rng.beta(2, 2, 150)
    y = (rng.random(150) < expit(0.5 + 0.6 * logit(p))).astype(int)
    counts = np.stack([np.bincount(rng.integers(0, 150, 150), minlength=150) for _ in range(5)])
    fits = recalibrations(y, logit(p), counts)
    for weights, (a, b) in zip(counts, fits, strict=True):
        oracle = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000)
        oracle.fit(logit(p)[:, None], y, sample_weight=weights)
        assert a == pytest.approx(oracle.intercept_[0], abs=1e-5)
        assert b == pytest.approx(oracle.coef_[0][0], abs=1e-5)
    separable = recalibrations(
        np.array([0, 0, 1, 1]), logit(np.array([0.1, 0.2, 0.8, 0.9])), np.ones((1, 4))
    )
    assert np.isnan(separable).all()


@pytest.fixture(scope="module")
def cleveland() -> pd.DataFrame:
    return read_source(heart_spec())


def test_cbpe_estimate_is_within_its_uncertainty_of_the_realised_auc(
    cleveland: pd.DataFrame,
) -> None:
    """50 resamples of the Cleveland rows: the project's logistic-regression pipeline is fitted
    on half; of the held-out half, one part has its outcomes (the labelled window CBPE
    recalibrates on), the other is estimated; sklearn's realised AUC of that part must lie in
    CBPE's 95% interval in at least 45 of the 50."""
    spec = heart_spec()
    inside, estimates, realised_aucs = 0, [], []
    for seed in range(50):
        train, held_out = train_test_split(
            cleveland, test_size=0.5, stratify=cleveland[TARGET], random_state=seed
        )
        labelled, unlabelled = train_test_split(
            held_out, test_size=0.5, stratify=held_out[TARGET], random_state=seed
        )
        model = fit(spec, train, LogisticRegression(max_iter=1000))
        columns = list(spec.raw_names)
        p_labelled = model.predict_proba(labelled[columns])[:, 1]
        p = model.predict_proba(unlabelled[columns])[:, 1]
        figures = cbpe(
            p,
            p >= 0.5,
            reference_outcomes=labelled[TARGET].to_numpy(),
            reference_probabilities=p_labelled,
            seed=seed,
        )
        assert figures.calibrated_on == len(labelled)
        realised_auc = roc_auc_score(unlabelled[TARGET], p)
        low, high = figures.roc_auc_interval
        inside += low <= realised_auc <= high
        estimates.append(figures.roc_auc)
        realised_aucs.append(realised_auc)
    assert inside >= 45, f"realised AUC inside the interval in {inside} of 50 resamples"
    assert abs(np.mean(estimates) - np.mean(realised_aucs)) < 0.03


def test_too_few_labelled_rows_leave_the_probabilities_as_they_are() -> None:
    rng = np.random.default_rng(1)
    p = rng.random(100)
    few = cbpe(
        p, p >= 0.5, reference_outcomes=np.array([0, 1] * 10), reference_probabilities=p[:20]
    )
    plain = cbpe(p, p >= 0.5)
    assert few.calibrated_on == 0 and few.roc_auc == plain.roc_auc
    empty = cbpe(np.zeros(0), np.zeros(0))
    assert empty.count == 0 and empty.roc_auc is None
