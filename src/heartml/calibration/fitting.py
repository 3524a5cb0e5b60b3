"""Fitting a site's candidate calibrations on its own outcomes and choosing one by CV Brier score.

Every candidate is fitted on the MODEL'S OWN probability (the store's raw_probability), never
on a probability an earlier calibration produced: a calibration replaces the previous one, it
is not stacked on it.

    none          nothing to fit
    in_the_large  the intercept a with logit(p) as an offset: the maximum-likelihood a solves
                  sum expit(logit p + a) = sum y, a monotone equation (scipy's brentq)
    logistic      intercept and slope on logit(p) (scikit-learn, unpenalised)
    isotonic      scikit-learn's IsotonicRegression, only from MIN_ISOTONIC_OUTCOMES outcomes

A logistic slope <= 0 reverses or erases the ranking: that candidate is dropped with the reason.

The choice: each candidate's out-of-fold probabilities come from a stratified K-fold (fixed
seed; K = CV_FOLDS, fewer when the rarer outcome has fewer members), pooled over the folds into
one Brier score and one log-loss per candidate. The lowest Brier score wins unless a simpler
method (METHODS order: none, in_the_large, logistic, isotonic) is within one standard error of
it (the one-SE rule of Breiman et al. 1984, with the standard error of the paired per-patient
difference in squared error): on 100 outcomes the methods often differ by less than their noise,
and the simpler map then generalises at least as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold

from heartml.calibration.document import (
    METHODS,
    PROBABILITY_FLOOR,
    CalibrationMethod,
    apply_method,
    clipped_logit,
)
from heartml.calibration.limits import MIN_ISOTONIC_OUTCOMES
from heartml.errors import HeartmlError

CV_FOLDS = 5
MIN_PER_OUTCOME = 2  # the fewest of each outcome a stratified 2-fold split can hold
CV_SEED = 0
# The in-the-large intercept is searched in [-BOUND, BOUND]: logit(p) is clipped to about
# +-13.8, so a root outside would put every patient's risk at the floor or the ceiling.
INTERCEPT_BOUND = 40.0
LOGISTIC_TOLERANCE = 1e-10  # lbfgs stopping tolerance: the fit agrees with a GLM to ~1e-7


class FitError(HeartmlError, ValueError):
    """A candidate cannot be fitted (the message says why); the candidate is dropped."""


@dataclass(frozen=True)
class FittedMap:
    """One candidate's parameters, as the SiteCalibration document stores them."""

    method: CalibrationMethod
    intercept: float = 0.0
    slope: float = 1.0
    isotonic_x: list[float] | None = None
    isotonic_y: list[float] | None = None

    def __call__(self, p: np.ndarray) -> np.ndarray:
        return apply_method(
            self.method, p, self.intercept, self.slope, self.isotonic_x, self.isotonic_y
        )


def fit_in_the_large(p: np.ndarray, y: np.ndarray) -> FittedMap:
    offset = clipped_logit(p)
    positives = float(np.sum(y))

    def score(a: float) -> float:
        return float(np.sum(1.0 / (1.0 + np.exp(-(offset + a))))) - positives

    intercept = brentq(score, -INTERCEPT_BOUND, INTERCEPT_BOUND, xtol=1e-12)
    return FittedMap("in_the_large", intercept=float(intercept))


def fit_logistic(p: np.ndarray, y: np.ndarray) -> FittedMap:
    model = LogisticRegression(C=np.inf, tol=LOGISTIC_TOLERANCE, max_iter=10_000)
    model.fit(clipped_logit(p)[:, None], y)
    intercept, slope = float(model.intercept_[0]), float(model.coef_[0, 0])
    if not slope > 0:
        raise FitError(
            f"logistic: fitted slope {slope:.3f} <= 0 (the model's ranking does not hold at "
            "this site): not a recalibration"
        )
    return FittedMap("logistic", intercept=intercept, slope=slope)


def fit_isotonic(p: np.ndarray, y: np.ndarray) -> FittedMap:
    model = IsotonicRegression(out_of_bounds="clip", increasing=True, y_min=0.0, y_max=1.0)
    model.fit(p, y)
    return FittedMap(
        "isotonic",
        isotonic_x=[float(v) for v in model.X_thresholds_],
        isotonic_y=[float(v) for v in model.y_thresholds_],
    )


def fit_map(method: CalibrationMethod, p: np.ndarray, y: np.ndarray) -> FittedMap:
    """The candidate `method` fitted on raw probabilities `p` and 0/1 outcomes `y`."""
    p, y = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if method == "none":
        return FittedMap("none")
    if method == "in_the_large":
        return fit_in_the_large(p, y)
    if method == "logistic":
        return fit_logistic(p, y)
    return fit_isotonic(p, y)


def candidate_methods(outcomes: int) -> list[CalibrationMethod]:
    return [m for m in METHODS if m != "isotonic" or outcomes >= MIN_ISOTONIC_OUTCOMES]


