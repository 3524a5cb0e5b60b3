"""The promotion gate: may this candidate replace the champion? Pure: plain data in, a decision out.

On the same data and the same CV folds, a candidate replaces the champion only if all three hold:
- its mean CV ROC-AUC gain reaches `min_improvement` (a gain too small to matter is not worth
  a new model, however consistent it is);
- the gain is supported by the folds: one-sided Nadeau-Bengio corrected paired t-test of the
  fold differences with p < `p_value`. When every difference is the same the test has no
  variance to judge by and is undefined (not p = 0): that is no support;
- its mean CV Brier score is not worse than the champion's by more than `max_brier_increase`
  (a clinician reads the probability, so calibration may not be traded for ranking).
When the candidate was trained on other data than the champion (another data sha256), the
champion's own figures are not comparable; the caller retrains the champion's configuration on the
candidate's data and folds (heartml.retrain) and passes that evidence as `retrained`: the same
three rules then judge both on the same folds, and the reason names both figures. Without it
(the champion's configuration cannot be rebuilt) the candidate replaces the champion, and the
reason says why.
Every decision carries its figures and the thresholds it was judged by. Beside the folds, the
caller may pass how both models score the recent labelled predictions (`window`, from the
prediction store): recorded and named in the reason, as information only; the folds decide.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TypedDict

import numpy as np

from heartml.config import PromotionConfig
from heartml.documents.base import JsonObject
from heartml.tracking.versions import (
    FOLD_DECIMALS,
    ChampionInfo,
    RegisteredVersion,
    VersionTag,
    parse_folds,
    scheme_folds,
)

FORCED = "forced with --force-champion"
NO_CHAMPION = "no champion yet"
ROLLBACK = "rollback to the previous champion"


@dataclass(frozen=True)
class FoldEvidence:
    """What the gate compares, read from a version's tags."""

    data_sha256: str | None
    cv_scheme: str | None
    roc_auc: tuple[float, ...]
    brier: tuple[float, ...]

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> FoldEvidence:
        return cls(
            data_sha256=tags.get(VersionTag.DATA_SHA256),
            cv_scheme=tags.get(VersionTag.CV_SCHEME),
            roc_auc=parse_folds(tags.get(VersionTag.CV_FOLD_ROC_AUC)),
            brier=parse_folds(tags.get(VersionTag.CV_FOLD_BRIER)),
        )


# The models scored on the recent labelled window: statistics key part -> name in the reason.
WINDOW_MODELS = {
    "candidate": "candidate",
    "champion": "champion",
    "champion_retrained": "retrained champion",
}
NO_WINDOW = "no labelled window"


@dataclass(frozen=True)
class WindowEvidence:
    """ROC-AUC (None with one class only) and Brier score of the gate's models on the labelled
    predictions of the recent monitoring window; `rows` = 0: there was no such window."""

    rows: int = 0
    roc_auc: Mapping[str, float | None] = field(default_factory=dict)  # by WINDOW_MODELS key
    brier: Mapping[str, float] = field(default_factory=dict)

    def statistics(self) -> dict[str, float | None]:
        stats: dict[str, float | None] = {"window_rows": self.rows}
        for model in (m for m in WINDOW_MODELS if m in self.brier):
            stats[f"window_{model}_roc_auc"] = self.roc_auc.get(model)
            stats[f"window_{model}_brier"] = self.brier[model]
        return stats

    def clause(self) -> str:
        if not self.rows or not self.brier:
            return NO_WINDOW
        figures = ", ".join(
            f"{name} {_figure(self.roc_auc.get(model))}/{self.brier[model]:.3f}"
            for model, name in WINDOW_MODELS.items()
            if model in self.brier
        )
        return f"on the recent labelled window ({self.rows} rows; information only) ROC-AUC/Brier {figures}"


def _figure(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.4f}"


class DecisionRecord(TypedDict):
    """A promotion decision as recorded in MLflow (with `decided_at` added there)."""

    promote: bool
    reason: str
    candidate: JsonObject | None  # RegisteredVersion's fields
    previous_champion: JsonObject | None  # ChampionInfo's fields
    statistics: dict[str, float | None]
    thresholds: JsonObject | None  # PromotionConfig's fields


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str
    candidate: RegisteredVersion | None
    previous: ChampionInfo | None
    # The figures behind the decision (None where a figure is undefined, e.g. p with no variance).
    statistics: dict[str, float | None] = field(default_factory=dict)
    thresholds: PromotionConfig | None = None  # None only for a rollback (no gate involved)

    def record(self) -> DecisionRecord:
        """The decision as JSON-ready data (the registry adds when it was recorded)."""
        return {
            "promote": self.promote,
            "reason": self.reason,
            "candidate": asdict(self.candidate) if self.candidate else None,
            "previous_champion": self.previous.as_dict() if self.previous else None,
            "statistics": self.statistics,
            "thresholds": self.thresholds.model_dump() if self.thresholds else None,
        }


def _short(sha: str | None) -> str:
    return f"{str(sha or '')[:12]}…"


