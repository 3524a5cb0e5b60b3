"""Realised performance (heartml.monitoring.performance) against scikit-learn and SciPy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    brier_score_loss,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from heartml.monitoring.performance import (
    TieGroups,
    auc_from_groups,
    bootstrap_auc_interval,
    bootstrap_intervals,
    calibration,
    logit,
    realised,
    roc_auc,
)

pytestmark = pytest.mark.monitoring


def sample(n: int, seed: int, decimals: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 2, n)
    if decimals is not None:
        p = np.round(p, decimals)  # many ties
    return (rng.random(n) < p).astype(int), p


@pytest.mark.parametrize("n", [2, 10, 303, 5000])
@pytest.mark.parametrize("decimals", [None, 1, 2])
def test_roc_auc_equals_sklearn_with_and_without_ties(n: int, decimals: int | None) -> None:
    for seed in range(5):
        y, p = sample(n, seed, decimals)
        if y.min() == y.max():
            assert np.isnan(roc_auc(y, p))
            continue
        assert roc_auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_weighted_auc_is_the_auc_of_the_repeated_rows() -> None:
    """A bootstrap resample is row counts; its AUC from the tie-group sums equals sklearn's on
    the resample written out row by row."""
    y, p = sample(200, 3, decimals=2)
    groups = TieGroups.of(p)
    rng = np.random.default_rng(0)
    for _ in range(20):
        counts = np.bincount(rng.integers(0, 200, 200), minlength=200).astype(float)
        weighted = auc_from_groups(groups.sums(counts * y), groups.sums(counts * (1 - y)))
        index = np.repeat(np.arange(200), counts.astype(int))
        assert float(weighted) == pytest.approx(roc_auc_score(y[index], p[index]), abs=1e-12)


def test_bootstrap_interval_is_a_percentile_bootstrap() -> None:
    y, p = sample(100, 7)
    low, high = bootstrap_auc_interval(y, p, resamples=4000, seed=1)
    # The oracle: a plain percentile bootstrap with sklearn (other random draws, so the ends
    # agree to Monte Carlo precision only: ~0.0025 standard error of their difference here,
    # while a 90% interval's ends would lie ~0.014 inside the 95% ones).
    rng = np.random.default_rng(123)
    aucs = []
    for _ in range(4000):
        index = rng.integers(0, 100, 100)
        if y[index].min() != y[index].max():
            aucs.append(roc_auc_score(y[index], p[index]))
    oracle_low, oracle_high = np.percentile(aucs, [2.5, 97.5])
    assert low < roc_auc_score(y, p) < high
    assert low == pytest.approx(oracle_low, abs=0.008)
    assert high == pytest.approx(oracle_high, abs=0.008)
    assert bootstrap_auc_interval(np.ones(10), p[:10]) is None


@pytest.mark.parametrize("n", [12, 150])
def test_bootstrap_intervals_are_sklearn_on_the_same_resamples(n: int) -> None:
    """The same draws written out row by row (the resamples are rng.integers(0, n, (R, n)) of
    the seed's generator), scored with scikit-learn: equal ends, one-class resamples left out."""
    y, p = sample(n, 5)
    p[:3] = [0.0, 1.0, 0.5]  # log-loss clips, AUC ties
    resamples = 300
    found = bootstrap_intervals(y, p, resamples, seed=4)
    draws = np.random.default_rng(4).integers(0, n, size=(resamples, n))
    oracle: dict[str, list[float]] = {"roc_auc": [], "brier": [], "log_loss": []}
    for index in draws:
        if y[index].min() == y[index].max():
            continue
        oracle["roc_auc"].append(roc_auc_score(y[index], p[index]))
        oracle["brier"].append(brier_score_loss(y[index], p[index]))
        clipped = np.clip(p[index], 1e-15, 1 - 1e-15)
        oracle["log_loss"].append(log_loss(y[index], clipped, labels=[0, 1]))
    assert set(found) == set(oracle)
    for name, values in oracle.items():
        assert found[name] == pytest.approx(tuple(np.percentile(values, [2.5, 97.5])), abs=1e-12)
    assert bootstrap_intervals(np.zeros(8), p[:8]) == {}


def test_brier_precision_recall_accuracy_equal_sklearn() -> None:
    y, p = sample(500, 11)
    decided = (p >= 0.4).astype(int)
    figures = realised(y, p, decided, resamples=10)
    assert figures.brier == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert figures.precision == pytest.approx(precision_score(y, decided), abs=1e-12)
    assert figures.recall == pytest.approx(recall_score(y, decided), abs=1e-12)
    assert figures.accuracy == pytest.approx(np.mean(y == decided), abs=1e-12)
    assert figures.count == 500 and figures.positives == int(y.sum())


def test_calibration_slope_and_intercepts_equal_the_maximum_likelihood_fits() -> None:
    rng = np.random.default_rng(5)
    x_true = rng.normal(0, 2, 2000)
    y = (rng.random(2000) < expit(0.3 + 0.7 * x_true)).astype(int)
    p = expit(x_true)  # the "model": too extreme (slope 0.7) and too low (intercept 0.3)
    figures = calibration(y, p)
    fit = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(logit(p)[:, None], y)
    assert figures.slope == pytest.approx(fit.coef_[0][0], abs=1e-5)
    assert figures.recalibration_intercept == pytest.approx(fit.intercept_[0], abs=1e-5)
    # Calibration in the large: the a that solves sum(y - expit(a + logit p)) = 0.
    offset = logit(p)
    oracle = brentq(lambda a: float(np.sum(y - expit(a + offset))), -10, 10, xtol=1e-14)
    assert figures.intercept == pytest.approx(oracle, abs=1e-8)
    assert 0.55 < figures.slope < 0.85 and figures.intercept > 0


def test_undefined_figures_are_none() -> None:
    p = np.array([0.1, 0.2, 0.8, 0.9])
    one_class = realised(np.zeros(4), p, np.zeros(4), resamples=10)
    assert one_class.roc_auc is None and one_class.roc_auc_interval is None
    assert one_class.calibration.slope is None and one_class.precision is None
    separable = calibration(np.array([0, 0, 1, 1]), p)  # no maximum-likelihood fit exists
    assert separable.slope is None and separable.intercept is not None
    empty = realised(np.zeros(0), np.zeros(0), np.zeros(0))
    assert empty.count == 0 and empty.roc_auc is None and empty.brier is None
