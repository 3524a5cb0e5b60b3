"""Reading the evaluation results document (models/evaluation_results.json) for the page.

The document is JSON written by older and newer versions alike, so every read tolerates a
missing key; numbers that are absent, None or not finite read as None and show as MISSING.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from heartml.reports.style import PALETTE

MISSING = "–"
# Curves and confusion matrices per split: (document key, split name).
SPLITS = (("oof_curves", "cv_out_of_fold"), ("test_curves", "test"))


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


@dataclass(frozen=True)
class ModelResult:
    """One model's summary in the document, with the colour it has in every figure."""

    name: str
    summary: Mapping[str, Any]
    colour: str
    best: bool

    def section(self, key: str) -> Mapping[str, Any]:
        value: Mapping[str, Any] = self.summary.get(key) or {}
        return value

    def cv(self, metric: str) -> Mapping[str, Any]:
        value: Mapping[str, Any] = self.section("cv_metrics").get(metric) or {}
        return value

    def test(self, metric: str) -> float | None:
        return number(self.section("test_metrics").get(metric))

    def test_ci(self, metric: str) -> Mapping[str, Any]:
        value: Mapping[str, Any] = self.section("test_ci").get(metric) or {}
        return value

    def value(self, metric: str, split: str) -> float | None:
        """The CV mean (split "cv") or the test value of a metric."""
        return number(self.cv(metric).get("mean")) if split == "cv" else self.test(metric)

    @property
    def cv_roc_auc(self) -> float | None:
        return self.value("roc_auc", "cv")

    def folds(self, metric: str) -> list[float]:
        return [v for v in self.section("cv_fold_metrics").get(metric) or [] if v is not None]

    def curve(self, key: str, curve: str) -> Mapping[str, list[float]]:
        value: Mapping[str, list[float]] = self.section(key).get(curve) or {}
        return value

    def subgroups(self, split: str) -> Mapping[str, Mapping[str, Any]]:
        value: Mapping[str, Mapping[str, Any]] = self.section("subgroups").get(split) or {}
        return value

    def subgroup(self, split: str, key: str) -> Mapping[str, Any] | None:
        return self.subgroups(split).get(key) or None


def ordered_models(results: Mapping[str, Any]) -> list[ModelResult]:
    """Best model first, then by CV ROC-AUC: the order in which a reader compares them."""
    best = results.get("best_algorithm")
    summaries: Mapping[str, Mapping[str, Any]] = results.get("models") or {}
    unsorted = {name: ModelResult(name, summaries[name], "", name == best) for name in summaries}
    names = sorted(
        unsorted, key=lambda name: (name != best, -(unsorted[name].cv_roc_auc or -math.inf))
    )
    return [
        ModelResult(name, summaries[name], PALETTE[i % len(PALETTE)], name == best)
        for i, name in enumerate(names)
    ]


def best_model(models: Sequence[ModelResult]) -> ModelResult | None:
    return next((m for m in models if m.best), None)


def evaluation_config(results: Mapping[str, Any]) -> Mapping[str, Any]:
    evaluation: Mapping[str, Any] = (results.get("config") or {}).get("evaluation") or {}
    return evaluation


def split_names(results: Mapping[str, Any]) -> dict[str, str]:
    n_train, n_test = results.get("n_train"), results.get("n_test")
    return {
        "cv_out_of_fold": "Training split, CV out-of-fold"
        + (f" (n = {n_train})" if n_train is not None else ""),
        "test": "Held-out test split" + (f" (n = {n_test})" if n_test is not None else ""),
    }


def cv_design(results: Mapping[str, Any]) -> str:
    evaluation = evaluation_config(results)
    folds, repeats = evaluation.get("cv_folds"), evaluation.get("cv_repeats")
    return f"{folds}-fold CV repeated {repeats} times" if folds and repeats else "repeated CV"


def subgroup_keys(models: Sequence[ModelResult], split: str) -> list[str]:
    """Ordered union over the models: the document's order, then any extras."""
    keys: dict[str, None] = {}
    for model in models:
        keys.update(dict.fromkeys(model.subgroups(split)))
    return list(keys)
