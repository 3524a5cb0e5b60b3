"""The gate a site calibration passes before it is served: better than what is served now.

On the site's labelled predictions of the model version, the chosen candidate replaces the
currently served map (the active calibration, or the raw model) only if
1. its cross-validated Brier score is lower than the served map's Brier score by at least
   MIN_BRIER_IMPROVEMENT. The served map is fixed (it was fitted earlier, perhaps on some of
   these outcomes), so its figure is plain, not cross-validated: the comparison favours what
   is served, which is the side a gate should err on.
2. its ROC-AUC is not worse beyond noise: every method is monotone, so a candidate can lose
   AUC only through ties (isotonic steps, probabilities rounded to 0 or 1). A drop counts
   when it exceeds AUC_NOISE_Z standard errors of the paired difference (a bootstrap of the
   same resampled patients under both maps) plus AUC_TOLERANCE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heartml.monitoring.performance import (
    BOOTSTRAP_RESAMPLES,
    TieGroups,
    auc_from_groups,
    brier,
    resample_counts,
    roc_auc,
)

# The smallest gain worth a new version: 1% of the Brier score of a model that knows only the
# prevalence at a site with 25% outcomes (0.1875), about what separates the methods by chance
# on a few hundred outcomes. Smaller gains would churn versions on every run.
MIN_BRIER_IMPROVEMENT = 0.002
AUC_NOISE_Z = 1.96  # two-sided 95%: a drop beyond it is not noise
AUC_TOLERANCE = 1e-9  # float rounding in the logit/expit round trip is not a tie to count
AUC_BOOTSTRAP_SEED = 0


def paired_auc_se(y: np.ndarray, first: np.ndarray, second: np.ndarray) -> float:
    """Bootstrap standard error of AUC(first) - AUC(second) over the same resampled rows."""
    groups = [TieGroups.of(np.asarray(s, dtype=np.float64)) for s in (first, second)]
    differences = []
    # The same resampled rows (counts) under both maps.
    for counts in resample_counts(len(y), BOOTSTRAP_RESAMPLES, AUC_BOOTSTRAP_SEED):
        a, b = (auc_from_groups(g.sums(counts * y), g.sums(counts * (1 - y))) for g in groups)
        differences.append(a - b)
    difference = np.concatenate(differences)
    difference = difference[~np.isnan(difference)]  # resamples with one class only
    return float(np.std(difference, ddof=1)) if len(difference) > 1 else 0.0


@dataclass(frozen=True)
class GateVerdict:
    accept: bool
    reason: str
    figures: dict[str, float]


def gate(
    y: np.ndarray,
    served: np.ndarray,
    served_label: str,
    candidate_cv_brier: float,
    candidate: np.ndarray,
    candidate_label: str,
) -> GateVerdict:
    """`served`: the served map's probabilities for the site's outcomes `y`; `candidate`: the
    chosen candidate's (fitted on all of them), for the AUC; its CV Brier score decides."""
    y = np.asarray(y, dtype=np.float64)
    served_brier = brier(y, served)
    improvement = served_brier - candidate_cv_brier
    served_auc, candidate_auc = roc_auc(y, served), roc_auc(y, candidate)
    se = paired_auc_se(y, candidate, served)
    figures = {
        "served_brier": served_brier,
        "candidate_cv_brier": candidate_cv_brier,
        "brier_improvement": improvement,
        "min_brier_improvement": MIN_BRIER_IMPROVEMENT,
        "served_auc": served_auc,
        "candidate_auc": candidate_auc,
        "auc_difference_se": se,
    }
    comparison = (
        f"CV Brier {candidate_cv_brier:.4f} of {candidate_label} against {served_brier:.4f} of "
        f"{served_label}"
    )
    if improvement < MIN_BRIER_IMPROVEMENT:
        return GateVerdict(
            False,
            f"{comparison}: an improvement of {improvement:.4f}, less than the "
            f"{MIN_BRIER_IMPROVEMENT} the gate asks",
            figures,
        )
    drop = served_auc - candidate_auc
    if drop > AUC_NOISE_Z * se + AUC_TOLERANCE:
        return GateVerdict(
            False,
            f"{comparison} is better, but its ROC-AUC {candidate_auc:.4f} is {drop:.4f} below "
            f"{served_auc:.4f}, more than {AUC_NOISE_Z} x its standard error {se:.4f}",
            figures,
        )
    return GateVerdict(
        True,
        f"{comparison}: {improvement:.4f} better (the gate asks {MIN_BRIER_IMPROVEMENT}); "
        f"ROC-AUC {candidate_auc:.4f} against {served_auc:.4f}",
        figures,
    )
