"""Model evaluation report: one self-contained HTML page comparing the trained models.

It reads only the results document (models/evaluation_results.json), never a fitted model, so it
can be rebuilt anywhere without unpickling. Like the EDA report, every figure is embedded as a
base64 PNG data URI (and also written as a PNG next to index.html) and the CSS is inline, so the
page opens offline and can be attached on its own.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from heartml.coding import AGE_GROUP_EDGES, AGE_GROUP_LABELS, COLUMNS_BY_NAME
from heartml.data.eda import ReportFigure, save_figure
from heartml.evaluate import METRICS, corrected_paired_t_test

# Okabe-Ito, as in the EDA report: distinguishable with colour blindness. One colour per model,
# the same in every figure, so a reader learns it once.
MODEL_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")
REFERENCE_COLOUR = "#9A9A9A"  # chance lines, diagonals, baselines
TEST_MARKER_COLOUR = "#D55E00"
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
SMALL_SUBGROUP = 20  # below this many patients a subgroup number is mostly noise
SPLITS = (("oof_curves", "cv_out_of_fold"), ("test_curves", "test"))
MISSING = "–"


@dataclass(frozen=True)
class _Model:
    name: str
    summary: Mapping[str, Any]
    colour: str
    best: bool


def write_evaluation_report(results: dict, out_dir: Path) -> Path:
    """Write out_dir/index.html (+ PNG per figure in out_dir) comparing the models; return the path."""
    models = _ordered_models(results)
    if not models:
        raise ValueError("the results document has no models to report")
    out_dir.mkdir(parents=True, exist_ok=True)
    split_names = _split_names(results)
    # rc_context restores the global style afterwards; savefig reads it too, so save inside.
    with matplotlib.rc_context(
        {
            "font.size": 11,
            "axes.titlesize": 12,
            "axes.titleweight": "bold",
            "axes.labelsize": 11,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "figure.dpi": 100,
            "savefig.bbox": "tight",
        }
    ):
        figures: list[ReportFigure] = [
            save_figure(out_dir, slug, title, caption, figure)
            for slug, title, caption, figure in _build_figures(results, models, split_names)
        ]
    versus_best = _versus_best(results, models)
    html = _TEMPLATE.render(
        summary=_summary(results, models, versus_best),
        honesty=_honesty_notes(results),
        metric_tables=_metric_tables(models),
        model_rows=_model_rows(models, versus_best),
        figures=figures,
        subgroup_tables=_subgroup_tables(models, split_names),
        n_models=len(models),
        created_at=results.get("created_at", MISSING),
        small_subgroup=SMALL_SUBGROUP,
        threshold=results.get("threshold", MISSING),
        missing=MISSING,
        provenance=_provenance(results),
        library_versions=sorted((results.get("library_versions") or {}).items()),
        config_json=json.dumps(results["config"], indent=2) if results.get("config") else "",
    )
    index = out_dir / "index.html"
    index.write_text(html, encoding="utf-8")
    return index


# --- reading the results document -----------------------------------------------------------


def _number(value: object) -> float | None:
    """A finite float, or None for missing, None, NaN and non-numbers (JSON has no NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _fmt(value: object, digits: int = 3) -> str:
    number = _number(value)
    return MISSING if number is None else f"{number:.{digits}f}"


def _cv_roc_auc(summary: Mapping[str, Any]) -> float | None:
    return _number(summary.get("cv_metrics", {}).get("roc_auc", {}).get("mean"))


def _ordered_models(results: Mapping[str, Any]) -> list[_Model]:
    """Best model first, then by CV ROC-AUC: the order in which a reader compares them."""
    best = results.get("best_algorithm")
    summaries: Mapping[str, Mapping[str, Any]] = results.get("models") or {}
    names = sorted(
        summaries,
        key=lambda name: (name != best, -(_cv_roc_auc(summaries[name]) or -math.inf)),
    )
    return [
        _Model(name, summaries[name], MODEL_COLOURS[i % len(MODEL_COLOURS)], name == best)
        for i, name in enumerate(names)
    ]


def _evaluation_config(results: Mapping[str, Any]) -> Mapping[str, Any]:
    config = results.get("config") or {}
    evaluation: Mapping[str, Any] = config.get("evaluation") or {}
    return evaluation


def _split_names(results: Mapping[str, Any]) -> dict[str, str]:
    n_train, n_test = results.get("n_train"), results.get("n_test")
    return {
        "cv_out_of_fold": "Training split, CV out-of-fold"
        + (f" (n = {n_train})" if n_train is not None else ""),
        "test": "Held-out test split" + (f" (n = {n_test})" if n_test is not None else ""),
    }


def _cv_design(results: Mapping[str, Any]) -> str:
    evaluation = _evaluation_config(results)
    folds, repeats = evaluation.get("cv_folds"), evaluation.get("cv_repeats")
    return f"{folds}-fold CV repeated {repeats} times" if folds and repeats else "repeated CV"


def _short(text: object, length: int = 12) -> str:
    return str(text)[:length] if text else MISSING


# --- text and tables ------------------------------------------------------------------------


def _versus_best(
    results: Mapping[str, Any], models: Sequence[_Model]
) -> dict[str, dict[str, float]]:
    """Is the best model's CV ROC-AUC lead over each other model more than fold noise?

    Every model was evaluated on the same repeated-CV folds (same seed), so the per-fold values
    pair up and the Nadeau-Bengio corrected paired t-test applies. Needs the fold count from the
    config; without it the comparison is left out rather than guessed.
    """
    folds = _evaluation_config(results).get("cv_folds")
    best = next((m for m in models if m.best), None)
    if not folds or best is None:
        return {}
    best_folds = best.summary.get("cv_fold_metrics", {}).get("roc_auc") or []
    comparisons = {}
    for model in models:
        other = model.summary.get("cv_fold_metrics", {}).get("roc_auc") or []
        if model.best or len(other) != len(best_folds) or len(other) < 2:
            continue
        comparisons[model.name] = corrected_paired_t_test(best_folds, other, 1.0 / folds)
    return comparisons


def _summary(
    results: Mapping[str, Any],
    models: Sequence[_Model],
    versus_best: Mapping[str, Mapping[str, float]],
) -> list[str]:
    best_name = results.get("best_algorithm")
    best = next((m for m in models if m.best), None)
    lines = []
    if best is not None:
        cv = best.summary.get("cv_metrics", {}).get("roc_auc", {})
        test = best.summary.get("test_metrics", {}).get("roc_auc")
        test_ci = best.summary.get("test_ci", {}).get("roc_auc", {})
        lines.append(
            f"Best model: {best.name} ({best.summary.get('estimator', '?')}), "
            f"CV ROC-AUC {_fmt(cv.get('mean'))} ± {_fmt(cv.get('std'))} "
            f"[{_fmt(cv.get('ci_low'))}, {_fmt(cv.get('ci_high'))}], "
            f"test ROC-AUC {_fmt(test)} "
            f"[{_fmt(test_ci.get('ci_low'))}, {_fmt(test_ci.get('ci_high'))}]."
        )
    else:
        lines.append(f"Best model {best_name!r} is not among the reported models.")
    rule = results.get("selection_rule") or "highest mean repeated-CV ROC-AUC on the training split"
    lines.append(f"Selection rule: {rule.rstrip('.')}, never on the test split.")
    # The document records its own choice; say so loudly if it disagrees with its own numbers.
    scored = [m for m in models if _cv_roc_auc(m.summary) is not None]
    if scored:
        top = max(scored, key=lambda m: _cv_roc_auc(m.summary) or -math.inf)
        if best is not None and top.name != best.name:
            lines.append(
                f"Warning: {top.name} has the highest CV ROC-AUC, not {best.name} as recorded."
            )
    if best is not None and versus_best:
        runner_up = next(m for m in models if m.name in versus_best)
        test = versus_best[runner_up.name]
        lines.append(
            f"Lead over the runner-up {runner_up.name}: CV ROC-AUC "
            f"{test['mean_difference']:+.3f}, one-sided corrected paired t-test "
            f"p = {_fmt(test['p_value'], 2)}"
            + (
                " — within fold-to-fold noise, so the models are close."
                if test["p_value"] > 0.05
                else "."
            )
        )
    lines.append(
        f"Data sha256 {_short(results.get('data_sha256'))}…, config hash "
        f"{_short(results.get('config_hash'))}…, seed {results.get('seed', MISSING)}, "
        f"n_train = {results.get('n_train', MISSING)}, n_test = {results.get('n_test', MISSING)}, "
        f"decision threshold {results.get('threshold', MISSING)}."
    )
    return lines


def _honesty_notes(results: Mapping[str, Any]) -> list[str]:
    design = _cv_design(results)
    n_test = results.get("n_test")
    return [
        f"CV numbers ({design} on the training split) measure the tuned configuration. The "
        "grid search chose its hyper-parameters on the same training rows, so they lean "
        "slightly optimistic.",
        "The held-out test split was never used to choose or tune anything: it is the untouched "
        "estimate" + (f", but with n = {n_test} its intervals are wide." if n_test else "."),
        "CV 95% CIs use the Nadeau-Bengio corrected resampled t interval (folds share training "
        "rows, so the naive interval would be too narrow); test 95% CIs are percentile "
        "bootstrap intervals over the test rows.",
        f"Accuracy, precision, recall, F1 and the confusion matrices use the decision threshold "
        f"{results.get('threshold', MISSING)} on the predicted probability of heart disease.",
    ]


def _metric_tables(models: Sequence[_Model]) -> list[dict[str, Any]]:
    present = [
        name
        for name in METRICS
        if any(name in m.summary.get("cv_metrics", {}) for m in models)
        or any(name in m.summary.get("test_metrics", {}) for m in models)
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
        {
            "id": table_id,
            "title": title,
            "metrics": [
                {"name": n, "label": METRIC_LABELS.get(n, n), "lower": n in LOWER_IS_BETTER}
                for n in names
            ],
            "rows": [_metric_row(model, names, models) for model in models],
        }
        for table_id, title, names in groups
        if names
    ]


def _metric_row(model: _Model, names: Sequence[str], models: Sequence[_Model]) -> dict[str, Any]:
    cells = []
    for name in names:
        cv = model.summary.get("cv_metrics", {}).get(name, {})
        test = model.summary.get("test_metrics", {}).get(name)
        ci = model.summary.get("test_ci", {}).get(name, {})
        cells.append(
            {
                "metric": name,
                "split": "cv",
                "main": f"{_fmt(cv.get('mean'))} ± {_fmt(cv.get('std'))}",
                "ci": f"[{_fmt(cv.get('ci_low'))}, {_fmt(cv.get('ci_high'))}]",
                "top": _is_top(model, name, "cv", models),
            }
        )
        cells.append(
            {
                "metric": name,
                "split": "test",
                "main": _fmt(test),
                "ci": f"[{_fmt(ci.get('ci_low'))}, {_fmt(ci.get('ci_high'))}]",
                "top": _is_top(model, name, "test", models),
            }
        )
    return {"name": model.name, "best": model.best, "colour": model.colour, "cells": cells}


def _metric_value(model: _Model, name: str, split: str) -> float | None:
    if split == "cv":
        return _number(model.summary.get("cv_metrics", {}).get(name, {}).get("mean"))
    return _number(model.summary.get("test_metrics", {}).get(name))


def _is_top(model: _Model, name: str, split: str, models: Sequence[_Model]) -> bool:
    """Best value of its column (ties included); meaningless, so never set, with one model."""
    values = [v for m in models if (v := _metric_value(m, name, split)) is not None]
    value = _metric_value(model, name, split)
    if len(values) < 2 or value is None:
        return False
    return value == (min(values) if name in LOWER_IS_BETTER else max(values))


def _params_text(params: Mapping[str, Any] | None) -> str:
    if not params:
        return "defaults (no grid)"
    return ", ".join(f"{key} = {value!r}" for key, value in params.items())


def _model_rows(
    models: Sequence[_Model], versus_best: Mapping[str, Mapping[str, float]]
) -> list[dict[str, Any]]:
    rows = []
    for model in models:
        tuning = model.summary.get("tuning") or {}
        if tuning.get("candidates"):
            search = (
                f"{tuning['candidates']} candidates, {tuning.get('cv_folds', '?')}-fold × "
                f"{tuning.get('cv_repeats', '?')} inner CV, best inner "
                f"{tuning.get('scoring', 'score')} {_fmt(tuning.get('best_inner_score'))}"
            )
        else:
            search = "no search"
        comparison = versus_best.get(model.name)
        rows.append(
            {
                "name": model.name,
                "best": model.best,
                "colour": model.colour,
                "estimator": str(model.summary.get("estimator", MISSING)),
                "params": _params_text(model.summary.get("best_params")),
                "search": search,
                "versus_best": (
                    "best"
                    if model.best
                    else f"{comparison['mean_difference']:+.3f} (p = {_fmt(comparison['p_value'], 2)})"
                    if comparison
                    else MISSING
                ),
                "seconds": _fmt(model.summary.get("seconds"), 1),
                "estimator_params": [
                    (str(key), repr(value))
                    for key, value in (model.summary.get("estimator_params") or {}).items()
                ],
            }
        )
    return rows


_AGE_RANGES = {
    # Ages are whole years and the bins are right-closed (40 is young), hence lo + 1.
    label: (
        f"≤ {AGE_GROUP_EDGES[0]:g}"
        if i == 0
        else f"> {AGE_GROUP_EDGES[-1]:g}"
        if i == len(AGE_GROUP_EDGES)
        else f"{AGE_GROUP_EDGES[i - 1] + 1:g}–{AGE_GROUP_EDGES[i]:g}"
    )
    for i, label in enumerate(AGE_GROUP_LABELS)
}


def _subgroup_label(key: str) -> str:
    variable, _, value = key.partition("=")
    if variable == "sex":
        return f"Sex: {value}"
    if variable == "age_group" and value in _AGE_RANGES:
        return f"Age {_AGE_RANGES[value]} ({value.replace('_', ' ')})"
    return key


def _subgroup_keys(models: Sequence[_Model], split: str) -> list[str]:
    keys: dict[str, None] = {}  # ordered union: the document's order, then any extras
    for model in models:
        keys.update(dict.fromkeys((model.summary.get("subgroups") or {}).get(split) or {}))
    return list(keys)


def _subgroup_entry(model: _Model, split: str, key: str) -> Mapping[str, Any] | None:
    entry: Mapping[str, Any] | None = ((model.summary.get("subgroups") or {}).get(split) or {}).get(
        key
    )
    return entry or None


def _subgroup_tables(models: Sequence[_Model], split_names: Mapping[str, str]) -> list[Any]:
    tables = []
    for split, title in split_names.items():
        groups = []
        for key in _subgroup_keys(models, split):
            entries = [
                (model, entry)
                for model in models
                if (entry := _subgroup_entry(model, split, key)) is not None
            ]
            first = entries[0][1]  # n and prevalence depend on the rows only, not the model
            n = first.get("n")
            groups.append(
                {
                    "key": key,
                    "label": _subgroup_label(key),
                    "n": MISSING if n is None else str(n),
                    "small": isinstance(n, int) and n < SMALL_SUBGROUP,
                    "prevalence": _fmt(first.get("prevalence")),
                    "rows": [
                        {
                            "name": model.name,
                            "best": model.best,
                            "cells": [_fmt(entry.get(metric)) for metric in SUBGROUP_METRICS],
                        }
                        for model, entry in entries
                    ],
                }
            )
        if groups:
            tables.append({"id": f"subgroups-{split}", "title": title, "groups": groups})
    return tables


def _provenance(results: Mapping[str, Any]) -> list[tuple[str, str]]:
    features = results.get("feature_names") or {}
    rows = [
        ("Created", str(results.get("created_at", MISSING))),
        ("Git commit", str(results.get("git_commit") or MISSING)),
        ("Data sha256", str(results.get("data_sha256", MISSING))),
        ("Config hash", str(results.get("config_hash", MISSING))),
        ("Seed", str(results.get("seed", MISSING))),
    ]
    for kind, names in features.items():
        rows.append((f"Features ({kind}, {len(names)})", ", ".join(map(str, names))))
    return rows


# --- figures --------------------------------------------------------------------------------


def _build_figures(
    results: Mapping[str, Any], models: Sequence[_Model], split_names: Mapping[str, str]
) -> Iterator[tuple[str, str, str, Figure]]:
    design = _cv_design(results)
    threshold = results.get("threshold", MISSING)
    bins = _evaluation_config(results).get("calibration_bins")
    yield (
        "cv-folds",
        "ROC-AUC across CV folds",
        f"ROC-AUC of each model on every fold of {design} on the training split (box: quartiles, "
        "line: median, triangle: mean, dots: folds). The diamond is the held-out test ROC-AUC. "
        "The spread is why a single split cannot rank close models.",
        _cv_folds_figure(models),
    )
    yield (
        "roc",
        "ROC curves",
        "Left: out-of-fold predictions of the repeated CV on the training split (each row's "
        "probability averaged over the repeats; the legend gives the AUC of these pooled "
        "predictions, close to but not the fold mean in the table). Right: the held-out test "
        "split. Dashed: chance.",
        _roc_figure(models, split_names),
    )
    yield (
        "pr",
        "Precision-recall curves",
        "Precision against recall for the CV out-of-fold predictions (left) and the test split "
        "(right); the legend gives average precision. Dashed: prevalence, the precision of "
        "guessing.",
        _pr_figure(models, split_names),
    )
    yield (
        "calibration",
        "Calibration",
        "Observed share with heart disease against mean predicted probability in "
        + (f"{bins} " if bins else "")
        + "quantile bins. Points on the diagonal are perfectly calibrated; below it the model "
        "over-predicts risk, above it under-predicts.",
        _calibration_figure(models, split_names),
    )
    yield (
        "confusion",
        "Confusion matrices",
        f"At threshold {threshold}. Top: CV out-of-fold (each training row once, its probability "
        "averaged over the repeats); bottom: test split. Cell colour and percentage: share of "
        "the true class (rows), so the diagonal shows specificity and recall.",
        _confusion_figure(models, split_names, threshold),
    )
    if any(m.summary.get("permutation_importance") for m in models):
        yield (
            "importance",
            "Permutation importance",
            "Drop in test-split ROC-AUC when one raw feature is shuffled (mean ± std over the "
            "repeats), per model; features sorted by their mean importance over the models. "
            "Near zero or negative: the model does not rely on the feature (or a correlated "
            "feature stands in for it).",
            _importance_figure(models),
        )
    if any(
        _number(entry.get("roc_auc")) is not None
        for m in models
        for split in split_names
        for entry in ((m.summary.get("subgroups") or {}).get(split) or {}).values()
    ):
        yield (
            "subgroup-auc",
            "ROC-AUC by subgroup",
            "ROC-AUC within each sex and age group, CV out-of-fold (left) and test split "
            "(right). A missing point means the subgroup holds only one class there. Small "
            "subgroups (n in the labels) give noisy values.",
            _subgroup_figure(models, split_names),
        )


def _legend(ax: Axes, **kwargs: Any) -> None:
    ax.legend(frameon=False, fontsize=9, **kwargs)


def _line_width(model: _Model) -> float:
    return 2.6 if model.best else 1.6  # the chosen model stands out in crowded panels


def _curve(model: _Model, key: str, curve: str) -> Mapping[str, list[float]]:
    curve_data: Mapping[str, list[float]] = (model.summary.get(key) or {}).get(curve) or {}
    return curve_data


def _unit_square(ax: Axes) -> None:
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_aspect("equal")


def _cv_folds_figure(models: Sequence[_Model]) -> Figure:
    figure = Figure(figsize=(max(5.5, 1.6 * len(models) + 2.5), 4.8), layout="constrained")
    ax = figure.subplots()
    positions = np.arange(1, len(models) + 1)
    folds = [
        [v for v in (m.summary.get("cv_fold_metrics") or {}).get("roc_auc") or [] if v is not None]
        for m in models
    ]
    boxes = ax.boxplot(
        folds,
        positions=positions,
        widths=0.5,
        showmeans=True,
        showfliers=False,  # the dots below show every fold, outliers included
        patch_artist=True,
        meanprops={"marker": "^", "markerfacecolor": "white", "markeredgecolor": "black"},
        medianprops={"color": "black"},
    )
    rng = np.random.default_rng(0)  # fixed jitter: the same document gives the same PNG
    for position, values, box, model in zip(positions, folds, boxes["boxes"], models, strict=True):
        box.set_facecolor(model.colour)
        box.set_alpha(0.35)
        jitter = rng.uniform(-0.12, 0.12, len(values))
        ax.scatter(position + jitter, values, s=12, color=model.colour, alpha=0.7, zorder=3)
    tests = [_number((m.summary.get("test_metrics") or {}).get("roc_auc")) for m in models]
    shown = [(p, t) for p, t in zip(positions, tests, strict=True) if t is not None]
    if shown:
        ax.scatter(
            [p for p, _ in shown],
            [t for _, t in shown],
            marker="D",
            s=55,
            color=TEST_MARKER_COLOUR,
            edgecolor="black",
            zorder=4,
            label="test split",
        )
        _legend(ax, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside: folds fill the box
    ax.set_xticks(positions, [m.name + (" (best)" if m.best else "") for m in models])
    ax.set_xlim(0.4, len(models) + 0.6)
    ax.set_ylabel("ROC-AUC")
    ax.set_title("ROC-AUC per CV fold")
    ax.grid(axis="y", alpha=0.3)
    return figure


def _two_panels(
    split_names: Mapping[str, str], width: float = 12.0, height: float = 5.6
) -> tuple[Figure, list[tuple[str, str, Axes]]]:
    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.subplots(1, 2)
    return figure, [
        (key, split_names[split], ax) for (key, split), ax in zip(SPLITS, axes, strict=True)
    ]


def _roc_figure(models: Sequence[_Model], split_names: Mapping[str, str]) -> Figure:
    figure, panels = _two_panels(split_names)
    for key, title, ax in panels:
        ax.plot([0, 1], [0, 1], ls="--", color=REFERENCE_COLOUR, lw=1, label="chance")
        for model in models:
            roc = _curve(model, key, "roc")
            fpr, tpr = roc.get("fpr") or [], roc.get("tpr") or []
            if not fpr:
                continue
            auc = (
                _number((model.summary.get("test_metrics") or {}).get("roc_auc"))
                if key == "test_curves"
                else float(np.trapezoid(tpr, fpr))
            )
            ax.plot(
                fpr,
                tpr,
                color=model.colour,
                lw=_line_width(model),
                drawstyle="steps-post",
                label=f"{model.name} (AUC {_fmt(auc)})",
            )
        _unit_square(ax)
        ax.set_xlabel("False positive rate (1 − specificity)")
        ax.set_ylabel("True positive rate (recall)")
        ax.set_title(title)
        _legend(ax, loc="lower right")
    return figure


def _prevalence(model: _Model, key: str) -> float | None:
    # The confusion matrix rows are the true classes, so it also carries the prevalence.
    matrix = ((model.summary.get(key) or {}).get("confusion_matrix") or {}).get("matrix")
    if not matrix or len(matrix) != 2:
        return None
    total = sum(sum(row) for row in matrix)
    return sum(matrix[1]) / total if total else None


def _pr_figure(models: Sequence[_Model], split_names: Mapping[str, str]) -> Figure:
    figure, panels = _two_panels(split_names)
    for key, title, ax in panels:
        prevalence = next((p for m in models if (p := _prevalence(m, key)) is not None), None)
        if prevalence is not None:
            ax.axhline(
                prevalence,
                ls="--",
                color=REFERENCE_COLOUR,
                lw=1,
                label=f"prevalence {prevalence:.2f}",
            )
        for model in models:
            pr = _curve(model, key, "pr")
            precision, recall = pr.get("precision") or [], pr.get("recall") or []
            if not precision:
                continue
            if key == "test_curves":
                average = _number((model.summary.get("test_metrics") or {}).get("pr_auc"))
            else:  # average precision of the pooled curve, as sklearn defines it
                average = -float(np.sum(np.diff(recall) * np.asarray(precision[:-1])))
            ax.plot(
                recall,
                precision,
                color=model.colour,
                lw=_line_width(model),
                drawstyle="steps-post",
                label=f"{model.name} (AP {_fmt(average)})",
            )
        _unit_square(ax)
        ax.set_xlabel("Recall (sensitivity)")
        ax.set_ylabel("Precision (positive predictive value)")
        ax.set_title(title)
        _legend(ax, loc="lower left")
    return figure


def _calibration_figure(models: Sequence[_Model], split_names: Mapping[str, str]) -> Figure:
    figure, panels = _two_panels(split_names)
    for key, title, ax in panels:
        ax.plot([0, 1], [0, 1], ls="--", color=REFERENCE_COLOUR, lw=1, label="perfect")
        for model in models:
            calibration = _curve(model, key, "calibration")
            predicted = calibration.get("predicted") or []
            observed = calibration.get("observed") or []
            if not predicted:
                continue
            ax.plot(
                predicted,
                observed,
                color=model.colour,
                lw=_line_width(model),
                marker="o",
                ms=5,
                label=model.name,
            )
        _unit_square(ax)
        ax.set_xlabel("Mean predicted probability")
        ax.set_ylabel("Observed share with heart disease")
        ax.set_title(title)
        _legend(ax, loc="upper left")
    return figure


def _confusion_figure(
    models: Sequence[_Model], split_names: Mapping[str, str], threshold: object
) -> Figure:
    figure = Figure(figsize=(3.3 * len(models) + 1.2, 7.0), layout="constrained")
    axes = figure.subplots(2, len(models), squeeze=False)
    image = None
    for row, (key, split) in enumerate(SPLITS):
        for column, model in enumerate(models):
            ax = axes[row, column]
            confusion = (model.summary.get(key) or {}).get("confusion_matrix") or {}
            matrix = np.asarray(confusion.get("matrix") or [], dtype=float)
            if matrix.shape != (2, 2):
                ax.set_axis_off()
                ax.text(0.5, 0.5, "no confusion matrix", ha="center", va="center")
                continue
            labels = confusion.get("labels") or ["no disease", "disease"]
            totals = matrix.sum(axis=1, keepdims=True)
            shares = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
            image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
            for i in range(2):
                for j in range(2):
                    ax.text(
                        j,
                        i,
                        f"{int(matrix[i, j])}\n{shares[i, j]:.0%}",
                        ha="center",
                        va="center",
                        fontsize=11,
                        color="white" if shares[i, j] > 0.6 else "black",
                    )
            ax.set_xticks([0, 1], labels)
            ax.set_yticks([0, 1], labels, rotation=90, va="center")
            ax.set_xlabel("Predicted")
            ax.set_ylabel(f"{split_names[split].split(' (')[0]}\nTrue" if column == 0 else "True")
            ax.set_title(model.name + (" (best)" if model.best else ""))
            ax.spines[:].set_visible(False)
    if image is not None:
        figure.colorbar(image, ax=axes, shrink=0.6, label="Share of the true class")
    figure.suptitle(f"Threshold {threshold}", fontweight="bold")
    return figure


def _feature_label(name: str) -> str:
    column = COLUMNS_BY_NAME.get(name)
    return f"{column.label} ({name})" if column else name


def _importance_figure(models: Sequence[_Model]) -> Figure:
    importances = [(m, m.summary.get("permutation_importance") or {}) for m in models]
    features: dict[str, None] = {}
    for _, importance in importances:
        features.update(dict.fromkeys(importance))

    def average(feature: str) -> float:
        values = [
            v
            for _, imp in importances
            if (v := _number((imp.get(feature) or {}).get("mean"))) is not None
        ]
        return float(np.mean(values)) if values else -math.inf

    names = sorted(features, key=average, reverse=True)
    height = 0.8 / len(models)
    figure = Figure(
        figsize=(10, 0.14 * len(names) * max(len(models), 3) + 1.8), layout="constrained"
    )
    ax = figure.subplots()
    positions = np.arange(len(names))
    for i, (model, importance) in enumerate(importances):
        means = [_number((importance.get(n) or {}).get("mean")) for n in names]
        stds = [_number((importance.get(n) or {}).get("std")) for n in names]
        ax.barh(
            positions - 0.4 + height * (i + 0.5),
            [0.0 if m is None else m for m in means],
            height,
            xerr=[0.0 if s is None else s for s in stds],
            color=model.colour,
            error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "#333333"},
            label=model.name,
        )
    ax.axvline(0, color="black", lw=0.8)
    for boundary in positions[:-1] + 0.5:  # keeps each feature's group of bars together
        ax.axhline(boundary, color="#e4e4e4", lw=0.8)
    ax.set_yticks(positions, [_feature_label(n) for n in names])
    ax.set_ylim(len(names) - 0.5, -0.5)  # most important at the top
    ax.set_xlabel("Drop in test ROC-AUC when the feature is shuffled")
    ax.grid(axis="x", alpha=0.3)
    _legend(ax, loc="lower right")
    return figure


def _subgroup_figure(models: Sequence[_Model], split_names: Mapping[str, str]) -> Figure:
    keys = list(dict.fromkeys(k for split in split_names for k in _subgroup_keys(models, split)))
    figure = Figure(
        figsize=(13, 0.45 * len(keys) * max(1, len(models) / 2) + 2.2), layout="constrained"
    )
    # Not sharey: shared axes share tick labels, and n per subgroup differs between the splits.
    axes = figure.subplots(1, 2)
    positions = np.arange(len(keys))
    offset = 0.6 / max(len(models), 1)
    lowest = 1.0
    for ax, (split, title) in zip(axes, split_names.items(), strict=True):
        labels = []
        for key in keys:
            entries = [e for m in models if (e := _subgroup_entry(m, split, key)) is not None]
            n = entries[0].get("n") if entries else None
            labels.append(f"{_subgroup_label(key)}, n = {MISSING if n is None else n}")
        for i, model in enumerate(models):
            points = [
                (position + offset * (i - (len(models) - 1) / 2), auc)
                for position, key in zip(positions, keys, strict=True)
                if (auc := _number((_subgroup_entry(model, split, key) or {}).get("roc_auc")))
                is not None
            ]
            if not points:
                continue
            lowest = min(lowest, *(auc for _, auc in points))
            ax.scatter(
                [auc for _, auc in points],
                [y for y, _ in points],
                color=model.colour,
                s=40 if model.best else 28,
                edgecolor="black" if model.best else "none",
                label=model.name,
                zorder=3,
            )
        ax.set_yticks(positions, labels)
        ax.set_ylim(len(keys) - 0.5, -0.5)  # first subgroup at the top
        ax.set_title(title)
        ax.set_xlabel("ROC-AUC within the subgroup")
        ax.grid(axis="x", alpha=0.3)
        for boundary in positions[:-1] + 0.5:
            ax.axhline(boundary, color="#e4e4e4", lw=0.8)
    for ax in axes:  # one x range so the two splits compare at a glance
        ax.set_xlim(max(0.0, lowest - 0.05), 1.01)
    _legend(axes[1], loc="upper left", bbox_to_anchor=(1.0, 1.0))  # points fill the panels
    return figure


# --- page -----------------------------------------------------------------------------------

_TEMPLATE = jinja2.Environment(autoescape=True).from_string(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Heart disease models: evaluation report</title>
<style>
  body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
         line-height: 1.5; margin: 0 auto; max-width: 1200px; padding: 1.5rem; }
  h1 { font-size: 1.7rem; margin-bottom: 0.2rem; }
  h2 { font-size: 1.3rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem;
       margin-top: 2.2rem; }
  h3 { font-size: 1.05rem; margin: 1.4rem 0 0.4rem; }
  .summary { background: #f5f7fa; border-left: 4px solid #0072B2; padding: 0.6rem 1.2rem 0.6rem 2rem; }
  .honesty { background: #fff8e6; border-left: 4px solid #E69F00; padding: 0.5rem 1.2rem; }
  .honesty ul { margin: 0.2rem 0; padding-left: 1.2rem; }
  .scroll { overflow-x: auto; }
  table { border-collapse: collapse; font-size: 0.9rem; width: 100%; }
  th, td { padding: 0.3rem 0.55rem; border-bottom: 1px solid #e4e4e4; text-align: left;
           vertical-align: top; }
  thead th { background: #f0f2f5; }
  th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  td.num .ci { display: block; color: #666; font-size: 0.82em; }
  td.test { border-left: 1px dashed #ddd; }
  td.top .main { font-weight: 700; }
  table.compare tr.best td, table.subgroups tr.best td.m { background: #e8f3fb; }
  table.compare tr.best td:first-child { border-left: 4px solid #0072B2; }
  .badge { display: inline-block; background: #0072B2; color: #fff; border-radius: 3px;
           font-size: 0.75rem; font-weight: 700; padding: 0 0.35rem; margin-left: 0.3rem; }
  .swatch { display: inline-block; width: 0.75rem; height: 0.75rem; border-radius: 2px;
            margin-right: 0.35rem; vertical-align: -0.05rem; }
  .small { color: #a15c00; }
  .note { color: #555; font-size: 0.9rem; }
  code, pre { font-size: 0.88em; }
  pre { background: #f7f7f7; padding: 0.6rem; overflow-x: auto; }
  details { margin: 0.3rem 0; }
  figure { margin: 0; }
  figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
  figcaption { color: #555; font-size: 0.92rem; margin-top: 0.4rem; }
  nav a { margin-right: 1rem; }
</style>
</head>
<body>
<h1>Heart disease models: evaluation report</h1>
<p>UCI Heart Disease, Cleveland subset: {{ n_models }} model(s) compared side by side.
Trained {{ created_at }}.</p>
<nav>
  <a href="#summary">Summary</a><a href="#metrics">Metrics</a><a href="#models">Models</a>
  {%- for figure in figures %}<a href="#{{ figure.slug }}">{{ figure.title }}</a>{% endfor %}
  <a href="#subgroups">Subgroups</a><a href="#provenance">Provenance</a>
</nav>

<section id="summary">
<h2>Summary</h2>
<ul class="summary">
{%- for line in summary %}
  <li>{{ line }}</li>
{%- endfor %}
</ul>
<div class="honesty">
<strong>How to read these numbers</strong>
<ul>
{%- for line in honesty %}
  <li>{{ line }}</li>
{%- endfor %}
</ul>
</div>
</section>

<section id="metrics">
<h2>Metrics</h2>
<p class="note">Each metric: <em>CV</em> = mean ± std over the CV folds [95% corrected t CI];
<em>test</em> = held-out test split [95% bootstrap CI]. ↑ higher is better, ↓ lower is better.
Bold: best value in its column. Highlighted row: the selected model.</p>
{%- for table in metric_tables %}
<h3>{{ table.title }}</h3>
<div class="scroll">
<table id="{{ table.id }}" class="compare">
  <thead>
  <tr><th rowspan="2">Model</th>
  {%- for metric in table.metrics %}
    <th class="num" colspan="2">{{ metric.label }} {{ "↓" if metric.lower else "↑" }}</th>
  {%- endfor %}</tr>
  <tr>
  {%- for metric in table.metrics %}<th class="num">CV</th><th class="num">test</th>{% endfor %}
  </tr>
  </thead>
  <tbody>
  {%- for row in table.rows %}
  <tr data-model="{{ row.name }}"{% if row.best %} class="best"{% endif %}>
    <td><span class="swatch" style="background: {{ row.colour }}"></span><code>{{ row.name }}</code>
      {%- if row.best %}<span class="badge">best</span>{% endif %}</td>
    {%- for cell in row.cells %}
    <td class="num {{ cell.split }}{% if cell.top %} top{% endif %}" data-metric="{{ cell.metric }}"
        data-split="{{ cell.split }}"><span class="main">{{ cell.main }}</span><span class="ci">{{ cell.ci }}</span></td>
    {%- endfor %}
  </tr>
  {%- endfor %}
  </tbody>
</table>
</div>
{%- endfor %}
</section>

<section id="models">
<h2>Models</h2>
<div class="scroll">
<table id="models-table" class="compare">
  <thead><tr><th>Model</th><th>Estimator</th><th>Tuned parameters</th><th>Grid search</th>
      <th class="num">Lead of the best<br>in CV ROC-AUC (p)</th><th class="num">Seconds</th></tr></thead>
  <tbody>
  {%- for row in model_rows %}
  <tr data-model="{{ row.name }}"{% if row.best %} class="best"{% endif %}>
    <td><span class="swatch" style="background: {{ row.colour }}"></span><code>{{ row.name }}</code>
      {%- if row.best %}<span class="badge">best</span>{% endif %}</td>
    <td><code>{{ row.estimator }}</code></td><td><code>{{ row.params }}</code></td>
    <td>{{ row.search }}</td><td class="num">{{ row.versus_best }}</td>
    <td class="num">{{ row.seconds }}</td>
  </tr>
  {%- endfor %}
  </tbody>
</table>
</div>
<p class="note">Lead of the best: how much higher the selected model's CV ROC-AUC is, on the
same folds, and the one-sided p-value of the Nadeau-Bengio corrected paired t-test that the lead
is real (p above 0.05: the difference is within fold-to-fold noise).</p>
{%- for row in model_rows %}
<details><summary>All estimator parameters of <code>{{ row.name }}</code></summary>
<table>
  {%- for key, value in row.estimator_params %}
  <tr><td><code>{{ key }}</code></td><td><code>{{ value }}</code></td></tr>
  {%- endfor %}
</table>
</details>
{%- endfor %}
</section>
{% for figure in figures %}
<section id="{{ figure.slug }}">
<h2>{{ figure.title }}</h2>
<figure>
  <img src="{{ figure.data_uri }}" alt="{{ figure.title }}">
  <figcaption>{{ figure.caption }} (<code>{{ figure.slug }}.png</code>)</figcaption>
</figure>
</section>
{% endfor %}
<section id="subgroups">
<h2>Subgroup metrics</h2>
<p class="note">By sex and age group; accuracy, recall and precision at threshold
{{ threshold }}. ROC-AUC is {{ missing }} where the subgroup holds only one class.
<span class="small">Orange n</span>: fewer than {{ small_subgroup }} patients, read with care.</p>
{%- for table in subgroup_tables %}
<h3>{{ table.title }}</h3>
<div class="scroll">
<table id="{{ table.id }}" class="subgroups">
  <thead><tr><th>Subgroup</th><th class="num">n</th><th class="num">Prevalence</th>
      <th>Model</th><th class="num">ROC-AUC</th><th class="num">Accuracy</th>
      <th class="num">Recall</th><th class="num">Precision</th><th class="num">Brier</th></tr>
  </thead>
  <tbody>
  {%- for group in table.groups %}
  {%- for row in group.rows %}
  <tr data-group="{{ group.key }}" data-model="{{ row.name }}"{% if row.best %} class="best"{% endif %}>
    {%- if loop.first %}
    <td rowspan="{{ group.rows | length }}">{{ group.label }}</td>
    <td class="num{% if group.small %} small{% endif %}" rowspan="{{ group.rows | length }}">{{ group.n }}</td>
    <td class="num" rowspan="{{ group.rows | length }}">{{ group.prevalence }}</td>
    {%- endif %}
    <td class="m"><code>{{ row.name }}</code></td>
    {%- for value in row.cells %}<td class="num m">{{ value }}</td>{% endfor %}
  </tr>
  {%- endfor %}
  {%- endfor %}
  </tbody>
</table>
</div>
{%- else %}
<p>The results document holds no subgroup metrics.</p>
{%- endfor %}
</section>

<section id="provenance">
<h2>Provenance</h2>
<table>
  {%- for key, value in provenance %}
  <tr><th>{{ key }}</th><td><code>{{ value }}</code></td></tr>
  {%- endfor %}
  {%- if library_versions %}
  <tr><th>Libraries</th><td>
    {%- for name, version in library_versions %}<code>{{ name }} {{ version }}</code>
    {%- if not loop.last %}, {% endif %}{% endfor %}</td></tr>
  {%- endif %}
</table>
{%- if config_json %}
<details><summary>Pipeline configuration</summary><pre>{{ config_json }}</pre></details>
{%- endif %}
</section>
</body>
</html>
"""
)
