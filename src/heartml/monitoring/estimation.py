"""Performance estimated before the outcomes arrive: confidence-based performance estimation
(CBPE, the idea behind NannyML's estimator).

If the model's probabilities are calibrated, a prediction with probability p is a positive with
probability p, so the confusion matrix and the ROC curve of a window have expected values
computable from the probabilities alone:

- expected accuracy = mean over rows of p (predicted positive) or 1 - p (predicted negative);
- expected ROC-AUC = sum over pairs i != j with s_i > s_j (ties: one half) of p_i (1 - p_j),
  divided by the expected number of (positive, negative) pairs, sum_{i != j} p_i (1 - p_j):
  the ROC curve drawn with each row's expected positive and negative weight. The same tie-group
  sums as the realised AUC (heartml.monitoring.performance), less each row's pair with itself.

Uncertainty: how far the realised figure of these rows may fall from the estimate, by sampling
the outcomes the probabilities imply (each y_i ~ Bernoulli(p_i), independently) and computing the
realised AUC and accuracy of each draw; the interval holds the central 95% of the draws. It
covers the label noise of a window of this size, under calibration: miscalibrated probabilities
(a model overconfident on new data) bias the estimate, which is why the service shows it beside
the realised figures wherever outcomes exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heartml.monitoring.performance import CONFIDENCE, TieGroups, auc_from_groups

DRAWS = 1000


@dataclass(frozen=True)
class Estimated:
    count: int
    roc_auc: float | None
    roc_auc_interval: tuple[float, float] | None
    accuracy: float | None
    accuracy_interval: tuple[float, float] | None


def expected_auc(probabilities: np.ndarray) -> float:
    """Expected ROC-AUC of rows scored (and ranked) by their calibrated probabilities."""
    p = np.asarray(probabilities, dtype=np.float64)
    groups = TieGroups.of(p)
    positive, negative = groups.sums(p), groups.sums(1.0 - p)
    below = np.cumsum(negative) - negative
    self_pairs = p * (1.0 - p)  # a row is never paired with itself (half of it sat in its tie)
    pairs = float(np.sum(positive * (below + 0.5 * negative)) - 0.5 * self_pairs.sum())
    total = float(p.sum() * (1.0 - p).sum() - self_pairs.sum())
    return pairs / total if total > 0 else float("nan")


def expected_accuracy(probabilities: np.ndarray, threshold: np.ndarray | float) -> float:
    p = np.asarray(probabilities, dtype=np.float64)
    return float(np.mean(np.where(p >= threshold, p, 1.0 - p)))


def simulated(
    probabilities: np.ndarray,
    threshold: np.ndarray | float,
    draws: int = DRAWS,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Realised AUC and accuracy of `draws` outcome vectors sampled from the probabilities
    (AUC NaN for a draw with one class)."""
    p = np.asarray(probabilities, dtype=np.float64)
    decided = p >= threshold
    groups = TieGroups.of(p)
    rng = np.random.default_rng(seed)
    aucs, accuracies = [], []
    block = max(1, 2_000_000 // max(len(p), 1))
    for start in range(0, draws, block):
        y = (rng.random((min(block, draws - start), len(p))) < p).astype(np.float64)
        aucs.append(auc_from_groups(groups.sums(y), groups.sums(1.0 - y)))
        accuracies.append(np.mean((y == 1) == decided, axis=1))
    return np.concatenate(aucs), np.concatenate(accuracies)


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float] | None:
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return None
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def estimate(
    probabilities: np.ndarray,
    threshold: np.ndarray | float,
    *,
    draws: int = DRAWS,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> Estimated:
    """CBPE's ROC-AUC and accuracy for these rows, each with its interval."""
    p = np.asarray(probabilities, dtype=np.float64)
    if len(p) == 0:
        return Estimated(0, None, None, None, None)
    auc = expected_auc(p)
    aucs, accuracies = simulated(p, threshold, draws, seed)
    return Estimated(
        count=len(p),
        roc_auc=None if np.isnan(auc) else auc,
        roc_auc_interval=None if np.isnan(auc) else _interval(aucs, confidence),
        accuracy=expected_accuracy(p, threshold),
        accuracy_interval=_interval(accuracies, confidence),
    )
