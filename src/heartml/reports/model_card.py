"""The model card of a package: Markdown from a template, and the same card as an HTML page.

model_card.md is rendered from templates/model_card/model_card.md.j2; model_card.html is that
Markdown converted by markdown-it-py (CommonMark plus tables) inside the shared page layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from markdown_it import MarkdownIt

from heartml.reports.render import render


def _number(value: object) -> str:
    return f"{value:.3f}"


def _metric_rows(summary: Mapping[str, Any]) -> list[dict[str, str]]:
    tests = summary.get("test_metrics", {})
    rows = []
    for name, cv in summary.get("cv_metrics", {}).items():
        test = tests.get(name)
        rows.append(
            {
                "name": name,
                "cv": f"{cv['mean']:.3f} ± {cv['std']:.3f} "
                f"[{cv['ci_low']:.3f}, {cv['ci_high']:.3f}]",
                "test": "" if test is None else _number(test),
            }
        )
    return rows


def _subgroup_rows(summary: Mapping[str, Any]) -> list[dict[str, str]]:
    groups = summary.get("subgroups", {}).get("cv_out_of_fold", {})
    return [
        {
            "group": group,
            "n": str(values["n"]),
            "prevalence": f"{values['prevalence']:.2f}",
            "roc_auc": "n/a" if values.get("roc_auc") is None else _number(values["roc_auc"]),
            "recall": _number(values["recall"]),
            "precision": _number(values["precision"]),
        }
        for group, values in groups.items()
    ]


def model_card_markdown(
    champion: Mapping[str, Any], summary: Mapping[str, Any], data: Mapping[str, Any]
) -> str:
    """The card of a registered model: identity, intended use, data, metrics, limitations."""
    return render(
        "model_card/model_card.md.j2",
        name=champion["model_name"],
        version=champion["version"],
        algorithm=champion["algorithm"],
        model_uri=champion["model_uri"],
        run_id=champion["run_id"],
        estimator=summary.get("estimator", ""),
        best_params=summary.get("best_params", {}),
        data_sha256=data.get("sha256"),
        source=data.get("source"),
        rows_train=data.get("rows_train"),
        rows_test=data.get("rows_test"),
        split_seed=(data.get("split") or {}).get("seed"),
        metrics=_metric_rows(summary),
        subgroups=_subgroup_rows(summary),
    )


def markdown_to_html(markdown: str, title: str) -> str:
    """The card as a standalone page in the shared layout.

    Raw HTML in the Markdown is escaped, not passed through: the card holds values (parameters,
    sources) that come from the registry, and a page must not run what they contain.
    """
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    return render("model_card/model_card.html", title=title, body=body)