def _mean(values: tuple[float, ...]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _fold_differences(candidate: tuple[float, ...], champion: tuple[float, ...]) -> np.ndarray:
    # At the resolution the scores were recorded with: below it, a "difference" is float noise
    # and would give the t-test a spurious, tiny variance.
    return np.round(np.subtract(candidate, champion), FOLD_DECIMALS)


def _paired_test(diff: np.ndarray, folds: int) -> dict[str, float | None]:
    """Mean difference, t and one-sided p; t and p are None when every difference is equal."""
    # Imported here: heartml.evaluate brings sklearn, which serving's registry mode (it reads
    # decisions' records only through the Registry) does not need.
    from heartml.evaluate import corrected_paired_t_test

    mean = float(diff.mean())
    if np.ptp(diff) == 0:
        return {"mean_roc_auc_difference": mean, "t": None, "p_value": None}
    test = corrected_paired_t_test(list(diff), [0.0] * len(diff), 1.0 / folds)
    return {"mean_roc_auc_difference": mean, "t": test["t"], "p_value": test["p_value"]}


def decide(
    candidate: RegisteredVersion,
    candidate_tags: Mapping[str, str],
    current: ChampionInfo | None,
    policy: PromotionConfig,
    *,
    force: bool = False,
    retrained: FoldEvidence | None = None,
    window: WindowEvidence | None = None,
) -> PromotionDecision:
    """Replace the champion only for a supported, sufficient improvement that keeps calibration,
    or when there is no comparison to make (no champion; or it was trained on other data and its
    configuration was not retrained on the candidate's, `retrained`). `window`, when given, is
    recorded and named beside a comparison with a champion."""

    def decision(promote: bool, reason: str, **statistics: float | None) -> PromotionDecision:
        if window is not None and current is not None and not force:
            reason = f"{reason}; {window.clause()}"
            statistics |= window.statistics()
        return PromotionDecision(promote, reason, candidate, current, statistics, policy)

    if force:
        return decision(True, FORCED)
    if current is None:
        return decision(True, NO_CHAMPION)
    ours, theirs = FoldEvidence.from_tags(candidate_tags), FoldEvidence.from_tags(current.tags)
    champion_figure = f"champion {current.roc_auc:.4f}"
    if theirs.data_sha256 != ours.data_sha256:
        other_data = (
            f"the champion was trained on other data (sha256 {_short(theirs.data_sha256)}, "
            f"candidate {_short(ours.data_sha256)})"
        )
        if retrained is None or retrained.data_sha256 != ours.data_sha256:
            return decision(True, other_data)
        champion_figure = (
            f"the champion's configuration ({current.model_name} v{current.version}) retrained on "
            f"the candidate's data and folds {_mean(retrained.roc_auc):.4f} (on its own data "
            f"sha256 {_short(theirs.data_sha256)}: {current.roc_auc:.4f})"
        )
        theirs = retrained
    folds = scheme_folds(ours.cv_scheme)
    if theirs.cv_scheme != ours.cv_scheme or folds is None:
        return decision(
            False,
            "kept the champion: its CV folds differ from the candidate's "
            f"({theirs.cv_scheme} vs {ours.cv_scheme}), so no paired comparison is possible; "
            "use --force-champion to replace it",
        )
    if not ours.roc_auc or len(ours.roc_auc) != len(theirs.roc_auc):
        return decision(False, "kept the champion: fold results missing or of different length")
    if len(ours.brier) != len(ours.roc_auc) or len(theirs.brier) != len(ours.brier):
        return decision(
            False,
            "kept the champion: CV Brier scores by fold are missing (a version registered "
            "before the calibration check), so calibration cannot be compared; use "
            "--force-champion to replace it",
        )

    diff = _fold_differences(ours.roc_auc, theirs.roc_auc)
    stats = _paired_test(diff, folds)
    gain, p_value = float(diff.mean()), stats["p_value"]
    brier, champion_brier = float(np.mean(ours.brier)), float(np.mean(theirs.brier))
    stats |= {"candidate_cv_brier": brier, "champion_cv_brier": champion_brier}
    stats |= {"brier_increase": brier - champion_brier}
    if theirs is retrained:
        stats |= {"champion_retrained_cv_roc_auc": _mean(theirs.roc_auc)}

    failures = []
    if gain < policy.min_improvement:
        failures.append(
            f"CV ROC-AUC {gain:+.6f} is below the minimum improvement {policy.min_improvement:g}"
        )
    if p_value is None:
        failures.append(
            f"every fold difference is {diff[0]:+.6f}, so the t-test has no variance to judge by"
        )
    elif not p_value < policy.p_value:
        failures.append(f"not better by a supported margin (p={p_value:.3f} ≥ {policy.p_value:g})")
    if brier - champion_brier > policy.max_brier_increase:
        failures.append(
            f"CV Brier {brier:.3f} vs champion {champion_brier:.3f}, "
            f"worse by more than {policy.max_brier_increase:g}"
        )
    shown_p = "undefined" if p_value is None else f"{p_value:.3f}"
    summary = (
        f"CV ROC-AUC {candidate.cv_roc_auc:.4f} vs {champion_figure} "
        f"(Δ {gain:+.4f}, one-sided corrected paired t-test p={shown_p} on the same "
        f"{len(diff)} folds); CV Brier {brier:.3f} vs champion {champion_brier:.3f}"
    )
    if failures:
        return decision(False, f"kept the champion: {'; '.join(failures)}. {summary}", **stats)
    return decision(True, f"better by a supported margin: {summary}", **stats)
