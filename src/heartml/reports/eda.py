"""Exploratory data analysis page: what the data holds, in numbers and figures.

reports/eda/index.html with every figure embedded (and each also written as a PNG next to it),
so the page opens offline and can be attached on its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pandas as pd

from heartml.reports import columns
from heartml.reports.eda_figures import build_figures, correlation_columns
from heartml.reports.render import render
from heartml.reports.style import figure_style, save_figure

LONGEST_SHOWN_VALUE = 300  # quality entries such as problem lists can be long


def write_eda_report(frame: pd.DataFrame, quality: Mapping[str, object], out_dir: Path) -> Path:
    """Writes out_dir/index.html (+ one PNG per figure in out_dir) and returns the index path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with figure_style():
        figures = [
            save_figure(out_dir, slug, title, caption, figure)
            for slug, title, caption, figure in build_figures(frame)
        ]
    html = render(
        "reports/eda.html",
        dataset=columns.DATASET_TITLE,
        summary=summary_lines(frame, quality, target_correlations(frame)),
        quality_rows=list(flatten(quality)),
        statistics=column_statistics(frame),
        figures=figures,
    )
    index = out_dir / "index.html"
    index.write_text(html, encoding="utf-8")
    return index


def target_correlations(frame: pd.DataFrame) -> pd.Series:
    """Pearson r of each input column with the target, strongest (by size) first."""
    target = columns.TARGET
    correlations = frame[correlation_columns(frame)].corr()[target].drop(target)
    return correlations.reindex(correlations.abs().sort_values(ascending=False).index)


def summary_lines(
    frame: pd.DataFrame, quality: Mapping[str, object], correlations: pd.Series
) -> list[str]:
    rows = len(frame)
    diseased = int(frame[columns.TARGET].sum())
    lines = [
        f"{rows} patients (rows) with {len(columns.input_columns())} clinical features each.",
        f"{diseased} of {rows} have heart disease (num > 0): prevalence {diseased / rows:.1%}; "
        f"{rows - diseased} ({(rows - diseased) / rows:.1%}) do not.",
    ]
    missing = frame.isna().sum()
    missing = missing[missing > 0]
    if missing.empty:
        lines.append("No missing values.")
    else:
        listed = ", ".join(
            f"{columns.label(str(name))} ({name}): {count}" for name, count in missing.items()
        )
        lines.append(f"Missing values in {len(missing)} columns: {listed}.")
    strongest = ", ".join(
        f"{columns.label(str(name))} ({name}) r = {value:+.2f}"
        for name, value in correlations.head(3).items()
    )
    lines.append(f"Most correlated with heart disease: {strongest}.")
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


def column_statistics(frame: pd.DataFrame) -> list[dict[str, str]]:
    rows = []
    for name in frame.columns:
        values = pd.to_numeric(frame[name], errors="coerce")
        rows.append(
            {
                "name": str(name),
                "label": columns.axis_label(str(name)),
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
