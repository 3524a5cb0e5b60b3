"""Realised performance of a window of labelled predictions: ROC-AUC with a bootstrap interval,
Brier score, calibration intercept and slope, precision and recall at the decision threshold.

ROC-AUC is the Mann-Whitney statistic: the share of (positive, negative) pairs whose positive
scored higher, a tie counting one half; this is the area under the ROC curve with ties drawn as
diagonal segments, exactly what scikit-learn's roc_auc_score computes. It is computed from the
scores' tie groups (`TieGroups`): with P_g and N_g the positive and negative weight in group g
(in increasing score order), AUC = sum_g P_g (N_<g + N_g / 2) / (P N). Weights make the
bootstrap cheap: a resample is a vector of multinomial counts over the same rows, so the scores
are sorted once and each of the resamples costs a few vector operations.

Calibration (Cox 1958; Van Calster et al. 2019): with L = logit(p),
- calibration intercept ("calibration in the large"): a in logit P(y=1) = a + L (slope fixed
  at 1); 0 when the average predicted risk matches the observed rate, > 0 when risks are too low;
- calibration slope: b in logit P(y=1) = a' + b L; 1 is ideal, < 1 means the predictions are too
  extreme (overfitting), > 1 too modest. (a', b) is also the logistic recalibration of the model.
Both are maximum-likelihood fits (Newton's method); None when the fit does not exist (a window
with one class, or separable scores) or does not converge.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_RESAMPLES = 1000
CONFIDENCE = 0.95
_EPS = 1e-12  # probabilities are clipped to [eps, 1 - eps] before the logit
LOG_LOSS_EPS = 1e-15  # log-loss clips probabilities to [eps, 1 - eps] (evaluation too)


@dataclass(frozen=True)
class TieGroups:
    """Scores sorted once, with the start of each run of equal scores."""

    order: np.ndarray  # argsort of the scores (stable)
    starts: np.ndarray  # index in sorted order where each tie group starts

    @classmethod
    def of(cls, scores: np.ndarray) -> TieGroups:
        order = np.argsort(scores, kind="stable")
        ordered = scores[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        return cls(order, starts)

    def sums(self, weights: np.ndarray) -> np.ndarray:
        """Per tie group, the sum of the rows' weights (last axis: rows)."""
        return np.add.reduceat(weights[..., self.order], self.starts, axis=-1)


