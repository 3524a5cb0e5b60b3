"""The model card of a package: Markdown from a template, and the same card as an HTML page.

model_card.md is rendered from templates/model_card/model_card.md.j2; model_card.html is that
Markdown converted by markdown-it-py (CommonMark plus tables) inside the shared page layout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markdown_it import MarkdownIt

from heartml.reports.columns import DatasetView, uncapitalised
from heartml.reports.evaluation_results import number, signed
from heartml.reports.render import render
from heartml.spec import DatasetSpec


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


LISTED_COLUMNS = 5  # a longer list of column names would drown the card's line


def _names(names: Sequence[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def _imputed_text(view: DatasetView) -> str:
    """Which inputs the model imputes when unknown, by the shorter of the two lists."""
    optional = list(view.optional)
    required = [c.name for c in view.columns if c.name not in optional]
    if not optional:
        return ""
    if not required:
        return "any input"
    if len(required) < len(optional):
        return f"any input but {_names(required)}"
    return _names(optional)


def _rows(data: Mapping[str, Any]) -> int | None:
    """The clean data's row count from the run's data provenance (train + test if older)."""
    if isinstance(data.get("rows_clean"), int):
        return int(data["rows_clean"])
    train, test = data.get("rows_train"), data.get("rows_test")
    return train + test if isinstance(train, int) and isinstance(test, int) else None


def _smallest_subgroups(summary: Mapping[str, Any], view: DatasetView) -> list[str]:
    """Per subgroup variable, its smallest group and its share of the training rows."""
    groups = summary.get("subgroups", {}).get("cv_out_of_fold", {})
    smallest: dict[str, tuple[int, str]] = {}
    totals: dict[str, int] = {}
    for key, values in groups.items():
        n = values.get("n")
        if not isinstance(n, int):
            continue
        variable = key.partition("=")[0]
        totals[variable] = totals.get(variable, 0) + n
        if variable not in smallest or n < smallest[variable][0]:
            smallest[variable] = (n, key)
    return [
        f"{view.subgroup_label(key)}, n = {n} ({n / totals[variable]:.0%})"
        for variable, (n, key) in smallest.items()
        if totals[variable]
    ]


def _block_rows(summary: Mapping[str, Any], view: DatasetView) -> list[dict[str, str]]:
    everything = number(summary.get("cv_metrics", {}).get("roc_auc", {}).get("mean"))
    rows = []
    for block, values in (summary.get("masked_blocks") or {}).items():
        mean = number((values.get("roc_auc") or {}).get("mean"))
        if mean is None:
            continue
        change = "" if everything is None else f" ({signed(mean - everything)})"
        columns = list(values.get("columns") or ())
        # A long block is named by its title and size; the evaluation report lists its columns.
        names = _names(columns) if len(columns) <= LISTED_COLUMNS else f"{len(columns)} columns"
        rows.append(
            {"block": view.block_title(block), "columns": names, "auc": f"{mean:.3f}{change}"}
        )
    return rows


def model_card_markdown(
    champion: Mapping[str, Any],
    summary: Mapping[str, Any],
    data: Mapping[str, Any],
    spec: DatasetSpec,
) -> str:
    """The card of a registered model: identity, intended use, data, metrics, limitations.

    The dataset's words (title, description, label rule, citation) come from the spec the model
    was trained with; counts come from the run's data provenance and metrics."""
    view = DatasetView.from_spec(spec)
    rows = _rows(data)
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
        dataset=view.title,
        description=uncapitalised(view.description),
        record=view.record,
        rows=rows if rows is not None else "?",
        records=view.records if rows != 1 else view.record,
        positive_label=view.positive_label,
        positive_rule=view.positive_rule,
        label_column=view.label_column,
        n_inputs=len(view.columns),
        n_engineered=len(view.engineered),
        one_hot=bool(view.one_hot),
        citation=view.citation,
        licence=view.licence,
        smallest_subgroups=_smallest_subgroups(summary, view),
        imputed=_imputed_text(view),
        blocks=_block_rows(summary, view),
        limitations=spec.limitations,
    )


def markdown_to_html(markdown: str, title: str) -> str:
    """The card as a standalone page in the shared layout.

    Raw HTML in the Markdown is escaped, not passed through: the card holds values (parameters,
    sources) that come from the registry, and a page must not run what they contain.
    """
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    return render("model_card/model_card.html", title=title, body=body)
