"""The evaluation page's tables as rows of display text: metrics, models, subgroups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from heartml.evaluate import METRICS
from heartml.reports.columns import DatasetView
from heartml.reports.evaluation_results import (
    MISSING,
    ModelResult,
    fmt,
    subgroup_keys,
)

METRIC_LABELS = {
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC (AP)",
    "accuracy": "Accuracy",
    "precision": "Precision",
    "recall": "Recall",
    "f1": "F1",
    "brier": "Brier score",
    "log_loss": "Log loss",
}
LOWER_IS_BETTER = frozenset({"brier", "log_loss"})
# Metrics of the probabilities themselves; the others depend on the decision threshold.
PROBABILITY_METRICS = frozenset({"roc_auc", "pr_auc", "brier", "log_loss"})
SUBGROUP_METRICS = ("roc_auc", "accuracy", "recall", "precision", "brier")
SMALL_SUBGROUP = 20  # below this many rows a subgroup number is mostly noise


# What the template shows, as display text; `name` is the model's name in every row type.
@dataclass(frozen=True)
class MetricColumn:
    name: str
    label: str
    lower: bool  # lower is better


@dataclass(frozen=True)
class MetricCell:
    metric: str
    split: str  # "cv" | "test"
    main: str
    ci: str
    top: bool  # best value of its column


@dataclass(frozen=True)
class MetricRow:
    name: str
    best: bool
    colour: str
    cells: list[MetricCell]


@dataclass(frozen=True)
class MetricTable:
    id: str
    title: str
    metrics: list[MetricColumn]
    rows: list[MetricRow]


@dataclass(frozen=True)
class ModelRow:
    name: str
    best: bool
    colour: str
    estimator: str
    params: str
    search: str
    versus_best: str
    seconds: str
    estimator_params: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class SubgroupRow:
    name: str
    best: bool
    cells: list[str]  # SUBGROUP_METRICS in order


@dataclass(frozen=True)
class SubgroupGroup:
    key: str
    label: str
    n: str
    small: bool
    prevalence: str
    rows: list[SubgroupRow]


@dataclass(frozen=True)
class SubgroupTable:
    id: str
    title: str
    groups: list[SubgroupGroup]


def metric_tables(models: Sequence[ModelResult]) -> list[MetricTable]:
    """One table of probability metrics, one of metrics at the threshold; CV and test cells."""
    present = [
        name
        for name in METRICS
        if any(name in m.section("cv_metrics") or name in m.section("test_metrics") for m in models)
    ]
    groups = (
        (
            "metrics-probability",
            "Probability quality (no threshold)",
            [n for n in present if n in PROBABILITY_METRICS],
        ),
        (
            "metrics-threshold",
            "Decisions at the threshold",
            [n for n in present if n not in PROBABILITY_METRICS],
        ),
    )
    return [
        MetricTable(
            table_id,
            title,
            [MetricColumn(n, METRIC_LABELS.get(n, n), n in LOWER_IS_BETTER) for n in names],
            [_metric_row(model, names, models) for model in models],
        )
        for table_id, title, names in groups
        if names
    ]


def _metric_row(
    model: ModelResult, names: Sequence[str], models: Sequence[ModelResult]
) -> MetricRow:
    cells = []
    for name in names:
        cv, ci = model.cv(name), model.test_ci(name)
        cells.append(
            MetricCell(
                name,
                "cv",
                f"{fmt(cv.get('mean'))} ± {fmt(cv.get('std'))}",
                f"[{fmt(cv.get('ci_low'))}, {fmt(cv.get('ci_high'))}]",
                is_top(model, name, "cv", models),
            )
        )
        cells.append(
            MetricCell(
                name,
                "test",
                fmt(model.test(name)),
                f"[{fmt(ci.get('ci_low'))}, {fmt(ci.get('ci_high'))}]",
                is_top(model, name, "test", models),
            )
        )
    return MetricRow(model.name, model.best, model.colour, cells)


def is_top(model: ModelResult, name: str, split: str, models: Sequence[ModelResult]) -> bool:
    """Best value of its column (ties included); meaningless, so never set, with one model."""
    values = [v for m in models if (v := m.value(name, split)) is not None]
    value = model.value(name, split)
    if len(values) < 2 or value is None:
        return False
    return value == (min(values) if name in LOWER_IS_BETTER else max(values))


def _params_text(params: Mapping[str, Any] | None) -> str:
    if not params:
        return "defaults (no grid)"
    return ", ".join(f"{key} = {value!r}" for key, value in params.items())


def _search_text(tuning: Mapping[str, Any]) -> str:
    if not tuning.get("candidates"):
        return "no search"
    return (
        f"{tuning['candidates']} candidates, {tuning.get('cv_folds', '?')}-fold × "
        f"{tuning.get('cv_repeats', '?')} inner CV, best inner "
        f"{tuning.get('scoring', 'score')} {fmt(tuning.get('best_inner_score'))}"
    )


def lead_text(comparison: Mapping[str, float]) -> str:
    return f"{comparison['mean_difference']:+.3f} (p = {fmt(comparison['p_value'], 2)})"


def model_rows(
    models: Sequence[ModelResult], leads: Mapping[str, Mapping[str, float]]
) -> list[ModelRow]:
    """Per model: estimator, tuned parameters, search, the best model's lead over it, time."""
    rows = []
    for model in models:
        comparison = leads.get(model.name)
        rows.append(
            ModelRow(
                name=model.name,
                best=model.best,
                colour=model.colour,
                estimator=str(model.summary.get("estimator", MISSING)),
                params=_params_text(model.summary.get("best_params")),
                search=_search_text(model.section("tuning")),
                versus_best=(
                    "best" if model.best else lead_text(comparison) if comparison else MISSING
                ),
                seconds=fmt(model.summary.get("seconds"), 1),
                estimator_params=[
                    (str(key), repr(value))
                    for key, value in model.section("estimator_params").items()
                ],
            )
        )
    return rows


def subgroup_tables(
    models: Sequence[ModelResult], split_names: Mapping[str, str], view: DatasetView
) -> list[SubgroupTable]:
    """Per split, per subgroup: n and prevalence once, then one row of metrics per model."""
    tables = []
    for split, title in split_names.items():
        groups = []
        for key in subgroup_keys(models, split):
            entries = [
                (model, entry)
                for model in models
                if (entry := model.subgroup(split, key)) is not None
            ]
            first = entries[0][1]  # n and prevalence depend on the rows only, not the model
            n = first.get("n")
            groups.append(
                SubgroupGroup(
                    key=key,
                    label=view.subgroup_label(key),
                    n=MISSING if n is None else str(n),
                    small=isinstance(n, int) and n < SMALL_SUBGROUP,
                    prevalence=fmt(first.get("prevalence")),
                    rows=[
                        SubgroupRow(
                            model.name,
                            model.best,
                            [fmt(entry.get(metric)) for metric in SUBGROUP_METRICS],
                        )
                        for model, entry in entries
                    ],
                )
            )
        if groups:
            tables.append(SubgroupTable(f"subgroups-{split}", title, groups))
    return tables
