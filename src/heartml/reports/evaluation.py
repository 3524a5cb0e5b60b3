"""Model evaluation page: the trained models side by side, from the results document alone.

It reads only the results document (models/evaluation_results.json), never a fitted model, so it
can be rebuilt anywhere without unpickling. Every figure is embedded in reports/evaluation/
index.html (and also written as a PNG next to it), so the page opens offline on its own.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from heartml.errors import ReportError
from heartml.evaluate import leads_of_the_best
from heartml.reports.columns import DatasetView
from heartml.reports.evaluation_figures import build_figures
from heartml.reports.evaluation_results import (
    MISSING,
    ModelResult,
    best_model,
    cv_design,
    evaluation_config,
    fmt,
    ordered_models,
    short,
    split_names,
)
from heartml.reports.evaluation_tables import (
    SMALL_SUBGROUP,
    metric_tables,
    model_rows,
    subgroup_tables,
)
from heartml.reports.missing_blocks import block_table, blocks_figure
from heartml.reports.render import render
from heartml.reports.style import ReportFigure, figure_style, save_figure
from heartml.spec import DatasetSpec

DEFAULT_SELECTION_RULE = "highest mean repeated-CV ROC-AUC on the training split"
BLOCKS_SLUG = "missing-blocks"
NOISE_P_VALUE = 0.05  # above it, the best model's lead is called fold-to-fold noise


def write_evaluation_report(results: Mapping[str, Any], out_dir: Path, spec: DatasetSpec) -> Path:
    """Write out_dir/index.html (+ PNG per figure in out_dir) comparing the models; return the path."""
    view = DatasetView.from_spec(spec)
    models = ordered_models(results)
    if not models:
        raise ReportError("the results document has no models to report")
    out_dir.mkdir(parents=True, exist_ok=True)
    splits = split_names(results)
    blocks = block_table(models, view)
    blocks_picture: ReportFigure | None = None
    with figure_style():
        figures = [
            save_figure(out_dir, slug, title, caption, figure)
            for slug, title, caption, figure in build_figures(results, models, splits, view)
        ]
        if blocks is not None:
            blocks_picture = save_figure(
                out_dir,
                BLOCKS_SLUG,
                "What a missing block costs",
                "",
                blocks_figure(models, blocks),
            )
    leads = leads_over_the_others(results, models)
    html = render(
        "reports/evaluation.html",
        dataset=view.title,
        task=f"{view.positive_label} ({view.positive_rule}) against {view.negative_label}",
        summary=summary_lines(results, models, leads),
        honesty=honesty_notes(results, view),
        metric_tables=metric_tables(models),
        model_rows=model_rows(models, leads),
        figures=figures,
        subgroup_tables=subgroup_tables(models, splits, view),
        subgroups_text=view.subgroups_text,
        records=view.records,
        blocks=blocks,
        blocks_note=blocks_note(results, view) if blocks is not None else "",
        blocks_figure=blocks_picture,
        blocks_slug=BLOCKS_SLUG,
        n_models=len(models),
        created_at=results.get("created_at", MISSING),
        small_subgroup=SMALL_SUBGROUP,
        threshold=results.get("threshold", MISSING),
        missing=MISSING,
        provenance=provenance_rows(results),
        library_versions=sorted((results.get("library_versions") or {}).items()),
        config_json=json.dumps(results["config"], indent=2) if results.get("config") else "",
    )
    index = out_dir / "index.html"
    index.write_bytes(html.encode("utf-8"))
    return index


def blocks_note(results: Mapping[str, Any], view: DatasetView) -> str:
    """How the missing-block numbers were measured, in one sentence."""
    return (
        f"Measured in the same {cv_design(results)} as the CV metrics: on every fold the model "
        f"was fitted on the fold's training rows, then the held-out {view.records} were scored "
        "twice, as recorded and with the block's columns blanked (unknown at scoring time), "
        "which the model imputes from its training rows before computing the engineered "
        "features. Cells: CV ROC-AUC mean ± std over the folds [95% corrected t CI]; Δ: change "
        "from all data."
    )


def leads_over_the_others(
    results: Mapping[str, Any], models: Sequence[ModelResult]
) -> dict[str, dict[str, float]]:
    """The best model's CV ROC-AUC lead over each other model, with its paired test.

    Needs the fold count from the config; without it the comparison is left out, not guessed.
    """
    folds = evaluation_config(results).get("cv_folds")
    best = best_model(models)
    if not folds or best is None:
        return {}
    others = {m.name: m.folds("roc_auc") for m in models if not m.best}
    return leads_of_the_best(best.folds("roc_auc"), others, int(folds))


def summary_lines(
    results: Mapping[str, Any],
    models: Sequence[ModelResult],
    leads: Mapping[str, Mapping[str, float]],
) -> list[str]:
    best = best_model(models)
    lines = []
    if best is not None:
        cv, test_ci = best.cv("roc_auc"), best.test_ci("roc_auc")
        lines.append(
            f"Best model: {best.name} ({best.summary.get('estimator', '?')}), "
            f"CV ROC-AUC {fmt(cv.get('mean'))} ± {fmt(cv.get('std'))} "
            f"[{fmt(cv.get('ci_low'))}, {fmt(cv.get('ci_high'))}], "
            f"test ROC-AUC {fmt(best.test('roc_auc'))} "
            f"[{fmt(test_ci.get('ci_low'))}, {fmt(test_ci.get('ci_high'))}]."
        )
    else:
        lines.append(
            f"Best model {results.get('best_algorithm')!r} is not among the reported models."
        )
    rule = results.get("selection_rule") or DEFAULT_SELECTION_RULE
    lines.append(f"Selection rule: {rule.rstrip('.')}, never on the test split.")
    # The document records its own choice; say so loudly if it disagrees with its own numbers.
    scored = [m for m in models if m.cv_roc_auc is not None]
    if scored and best is not None:
        top = max(scored, key=lambda m: m.cv_roc_auc or -math.inf)
        if top.name != best.name:
            lines.append(
                f"Warning: {top.name} has the highest CV ROC-AUC, not {best.name} as recorded."
            )
    if best is not None and leads:
        runner_up = next(m for m in models if m.name in leads)
        lead = leads[runner_up.name]
        lines.append(
            f"Lead over the runner-up {runner_up.name}: CV ROC-AUC "
            f"{lead['mean_difference']:+.3f}, one-sided corrected paired t-test "
            f"p = {fmt(lead['p_value'], 2)}"
            + (
                " — within fold-to-fold noise, so the models are close."
                if lead["p_value"] > NOISE_P_VALUE
                else "."
            )
        )
    lines.append(
        f"Data sha256 {short(results.get('data_sha256'))}…, config hash "
        f"{short(results.get('config_hash'))}…, seed {results.get('seed', MISSING)}, "
        f"n_train = {results.get('n_train', MISSING)}, n_test = {results.get('n_test', MISSING)}, "
        f"decision threshold {results.get('threshold', MISSING)}."
    )
    return lines


def honesty_notes(results: Mapping[str, Any], view: DatasetView) -> list[str]:
    """How to read the numbers: what each interval is and what each split can and cannot say."""
    n_test = results.get("n_test")
    return [
        f"CV numbers ({cv_design(results)} on the training split) measure the tuned "
        "configuration. The grid search chose its hyper-parameters on the same training rows, "
        "so they lean slightly optimistic.",
        "The held-out test split was never used to choose or tune anything: it is the untouched "
        "estimate" + (f", but with n = {n_test} its intervals are wide." if n_test else "."),
        "CV 95% CIs use the Nadeau-Bengio corrected resampled t interval (folds share training "
        "rows, so the naive interval would be too narrow); test 95% CIs are percentile "
        "bootstrap intervals over the test rows.",
        f"Accuracy, precision, recall, F1 and the confusion matrices use the decision threshold "
        f"{results.get('threshold', MISSING)} on the predicted probability of the positive "
        f"class, {view.positive_label} ({view.positive_rule}).",
    ]


def provenance_rows(results: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("Created", str(results.get("created_at", MISSING))),
        ("Git commit", str(results.get("git_commit") or MISSING)),
        ("Data sha256", str(results.get("data_sha256", MISSING))),
        ("Config hash", str(results.get("config_hash", MISSING))),
        ("Seed", str(results.get("seed", MISSING))),
    ]
    for kind, names in (results.get("feature_names") or {}).items():
        rows.append((f"Features ({kind}, {len(names)})", ", ".join(map(str, names))))
    return rows