def auc_from_groups(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """AUC from per-group positive and negative weights (last axis: groups, increasing score);
    NaN where either class has no weight."""
    below = np.cumsum(negative, axis=-1) - negative  # negative weight in lower-scored groups
    pairs = np.sum(positive * (below + 0.5 * negative), axis=-1)
    total = np.sum(positive, axis=-1) * np.sum(negative, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, pairs / np.where(total > 0, total, 1.0), np.nan)


def roc_auc(outcomes: np.ndarray, scores: np.ndarray) -> float:
    """ROC-AUC of 0/1 outcomes against scores; NaN when only one class is present."""
    y = np.asarray(outcomes, dtype=np.float64)
    groups = TieGroups.of(np.asarray(scores, dtype=np.float64))
    return float(auc_from_groups(groups.sums(y), groups.sums(1.0 - y)))


def resample_counts(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Blocks of bootstrap resamples of n rows as row counts ([resamples in block, n] float64):
    a resample drawn with replacement is a multinomial count per row, so a weighted statistic
    of the same rows is that resample's statistic. Memory stays bounded for big windows."""
    rng = np.random.default_rng(seed)
    block = max(1, 2_000_000 // n)
    for start in range(0, resamples, block):
        size = min(block, resamples - start)
        # By bincount: numpy's multinomial is ~10x slower with a thousand categories.
        drawn = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
        counts = np.bincount(drawn.ravel(), minlength=size * n).reshape(size, n)
        yield counts.astype(np.float64)


def _percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(values[~np.isnan(values)], [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_auc_interval(
    outcomes: np.ndarray,
    scores: np.ndarray,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the ROC-AUC (rows resampled with replacement; resamples
    with one class only are left out). None when the window has one class."""
    found = bootstrap_intervals(outcomes, scores, resamples, confidence, seed)
    return found["roc_auc"] if found else None


def bootstrap_intervals(
    outcomes: np.ndarray,
    probabilities: np.ndarray,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of ROC-AUC, Brier score and log-loss from the same
    resamples (resamples with one class only are left out of all three, as
    heartml.evaluate.bootstrap_ci does). Empty when the window has one class."""
    y = np.asarray(outcomes, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    n = len(y)
    if n == 0 or y.min() == y.max():
        return {}
    groups = TieGroups.of(p)
    squared = (p - y) ** 2
    clipped = np.clip(p, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    losses = -(y * np.log(clipped) + (1.0 - y) * np.log(1.0 - clipped))
    aucs, briers, log_losses = [], [], []
    for counts in resample_counts(n, resamples, seed):
        auc = auc_from_groups(groups.sums(counts * y), groups.sums(counts * (1.0 - y)))
        two_classes = ~np.isnan(auc)
        aucs.append(auc[two_classes])
        briers.append(counts[two_classes] @ squared / n)
        log_losses.append(counts[two_classes] @ losses / n)
    return {
        "roc_auc": _percentile_interval(np.concatenate(aucs), confidence),
        "brier": _percentile_interval(np.concatenate(briers), confidence),
        "log_loss": _percentile_interval(np.concatenate(log_losses), confidence),
    }


def brier(outcomes: np.ndarray, probabilities: np.ndarray) -> float:
    y = np.asarray(outcomes, dtype=np.float64)
    return float(np.mean((np.asarray(probabilities, dtype=np.float64) - y) ** 2))


def logit(probabilities: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(probabilities, dtype=np.float64), _EPS, 1.0 - _EPS)
    return np.log(p) - np.log1p(-p)


def _newton_logistic(
    y: np.ndarray, design: np.ndarray, offset: np.ndarray, iterations: int = 100
) -> np.ndarray | None:
    """Maximum-likelihood logistic regression y ~ design @ beta + offset; None when the
    estimate runs away (separation) or does not settle."""
    beta = np.zeros(design.shape[1])
    for _ in range(iterations):
        eta = design @ beta + offset
        mu = 0.5 * (1.0 + np.tanh(0.5 * eta))  # the logistic function, without overflow
        weight = mu * (1.0 - mu)
        gradient = design.T @ (y - mu)
        hessian = (design * weight[:, None]).T @ design
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:
            return None
        beta = beta + step
        if not np.all(np.isfinite(beta)) or np.max(np.abs(beta)) > 1e3:
            return None
        if np.max(np.abs(step)) < 1e-10:
            return beta
    return None


@dataclass(frozen=True)
class Calibration:
    intercept: float | None  # calibration in the large (slope fixed at 1)
    slope: float | None  # slope of the logistic recalibration
    recalibration_intercept: float | None  # its intercept


def calibration(outcomes: np.ndarray, probabilities: np.ndarray) -> Calibration:
    y = np.asarray(outcomes, dtype=np.float64)
    if len(y) == 0 or y.min() == y.max():
        return Calibration(None, None, None)
    x = logit(probabilities)
    ones = np.ones((len(y), 1))
    in_the_large = _newton_logistic(y, ones, x)
    recalibration = _newton_logistic(y, np.column_stack([ones[:, 0], x]), np.zeros(len(y)))
    return Calibration(
        None if in_the_large is None else float(in_the_large[0]),
        None if recalibration is None else float(recalibration[1]),
        None if recalibration is None else float(recalibration[0]),
    )


def precision_recall(outcomes: np.ndarray, predictions: np.ndarray) -> tuple[float, float]:
    """Precision and recall of 0/1 decisions; NaN where undefined (nothing predicted positive,
    no positive outcome)."""
    y = np.asarray(outcomes) == 1
    decided = np.asarray(predictions) == 1
    true_positives = np.count_nonzero(y & decided)
    predicted, positives = np.count_nonzero(decided), np.count_nonzero(y)
    precision = true_positives / predicted if predicted else float("nan")
    recall = true_positives / positives if positives else float("nan")
    return float(precision), float(recall)


@dataclass(frozen=True)
class Realised:
    count: int
    positives: int
    roc_auc: float | None
    roc_auc_interval: tuple[float, float] | None
    brier: float | None
    calibration: Calibration
    precision: float | None
    recall: float | None
    accuracy: float | None


def _number(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def realised(
    outcomes: np.ndarray,
    probabilities: np.ndarray,
    predictions: np.ndarray,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> Realised:
    """Every realised figure of a window (None where a figure is undefined for it)."""
    y = np.asarray(outcomes, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    n = len(y)
    if n == 0:
        return Realised(0, 0, None, None, None, Calibration(None, None, None), None, None, None)
    precision, recall = precision_recall(y, predictions)
    return Realised(
        count=n,
        positives=int(y.sum()),
        roc_auc=_number(roc_auc(y, p)),
        roc_auc_interval=bootstrap_auc_interval(y, p, resamples, seed=seed),
        brier=brier(y, p),
        calibration=calibration(y, p),
        precision=_number(precision),
        recall=_number(recall),
        accuracy=float(np.mean((np.asarray(predictions) == 1) == (y == 1))),
    )
