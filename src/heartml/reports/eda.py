"""Exploratory data analysis page: what the data holds, in numbers and figures.

reports/eda/index.html with every figure embedded (and each also written as a PNG next to it),
so the page opens offline and can be attached on its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pandas as pd

from heartml.reports.columns import DatasetView
from heartml.reports.eda_figures import build_figures, correlation_columns
from heartml.reports.render import render
from heartml.reports.style import figure_style, save_figure
from heartml.spec import TARGET, DatasetSpec

LONGEST_SHOWN_VALUE = 300  # quality entries such as problem lists can be long


def write_eda_report(
    frame: pd.DataFrame, quality: Mapping[str, object], out_dir: Path, spec: DatasetSpec
) -> Path:
    """Writes out_dir/index.html (+ one PNG per figure in out_dir) and returns the index path.

    `frame` holds the spec's columns, its label column and the derived 0/1 target."""
    view = DatasetView.from_spec(spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    with figure_style():
        figures = [
            save_figure(out_dir, slug, title, caption, figure)
            for slug, title, caption, figure in build_figures(frame, view)
        ]
    html = render(
        "reports/eda.html",
        dataset=view.title,
        description=view.description,
        summary=summary_lines(frame, quality, target_correlations(frame, view), view),
        quality_rows=list(flatten(quality)),
        statistics=column_statistics(frame, view),
        figures=figures,
    )
    index = out_dir / "index.html"
    index.write_bytes(html.encode("utf-8"))
    return index


def target_correlations(frame: pd.DataFrame, view: DatasetView) -> pd.Series:
    """Pearson r of each input column with the target, strongest (by size) first."""
    correlations = frame[correlation_columns(frame, view)].corr()[TARGET].drop(TARGET)
    return correlations.reindex(correlations.abs().sort_values(ascending=False).index)


def summary_lines(
    frame: pd.DataFrame,
    quality: Mapping[str, object],
    correlations: pd.Series,
    view: DatasetView,
) -> list[str]:
    rows = len(frame)
    positives = int(frame[TARGET].sum())
    negatives = rows - positives
    lines = [
        f"{rows} {view.records if rows != 1 else view.record} (rows) with "
        f"{len(view.columns)} input features each.",
        f"{positives} of {rows} are positive, {view.positive_label} ({view.positive_rule}): "
        f"prevalence {positives / rows:.1%}; {negatives} ({negatives / rows:.1%}) are negative, "
        f"{view.negative_label} ({view.negative_rule}).",
    ]
    missing = frame.isna().sum()
    missing = missing[missing > 0]
    if missing.empty:
        lines.append("No missing values.")
    else:
        listed = ", ".join(
            f"{view.label(str(name))} ({name}): {count}" for name, count in missing.items()
        )
        lines.append(f"Missing values in {len(missing)} columns: {listed}.")
    strongest = ", ".join(
        f"{view.label(str(name))} ({name}) r = {value:+.2f}"
        for name, value in correlations.head(3).items()
    )
    lines.append(f"Most correlated with the target ({view.positive_label}): {strongest}.")
    duplicates = quality.get("duplicates")
    if duplicates is None:  # the quality report may not have counted them
        duplicates = int(frame.duplicated().sum())
    lines.append(f"Duplicate rows: {duplicates}.")
    return lines


def flatten(value: object, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Nested quality dict -> (dotted key, text) rows, so that whatever it holds is shown."""
    if isinstance(value, Mapping) and value:
        for key, inner in value.items():
            yield from flatten(inner, f"{prefix}.{key}" if prefix else str(key))
        return
    text = str(value)
    if len(text) > LONGEST_SHOWN_VALUE:
        text = text[:LONGEST_SHOWN_VALUE] + " …"
    yield prefix, text


def column_statistics(frame: pd.DataFrame, view: DatasetView) -> list[dict[str, str]]:
    rows = []
    for name in frame.columns:
        values = pd.to_numeric(frame[name], errors="coerce")
        rows.append(
            {
                "name": str(name),
                "label": view.axis_label(str(name)),
                "count": str(int(values.notna().sum())),
                "missing": str(int(values.isna().sum())),
                "mean": _two_decimals(values.mean()),
                "std": _two_decimals(values.std()),
                "min": _two_decimals(values.min()),
                "max": _two_decimals(values.max()),
            }
        )
    return rows


def _two_decimals(value: float) -> str:
    return "–" if pd.isna(value) else f"{value:.2f}"
