"""Evaluation figures with one panel per split (CV out-of-fold, held-out test), every model in each:
ROC, precision-recall, calibration, and the confusion matrices."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from heartml.evaluate import average_precision_of_curve, roc_auc_of_curve
from heartml.reports.columns import DatasetView
from heartml.reports.evaluation_results import SPLITS, ModelResult, fmt
from heartml.reports.style import REFERENCE_COLOUR, legend, unit_square


def _line_width(model: ModelResult) -> float:
    return 2.6 if model.best else 1.6  # the chosen model stands out in crowded panels


def _curve(
    ax: Axes, model: ModelResult, x: Sequence[float], y: Sequence[float], label: str
) -> None:
    ax.plot(x, y, color=model.colour, lw=_line_width(model), drawstyle="steps-post", label=label)


def _finish(ax: Axes, title: str, xlabel: str, ylabel: str, legend_loc: str) -> None:
    """Probability axes on both sides, labels, title and the legend of one panel."""
    unit_square(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    legend(ax, loc=legend_loc)


def _two_panels(
    split_names: Mapping[str, str], width: float = 12.0, height: float = 5.6
) -> tuple[Figure, list[tuple[str, str, Axes]]]:
    """The figure and, per split, (curve key in the document, panel title, axes)."""
    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.subplots(1, 2)
    return figure, [
        (key, split_names[split], ax) for (key, split), ax in zip(SPLITS, axes, strict=True)
    ]


def roc_figure(models: Sequence[ModelResult], split_names: Mapping[str, str]) -> Figure:
    figure, panels = _two_panels(split_names)
    for key, title, ax in panels:
        ax.plot([0, 1], [0, 1], ls="--", color=REFERENCE_COLOUR, lw=1, label="chance")
        for model in models:
            roc = model.curve(key, "roc")
            fpr, tpr = roc.get("fpr") or [], roc.get("tpr") or []
            if not fpr:
                continue
            # The test AUC is in the document; the pooled out-of-fold one only as its curve.
            auc = model.test("roc_auc") if key == "test_curves" else roc_auc_of_curve(fpr, tpr)
            _curve(ax, model, fpr, tpr, f"{model.name} (AUC {fmt(auc)})")
        _finish(
            ax,
            title,
            "False positive rate (1 − specificity)",
            "True positive rate (recall)",
            "lower right",
        )
    return figure


def _prevalence(model: ModelResult, key: str) -> float | None:
    # The confusion matrix rows are the true classes, so it also carries the prevalence.
    matrix = (model.section(key).get("confusion_matrix") or {}).get("matrix")
    if not matrix or len(matrix) != 2:
        return None
    total = sum(sum(row) for row in matrix)
    return sum(matrix[1]) / total if total else None


def pr_figure(models: Sequence[ModelResult], split_names: Mapping[str, str]) -> Figure:
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
            pr = model.curve(key, "pr")
            precision, recall = pr.get("precision") or [], pr.get("recall") or []
            if not precision:
                continue
            average = (
                model.test("pr_auc")
                if key == "test_curves"
                else average_precision_of_curve(precision, recall)
            )
            _curve(ax, model, recall, precision, f"{model.name} (AP {fmt(average)})")
        _finish(
            ax,
            title,
            "Recall (sensitivity)",
            "Precision (positive predictive value)",
            "lower left",
        )
    return figure


def calibration_figure(
    models: Sequence[ModelResult], split_names: Mapping[str, str], view: DatasetView
) -> Figure:
    figure, panels = _two_panels(split_names)
    for key, title, ax in panels:
        ax.plot([0, 1], [0, 1], ls="--", color=REFERENCE_COLOUR, lw=1, label="perfect")
        for model in models:
            calibration = model.curve(key, "calibration")
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
        _finish(
            ax,
            title,
            "Mean predicted probability",
            f"Observed share of {view.positive_label} cases",
            "upper left",
        )
    return figure


def confusion_figure(
    models: Sequence[ModelResult],
    split_names: Mapping[str, str],
    threshold: object,
    view: DatasetView,
) -> Figure:
    """A grid: one row per split, one column per model; cells coloured by share of the true class."""
    figure = Figure(figsize=(3.3 * len(models) + 1.2, 7.0), layout="constrained")
    axes = figure.subplots(2, len(models), squeeze=False)
    image = None
    # Rows and columns are the target's 0 and 1 (heartml.evaluate), named by the spec.
    labels = [textwrap.fill(view.class_names[value], 12) for value in (0, 1)]
    for row, (key, split) in enumerate(SPLITS):
        for column, model in enumerate(models):
            ax = axes[row, column]
            confusion = model.section(key).get("confusion_matrix") or {}
            matrix = np.asarray(confusion.get("matrix") or [], dtype=float)
            if matrix.shape != (2, 2):
                ax.set_axis_off()
                ax.text(0.5, 0.5, "no confusion matrix", ha="center", va="center")
                continue
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
