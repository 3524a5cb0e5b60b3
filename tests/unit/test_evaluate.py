"""The statistics the evaluation page shows: the best model's paired lead and the areas of curves.

Oracles: sklearn's own scores for the curve areas; the corrected paired t statistic written out
by hand with scipy's t distribution for the lead.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from heartml.evaluate import (
    average_precision_of_curve,
    leads_of_the_best,
    roc_auc_of_curve,
)

pytestmark = pytest.mark.task2


def _predictions(seed: int, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 120)
    p = np.clip(0.5 + (y - 0.5) * 0.4 + rng.normal(0, 0.25, len(y)), 0, 1)
    return y, (np.round(p, 1) if ties else p)  # rounding makes many tied scores


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_curve_areas_equal_sklearns_scores(seed: int, ties: bool) -> None:
    y, p = _predictions(seed, ties)
    fpr, tpr, _ = roc_curve(y, p)
    assert roc_auc_of_curve(fpr.tolist(), tpr.tolist()) == pytest.approx(roc_auc_score(y, p))
    precision, recall, _ = precision_recall_curve(y, p)
    assert average_precision_of_curve(precision.tolist(), recall.tolist()) == pytest.approx(
        average_precision_score(y, p)
    )


def test_lead_of_the_best_is_the_corrected_paired_t_test_by_hand() -> None:
    rng = np.random.default_rng(3)
    folds, repeats = 5, 3
    best = rng.uniform(0.85, 0.95, folds * repeats)
    other = best - rng.normal(0.01, 0.02, len(best))
    lead = leads_of_the_best(list(best), {"other": list(other)}, folds)["other"]

    diff = best - other
    n = len(diff)
    # Nadeau-Bengio: the variance of the mean grows by n_test/n_train = (1/k)/(1 - 1/k).
    error = math.sqrt((1 / n + (1 / folds) / (1 - 1 / folds)) * diff.var(ddof=1))
    t = diff.mean() / error
    assert lead["mean_difference"] == pytest.approx(diff.mean())
    assert lead["t"] == pytest.approx(t)
    assert lead["p_value"] == pytest.approx(stats.t.sf(t, n - 1))  # one-sided: best > other


def test_models_that_cannot_be_paired_are_left_out() -> None:
    best = [0.9, 0.91, 0.88, 0.92]
    leads = leads_of_the_best(
        best,
        {"same_folds": [0.8, 0.85, 0.83, 0.86], "other_folds": [0.8, 0.85], "none": []},
        cv_folds=2,
    )
    assert list(leads) == ["same_folds"]
    assert leads_of_the_best([0.9], {"one_fold": [0.8]}, cv_folds=5) == {}
