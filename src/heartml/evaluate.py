"""Metrics, confidence intervals and diagnostic curves. Pure functions of labels and probabilities."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from heartml.documents.evaluation import (
    CalibrationCurve,
    ConfusionMatrix,
    Curves,
    FoldSummary,
    Interval,
    PrCurve,
    RocCurve,
    SubgroupMetrics,
)
from heartml.monitoring.performance import LOG_LOSS_EPS

METRICS: tuple[str, ...] = (
    "roc_auc",
    "pr_auc",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "brier",
    "log_loss",
)


def classification_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """Every metric we report, from true labels and predicted probabilities of class 1."""
    predicted = (p >= threshold).astype(int)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "accuracy": float(accuracy_score(y, predicted)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS), labels=[0, 1])),
    }


def corrected_std_error(values: np.ndarray, test_fraction: float) -> float:
    """Standard error of a repeated-CV mean with the Nadeau-Bengio correction.

    Folds of repeated CV share training rows, so the plain std/sqrt(n) is far too small; the
    correction (1/n + n_test/n_train) keeps the interval honest.
    """
    n = len(values)
    if n < 2:
        return math.nan
    variance = float(np.var(values, ddof=1))
    return math.sqrt((1.0 / n + test_fraction / (1.0 - test_fraction)) * variance)


# Where each metric can lie: an interval is cut at these ends (a CV ROC-AUC near 1 with few
# folds otherwise gets an upper limit above 1, which no model can reach).
METRIC_RANGE: dict[str, tuple[float, float]] = {name: (0.0, 1.0) for name in METRICS} | {
    "log_loss": (0.0, math.inf)
}


def summarize_folds(
    values: list[float], test_fraction: float, bounds: tuple[float, float] = (0.0, 1.0)
) -> FoldSummary:
    """mean, std and a corrected 95% t-interval of one metric over repeated-CV folds, cut at
    the metric's `bounds`."""
    array = np.asarray(values, dtype=float)
    mean = float(array.mean())
    std = float(array.std(ddof=1)) if len(array) > 1 else 0.0
    error = corrected_std_error(array, test_fraction)
    half = float(stats.t.ppf(0.975, len(array) - 1) * error) if len(array) > 1 else 0.0
    low, high = bounds
    return FoldSummary(
        mean=mean, std=std, ci_low=max(mean - half, low), ci_high=min(mean + half, high)
    )


def corrected_paired_t_test(
    a: list[float], b: list[float], test_fraction: float
) -> dict[str, float]:
    """Is `a` better than `b` on the same folds? One-sided corrected resampled t-test."""
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    error = corrected_std_error(diff, test_fraction)
    mean = float(diff.mean())
    if not error or math.isnan(error):
        return {"mean_difference": mean, "t": math.nan, "p_value": 1.0 if mean <= 0 else 0.0}
    t = mean / error
    return {"mean_difference": mean, "t": float(t), "p_value": float(stats.t.sf(t, len(diff) - 1))}


def leads_of_the_best(
    best_folds: Sequence[float], other_folds: Mapping[str, Sequence[float]], cv_folds: int
) -> dict[str, dict[str, float]]:
    """Is the best model's lead over each other model more than fold-to-fold noise?

    Every model is scored on the same repeated k-fold CV folds (same seed), so the per-fold
    values pair up: the difference best - other on each fold cancels what the folds share (an
    easy fold is easy for every model). The mean of those differences is the lead; the one-sided
    corrected paired t-test above asks whether it is above zero, with each fold's test share
    1/k in the Nadeau-Bengio correction. A model whose fold list has another length (or fewer
    than two folds) cannot be paired and is left out rather than guessed.
    """
    return {
        name: corrected_paired_t_test(list(best_folds), list(folds), 1.0 / cv_folds)
        for name, folds in other_folds.items()
        if len(folds) == len(best_folds) and len(folds) >= 2
    }


def roc_auc_of_curve(fpr: Sequence[float], tpr: Sequence[float]) -> float:
    """Area under a ROC curve given by its corner points, as roc_auc_score computes it (trapezoids:
    a tie between the classes is a diagonal segment and counts one half)."""
    return float(np.trapezoid(tpr, fpr))


