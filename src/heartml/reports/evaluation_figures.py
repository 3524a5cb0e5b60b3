"""Which figures the evaluation page shows, in what order, with what title and caption.

The drawing lives in split_figures (one panel per split: ROC, PR, calibration, confusion) and
comparison_figures (the models against each other: CV folds, importance, subgroups).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

from heartml.reports.columns import DatasetView
from heartml.reports.comparison_figures import (
    cv_folds_figure,
    importance_figure,
    subgroup_figure,
)
from heartml.reports.evaluation_results import (
    MISSING,
    ModelResult,
    cv_design,
    evaluation_config,
    number,
)
from heartml.reports.split_figures import (
    calibration_figure,
    confusion_figure,
    pr_figure,
    roc_figure,
)


def build_figures(
    results: Mapping[str, Any],
    models: Sequence[ModelResult],
    split_names: Mapping[str, str],
    view: DatasetView,
) -> Iterator[tuple[str, str, str, Figure]]:
    """(slug, title, caption, figure) of each figure the document has data for, in page order."""
    design = cv_design(results)
    threshold = results.get("threshold", MISSING)
    bins = evaluation_config(results).get("calibration_bins")
    yield (
        "cv-folds",
        "ROC-AUC across CV folds",
        f"ROC-AUC of each model on every fold of {design} on the training split (box: quartiles, "
        "line: median, triangle: mean, dots: folds). The diamond is the held-out test ROC-AUC. "
        "The spread is why a single split cannot rank close models.",
        cv_folds_figure(models),
    )
    yield (
        "roc",
        "ROC curves",
        "Left: out-of-fold predictions of the repeated CV on the training split (each row's "
        "probability averaged over the repeats; the legend gives the AUC of these pooled "
        "predictions, close to but not the fold mean in the table). Right: the held-out test "
        "split. Dashed: chance.",
        roc_figure(models, split_names),
    )
    yield (
        "pr",
        "Precision-recall curves",
        "Precision against recall for the CV out-of-fold predictions (left) and the test split "
        "(right); the legend gives average precision. Dashed: prevalence, the precision of "
        "guessing.",
        pr_figure(models, split_names),
    )
    yield (
        "calibration",
        "Calibration",
        f"Observed share of {view.positive_label} cases against mean predicted probability in "
        + (f"{bins} " if bins else "")
        + "quantile bins. Points on the diagonal are perfectly calibrated; below it the model "
        "over-predicts risk, above it under-predicts.",
        calibration_figure(models, split_names, view),
    )
    yield (
        "confusion",
        "Confusion matrices",
        f"At threshold {threshold}. Top: CV out-of-fold (each training row once, its probability "
        "averaged over the repeats); bottom: test split. Cell colour and percentage: share of "
        "the true class (rows), so the diagonal shows specificity and recall.",
        confusion_figure(models, split_names, threshold, view),
    )
    if any(m.section("permutation_importance") for m in models):
        yield (
            "importance",
            "Permutation importance",
            "Drop in test-split ROC-AUC when one raw feature is shuffled (mean ± std over the "
            "repeats), per model; features sorted by their mean importance over the models. "
            "Near zero or negative: the model does not rely on the feature (or a correlated "
            "feature stands in for it).",
            importance_figure(models, view),
        )
    if any(
        number(entry.get("roc_auc")) is not None
        for m in models
        for split in split_names
        for entry in m.subgroups(split).values()
    ):
        yield (
            "subgroup-auc",
            "ROC-AUC by subgroup",
            f"ROC-AUC within each subgroup (by {view.subgroups_text}), CV out-of-fold (left) "
            "and test split (right). A missing point means the subgroup holds only one class "
            "there. Small subgroups (n in the labels) give noisy values.",
            subgroup_figure(models, split_names, view),
        )
