"""Fitting and choosing a site calibration (heartml.calibration.fitting) and its gate, on
simulated sites. Oracles: statsmodels' GLM (Binomial) for the logistic and in-the-large fits,
scikit-learn for isotonic predictions, cross-validated predictions, Brier score and ROC-AUC."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import statsmodels.api as sm
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from heartml.calibration.document import clipped_logit
from heartml.calibration.fitting import (
    CV_FOLDS,
    CV_SEED,
    MIN_ISOTONIC_OUTCOMES,
    decline_reason,
    fit_map,
    fit_site,
)
from heartml.calibration.gate import MIN_BRIER_IMPROVEMENT, gate

pytestmark = pytest.mark.monitoring

FIRST = 100  # outcomes fitted on; the site's later outcomes judge the fit
SEEDS = (10, 20, 30, 40, 50)
SITES = {
    "prevalence 0.1": (0.1, None),
    "prevalence 0.8": (0.8, None),
    "prevalence 0.2, ST depression read 1 mm higher": (0.2, {"oldpeak": 1.0}),
}


@pytest.mark.parametrize("name", list(SITES))
def test_a_fit_on_100_outcomes_improves_the_brier_score_of_later_outcomes_and_keeps_the_auc(
    name: str, make_site: Callable[..., object]
) -> None:
    prevalence, shift = SITES[name]
    gains = []
    for seed in SEEDS:
        site = make_site(prevalence, seed=seed, shift=shift)
        p, y = site.probability, site.outcome  # type: ignore[attr-defined]
        chosen = fit_site(p[:FIRST], y[:FIRST]).chosen.fitted
        later_p, later_y = p[FIRST:], y[FIRST:]
        raw, calibrated = (
            brier_score_loss(later_y, later_p),
            brier_score_loss(later_y, chosen(later_p)),
        )
        assert calibrated <= raw + 1e-12, (seed, chosen)
        gains.append(raw - calibrated)
        # Monotone: the ranking, hence the AUC, is the model's.
        assert roc_auc_score(later_y, chosen(later_p)) == pytest.approx(
            roc_auc_score(later_y, later_p), abs=1e-12
        )
    assert np.mean(gains) >= 0.01, gains


@pytest.fixture
def hundred(make_site: Callable[..., object]) -> tuple[np.ndarray, np.ndarray]:
    site = make_site(0.8, seed=40)
    return site.probability[:FIRST], site.outcome[:FIRST]  # type: ignore[attr-defined]


def test_logistic_recalibration_is_the_glm_fit_on_the_clipped_logit(
    hundred: tuple[np.ndarray, np.ndarray],
) -> None:
    p, y = hundred
    glm = sm.GLM(y, sm.add_constant(clipped_logit(p)), family=sm.families.Binomial()).fit()
    fitted = fit_map("logistic", p, y)
    assert (fitted.intercept, fitted.slope) == pytest.approx(tuple(glm.params), abs=1e-5)


def test_recalibration_in_the_large_is_the_glm_intercept_with_the_logit_as_offset(
    hundred: tuple[np.ndarray, np.ndarray],
) -> None:
    p, y = hundred
    glm = sm.GLM(
        y, np.ones((len(y), 1)), family=sm.families.Binomial(), offset=clipped_logit(p)
    ).fit()
    fitted = fit_map("in_the_large", p, y)
    assert fitted.intercept == pytest.approx(float(glm.params[0]), abs=1e-9)
    assert fitted.slope == 1.0


def test_isotonic_predicts_as_scikit_learn_does(make_site: Callable[..., object]) -> None:
    site = make_site(0.3, n=1500, seed=7)
    p, y = site.probability, site.outcome  # type: ignore[attr-defined]
    fitted = fit_map("isotonic", p[:1000], y[:1000])
    oracle = IsotonicRegression(out_of_bounds="clip").fit(p[:1000], y[:1000])
    probe = np.r_[p[1000:], 0.0, 1.0]  # the ends: clipped like out_of_bounds="clip"
    assert np.max(np.abs(fitted(probe) - oracle.predict(probe))) <= 1e-12


def test_isotonic_is_a_candidate_only_from_its_minimum_outcomes(
    make_site: Callable[..., object],
) -> None:
    site = make_site(0.3, n=MIN_ISOTONIC_OUTCOMES, seed=7)
    p, y = site.probability, site.outcome  # type: ignore[attr-defined]
    assert "isotonic" in [c.method for c in fit_site(p, y).candidates]
    small = fit_site(p[:-1], y[:-1])
    assert "isotonic" not in [c.method for c in small.candidates]
    assert f"at least {MIN_ISOTONIC_OUTCOMES}" in small.dropped["isotonic"]


def test_the_cv_brier_score_is_scikit_learns_cross_validated_one(
    hundred: tuple[np.ndarray, np.ndarray],
) -> None:
    p, y = hundred
    fit = fit_site(p, y)
    folds = StratifiedKFold(n_splits=CV_FOLDS, shuffle=True, random_state=CV_SEED)
    model = LogisticRegression(C=np.inf, tol=1e-10, max_iter=10_000)
    oracle = cross_val_predict(
        model, clipped_logit(p)[:, None], y, cv=folds, method="predict_proba"
    )
    logistic = next(c for c in fit.candidates if c.method == "logistic")
    assert logistic.brier == pytest.approx(brier_score_loss(y, oracle[:, 1]), abs=1e-6)
    none = next(c for c in fit.candidates if c.method == "none")
    assert none.brier == pytest.approx(brier_score_loss(y, p), abs=1e-12)


def test_a_slope_at_or_below_zero_drops_the_logistic_candidate(
    hundred: tuple[np.ndarray, np.ndarray],
) -> None:
    p, y = hundred
    reversed_outcomes = 1.0 - y  # the model ranks these patients backwards
    fit = fit_site(p, reversed_outcomes)
    assert "logistic" not in [c.method for c in fit.candidates]
    assert "slope" in fit.dropped["logistic"] and "not a recalibration" in fit.dropped["logistic"]


def test_too_few_outcomes_and_one_outcome_only_are_declined_with_the_figures() -> None:
    assert decline_reason("north", np.r_[np.zeros(40), np.ones(59)], 100) == (
        "site 'north' has 99 outcomes; at least 100 are needed (--min-outcomes)"
    )
    assert decline_reason("north", np.zeros(120), 100) == (
        "site 'north': all 120 outcomes are 0; a calibration needs patients with and "
        "without the outcome"
    )
    assert "all 120 outcomes are 1" in str(decline_reason("north", np.ones(120), 100))
    assert "only 1 of 120 outcomes is 1" in str(
        decline_reason("north", np.r_[np.zeros(119), 1.0], 100)
    )
    assert decline_reason("north", np.r_[np.zeros(60), np.ones(60)], 100) is None


def test_the_gate_rejects_a_candidate_that_is_not_better_and_accepts_one_that_is(
    hundred: tuple[np.ndarray, np.ndarray],
) -> None:
    p, y = hundred
    fit = fit_site(p, y)
    chosen = fit.chosen.fitted
    # Served: the chosen map itself (in-sample, so at least as good as its CV figure).
    same = gate(y, chosen(p), "v1", fit.chosen.brier, chosen(p), chosen.method)
    assert not same.accept and f"less than the {MIN_BRIER_IMPROVEMENT}" in same.reason
    # Served: the raw model, far off at this site.
    better = gate(y, p, "the raw model", fit.chosen.brier, chosen(p), chosen.method)
    assert better.accept, better.reason
    assert better.figures["brier_improvement"] == pytest.approx(
        brier_score_loss(y, p) - fit.chosen.brier
    )


def test_the_gate_rejects_a_candidate_whose_auc_drops_beyond_noise(
    hundred: tuple[np.ndarray, np.ndarray],
) -> None:
    p, y = hundred
    coarse = np.round(p, 0) * 0.9 + 0.05  # two values only: the ranking within each is lost
    verdict = gate(y, p, "the raw model", 0.0, coarse, "coarse")
    assert not verdict.accept and "ROC-AUC" in verdict.reason
    assert verdict.figures["candidate_auc"] == pytest.approx(roc_auc_score(y, coarse))