def average_precision_of_curve(precision: Sequence[float], recall: Sequence[float]) -> float:
    """Average precision of a precision-recall curve in sklearn's order (recall decreasing).

    sklearn's definition: sum over the steps of (change in recall) x precision at that step,
    no interpolation, so it equals average_precision_score on the predictions the curve came from.
    """
    return -float(np.sum(np.diff(np.asarray(recall, dtype=float)) * np.asarray(precision[:-1])))


def fast_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """The same numbers as classification_metrics, in plain numpy (no sklearn call overhead).

    Used for the bootstrap, where sklearn's per-call validation would dominate the run time;
    a unit test holds both to the same values.
    """
    y = y.astype(float)
    positives = y.sum()
    negatives = len(y) - positives
    predicted = p >= threshold
    tp = float((predicted & (y == 1)).sum())
    fp = float(predicted.sum()) - tp
    fn = positives - tp
    # ROC-AUC as the Mann-Whitney U statistic on average ranks (ties count one half).
    ranks = stats.rankdata(p)
    roc_auc = (ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    # Average precision: step-wise area under the precision-recall curve at distinct thresholds.
    order = np.argsort(-p, kind="mergesort")
    sorted_p, sorted_y = p[order], y[order]
    last_of_tie = np.r_[np.nonzero(np.diff(sorted_p))[0], len(p) - 1]
    true_pos = np.cumsum(sorted_y)[last_of_tie]
    precision_curve = true_pos / (last_of_tie + 1)
    recall_curve = true_pos / positives
    pr_auc = float(np.sum(np.diff(np.r_[0.0, recall_curve]) * precision_curve))
    clipped = np.clip(p, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / positives if positives else 0.0
    return {
        "roc_auc": float(roc_auc),
        "pr_auc": pr_auc,
        "accuracy": float((predicted == (y == 1)).mean()),
        "precision": precision,
        "recall": recall,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp else 0.0,
        "brier": float(np.mean((p - y) ** 2)),
        "log_loss": float(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))),
    }


def bootstrap_ci(
    y: np.ndarray, p: np.ndarray, threshold: float, seed: int, n_boot: int = 1000
) -> dict[str, Interval]:
    """95% percentile bootstrap interval of every metric on one fixed set (the test split)."""
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {name: [] for name in METRICS}
    n = len(y)
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        if len(np.unique(y[idx])) < 2:
            continue
        for name, value in fast_metrics(y[idx], p[idx], threshold).items():
            samples[name].append(value)
    return {
        name: Interval(
            ci_low=float(np.percentile(values, 2.5)), ci_high=float(np.percentile(values, 97.5))
        )
        for name, values in samples.items()
    }


def curves(y: np.ndarray, p: np.ndarray, threshold: float, bins: int) -> Curves:
    """ROC, PR and calibration curves and the confusion matrix."""
    fpr, tpr, _ = roc_curve(y, p)
    precision, recall, _ = precision_recall_curve(y, p)
    observed, predicted = calibration_curve(y, p, n_bins=bins, strategy="quantile")
    matrix = confusion_matrix(y, (p >= threshold).astype(int), labels=[0, 1])
    return Curves(
        roc=RocCurve(fpr=fpr.tolist(), tpr=tpr.tolist()),
        pr=PrCurve(precision=precision.tolist(), recall=recall.tolist()),
        calibration=CalibrationCurve(predicted=predicted.tolist(), observed=observed.tolist()),
        confusion_matrix=ConfusionMatrix(
            threshold=threshold, labels=["no disease", "disease"], matrix=matrix.tolist()
        ),
    )


def subgroup_metrics(
    y: np.ndarray, p: np.ndarray, groups: dict[str, np.ndarray], threshold: float
) -> dict[str, SubgroupMetrics]:
    """Metrics within each subgroup (e.g. sex=female); AUC is None where one class is absent."""
    result: dict[str, SubgroupMetrics] = {}
    for name, mask in groups.items():
        if mask.sum() == 0:
            continue
        ys, ps = y[mask], p[mask]
        predicted = (ps >= threshold).astype(int)
        both = len(np.unique(ys)) == 2
        result[name] = SubgroupMetrics(
            n=int(mask.sum()),
            prevalence=float(ys.mean()),
            roc_auc=float(roc_auc_score(ys, ps)) if both else None,
            accuracy=float(accuracy_score(ys, predicted)),
            recall=float(recall_score(ys, predicted, zero_division=0)),
            precision=float(precision_score(ys, predicted, zero_division=0)),
            brier=float(brier_score_loss(ys, ps)),
        )
    return result
