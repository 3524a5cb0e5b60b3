"""The models of the results document (heartml.documents.EvaluationResults) in the order and
colours the page shows them, and how a number is written on the page.

The document is validated when it is read; what can still be absent is a metric, a curve or a
subgroup that a model did not record, and a number that is NaN (shown as MISSING).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from heartml.documents.evaluation import (
    EvaluationResults,
    FoldSummary,
    Interval,
    ModelSummary,
    SubgroupMetrics,
)
from heartml.reports.style import PALETTE

MISSING = "–"
# Curves and confusion matrices per split: the split's name in the document.
SPLITS = ("cv_out_of_fold", "test")


def number(value: object) -> float | None:
    """A finite float, or None for missing, None, NaN and non-numbers (JSON has no NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def fmt(value: object, digits: int = 3) -> str:
    value = number(value)
    return MISSING if value is None else f"{value:.{digits}f}"


def signed(value: float, digits: int = 3) -> str:
    """A change with its sign; one that rounds to zero is +0.000, never -0.000."""
    return f"{round(value, digits) + 0.0:+.{digits}f}"


def short(text: object, length: int = 12) -> str:
    return str(text)[:length] if text else MISSING


def mean_std(summary: FoldSummary | None) -> str:
    """`mean ± std` of a CV summary; MISSING for each part the model did not record."""
    if summary is None:
        return f"{MISSING} ± {MISSING}"
    return f"{fmt(summary.mean)} ± {fmt(summary.std)}"


def interval(summary: FoldSummary | Interval | None) -> str:
    """`[low, high]` of a 95% interval."""
    if summary is None:
        return f"[{MISSING}, {MISSING}]"
    return f"[{fmt(summary.ci_low)}, {fmt(summary.ci_high)}]"


@dataclass(frozen=True)
class RankedModel:
    """One model's summary, with its place in the comparison and its colour in every figure."""

    name: str
    summary: ModelSummary
    colour: str
    best: bool

    def cv(self, metric: str) -> FoldSummary | None:
        return self.summary.cv_metrics.get(metric)

    def test(self, metric: str) -> float | None:
        return number(self.summary.test_metrics.get(metric))

    def test_ci(self, metric: str) -> Interval | None:
        return self.summary.test_ci.get(metric)

    def value(self, metric: str, split: str) -> float | None:
        """The CV mean (split "cv") or the test value of a metric."""
        if split != "cv":
            return self.test(metric)
        cv = self.cv(metric)
        return None if cv is None else number(cv.mean)

    @property
    def cv_roc_auc(self) -> float | None:
        return self.value("roc_auc", "cv")

    def folds(self, metric: str) -> list[float]:
        return list(self.summary.cv_fold_metrics.get(metric, []))

    def subgroups(self, split: str) -> dict[str, SubgroupMetrics]:
        return self.summary.subgroups.split(split)

    def subgroup(self, split: str, key: str) -> SubgroupMetrics | None:
        return self.subgroups(split).get(key)


def ordered_models(results: EvaluationResults) -> list[RankedModel]:
    """Best model first, then by CV ROC-AUC: the order in which a reader compares them."""
    best = results.best_algorithm
    summaries = results.models
    unsorted = {name: RankedModel(name, summaries[name], "", name == best) for name in summaries}
    names = sorted(
        unsorted, key=lambda name: (name != best, -(unsorted[name].cv_roc_auc or -math.inf))
    )
    return [
        RankedModel(name, summaries[name], PALETTE[i % len(PALETTE)], name == best)
        for i, name in enumerate(names)
    ]


def best_model(models: Sequence[RankedModel]) -> RankedModel | None:
    return next((m for m in models if m.best), None)


def split_names(results: EvaluationResults) -> dict[str, str]:
    return {
        "cv_out_of_fold": f"Training split, CV out-of-fold (n = {results.n_train})",
        "test": f"Held-out test split (n = {results.n_test})",
    }


def cv_design(results: EvaluationResults) -> str:
    folds, repeats = (results.evaluation_setting(key) for key in ("cv_folds", "cv_repeats"))
    return f"{folds}-fold CV repeated {repeats} times" if folds and repeats else "repeated CV"


def subgroup_keys(models: Sequence[RankedModel], split: str) -> list[str]:
    """Ordered union over the models: the document's order, then any extras."""
    keys: dict[str, None] = {}
    for model in models:
        keys.update(dict.fromkeys(model.subgroups(split)))
    return list(keys)