def cv_folds(y: np.ndarray) -> int:
    """CV_FOLDS, or the rarer outcome's count when smaller (each fold needs one of each)."""
    rarer = int(min(np.sum(y == 1), np.sum(y == 0)))
    return min(CV_FOLDS, rarer)


def pooled_log_loss(y: np.ndarray, probabilities: np.ndarray) -> float:
    # Clipped as the arithmetic clips: an isotonic step at 0 or 1 would make it infinite.
    clipped = np.clip(probabilities, PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)
    return float(log_loss(y, clipped, labels=[0, 1]))


@dataclass(frozen=True)
class Candidate:
    """A candidate that could be fitted: its map on all the outcomes and its CV figures."""

    fitted: FittedMap
    brier: float  # pooled out-of-fold
    log_loss: float  # pooled out-of-fold
    out_of_fold: np.ndarray = field(repr=False)

    @property
    def method(self) -> CalibrationMethod:
        return self.fitted.method


@dataclass(frozen=True)
class SiteFit:
    candidates: list[Candidate]  # METHODS order
    dropped: dict[str, str]  # method -> why it was left out
    chosen: Candidate
    choice: str  # why the chosen one, in words
    folds: int


def cross_validate(
    method: CalibrationMethod, p: np.ndarray, y: np.ndarray, folds: int
) -> Candidate:
    """`method` fitted on all rows, with its pooled out-of-fold Brier score and log-loss."""
    fitted = fit_map(method, p, y)
    out_of_fold = np.empty_like(p)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=CV_SEED)
    for train, test in splitter.split(p.reshape(-1, 1), y):
        try:
            fold_map = fit_map(method, p[train], y[train])
        except FitError:
            # A fold's slope <= 0: the procedure would have been refused there, so the fold
            # is scored as served without it (the raw model): the CV figure stays honest.
            fold_map = FittedMap("none")
        out_of_fold[test] = fold_map(p[test])
    brier = float(np.mean((out_of_fold - y) ** 2))
    return Candidate(fitted, brier, pooled_log_loss(y, out_of_fold), out_of_fold)


def choose(candidates: list[Candidate], y: np.ndarray) -> tuple[Candidate, str]:
    """The one-SE rule over the candidates (see the module docstring)."""
    best = min(candidates, key=lambda c: c.brier)
    best_errors = (best.out_of_fold - y) ** 2
    for candidate in candidates:  # simplest first
        difference = (candidate.out_of_fold - y) ** 2 - best_errors
        se = float(np.std(difference, ddof=1) / np.sqrt(len(y)))
        if candidate is best:
            return best, f"{best.method} has the lowest CV Brier score ({best.brier:.4f})"
        if float(np.mean(difference)) <= se:
            return candidate, (
                f"{candidate.method} (CV Brier {candidate.brier:.4f}) is within one standard "
                f"error ({se:.4f}) of the lowest, {best.method} ({best.brier:.4f}): the simpler "
                "method is kept"
            )
    raise AssertionError("the best candidate is among the candidates")  # pragma: no cover


def decline_reason(site: str, y: np.ndarray, minimum: int) -> str | None:
    """Why the site's outcomes cannot be fitted on (None: they can)."""
    outcomes, positives = len(y), int(np.sum(y))
    if outcomes < minimum:
        return (
            f"site {site!r} has {outcomes} outcomes; at least {minimum} are needed (--min-outcomes)"
        )
    if positives in (0, outcomes):
        value = 1 if positives else 0
        return (
            f"site {site!r}: all {outcomes} outcomes are {value}; a calibration needs "
            "patients with and without the outcome"
        )
    rarer = min(positives, outcomes - positives)
    if rarer < MIN_PER_OUTCOME:
        value = 1 if positives == rarer else 0
        return (
            f"site {site!r}: only {rarer} of {outcomes} outcomes is {value}; cross-validation "
            f"needs at least {MIN_PER_OUTCOME} of each"
        )
    return None


def fit_site(p: np.ndarray, y: np.ndarray) -> SiteFit:
    """Every candidate fitted and cross-validated on the site's outcomes, and the choice.
    The caller has checked that both outcomes are present, each at least twice."""
    p, y = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64)
    folds = cv_folds(y)
    candidates: list[Candidate] = []
    dropped: dict[str, str] = {}
    if len(y) < MIN_ISOTONIC_OUTCOMES:
        dropped["isotonic"] = (
            f"isotonic: needs at least {MIN_ISOTONIC_OUTCOMES} outcomes (found {len(y)})"
        )
    for method in candidate_methods(len(y)):
        try:
            candidates.append(cross_validate(method, p, y, folds))
        except FitError as exc:
            dropped[method] = str(exc)
    chosen, choice = choose(candidates, y)
    return SiteFit(candidates, dropped, chosen, choice, folds)
