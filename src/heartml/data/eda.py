"""Exploratory data analysis: a self-contained HTML report with figures of the Cleveland data.

The report must open offline and be attachable on its own, so every figure is embedded as a
base64 data URI (and also written as a PNG next to it), and the CSS is inline.
"""

from __future__ import annotations

import base64
import io
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import jinja2
import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.container import BarContainer

# The object-oriented Figure API never touches pyplot's global figure registry or a GUI backend:
# PNGs are rendered by Agg and a figure is freed when it goes out of scope, so nothing leaks.
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from heartml.coding import COLUMNS_BY_NAME, RAW_COLUMNS, SOURCE_COLUMN, TARGET, Column

NO_DISEASE_COLOUR = "#0072B2"  # Okabe-Ito blue and orange: distinguishable with colour blindness
DISEASE_COLOUR = "#E69F00"
NEUTRAL_COLOUR = "#7F7F7F"  # for figures not split by class
CLASS_NAMES = {0: "no disease", 1: "heart disease"}
EXTRA_LABELS = {SOURCE_COLUMN: "Diagnosis, UCI 0-4", TARGET: "Heart disease"}
LONGEST_SHOWN_VALUE = 300  # quality entries such as problem lists can be long


@dataclass(frozen=True)
class ReportFigure:
    slug: str  # section id in the HTML and PNG file name
    title: str
    caption: str
    data_uri: str


def write_eda_report(frame: pd.DataFrame, quality: dict, out_dir: Path) -> Path:
    """Writes out_dir/index.html (+ one PNG per figure in out_dir) and returns the index path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target_correlations = _target_correlations(frame)
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
        figures = [
            save_figure(out_dir, slug, title, caption, figure)
            for slug, title, caption, figure in _build_figures(frame)
        ]
    html = _TEMPLATE.render(
        summary=_summary_lines(frame, quality, target_correlations),
        quality_rows=list(_flatten(quality)),
        statistics=_column_statistics(frame),
        figures=figures,
    )
    index = out_dir / "index.html"
    index.write_text(html, encoding="utf-8")
    return index


# --- text -----------------------------------------------------------------------------------


def _label(name: str) -> str:
    if name in COLUMNS_BY_NAME:
        return COLUMNS_BY_NAME[name].label
    return EXTRA_LABELS.get(name, name)


def _label_with_unit(name: str) -> str:
    column = COLUMNS_BY_NAME.get(name)
    return _axis_label(column) if column else _label(name)


def _axis_label(column: Column) -> str:
    return f"{column.label} ({column.unit})" if column.unit else column.label


def _summary_lines(
    frame: pd.DataFrame, quality: Mapping[str, object], target_correlations: pd.Series
) -> list[str]:
    rows = len(frame)
    diseased = int(frame[TARGET].sum())
    lines = [
        f"{rows} patients (rows) with {len(RAW_COLUMNS)} clinical features each.",
        f"{diseased} of {rows} have heart disease (num > 0): prevalence {diseased / rows:.1%}; "
        f"{rows - diseased} ({(rows - diseased) / rows:.1%}) do not.",
    ]
    missing = frame.isna().sum()
    missing = missing[missing > 0]
    if missing.empty:
        lines.append("No missing values.")
    else:
        listed = ", ".join(f"{_label(name)} ({name}): {count}" for name, count in missing.items())
        lines.append(f"Missing values in {len(missing)} columns: {listed}.")
    strongest = ", ".join(
        f"{_label(name)} ({name}) r = {value:+.2f}"
        for name, value in target_correlations.head(3).items()
    )
    lines.append(f"Most correlated with heart disease: {strongest}.")
    duplicates = quality.get("duplicates")
    if duplicates is None:  # the quality report may not have counted them
        duplicates = int(frame.duplicated().sum())
    lines.append(f"Duplicate rows: {duplicates}.")
    return lines


def _flatten(value: object, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Nested quality dict -> (dotted key, text) rows, so that whatever it holds is shown."""
    if isinstance(value, Mapping) and value:
        for key, inner in value.items():
            yield from _flatten(inner, f"{prefix}.{key}" if prefix else str(key))
        return
    text = str(value)
    if len(text) > LONGEST_SHOWN_VALUE:
        text = text[:LONGEST_SHOWN_VALUE] + " …"
    yield prefix, text


def _column_statistics(frame: pd.DataFrame) -> list[dict[str, str]]:
    rows = []
    for name in frame.columns:
        values = pd.to_numeric(frame[name], errors="coerce")
        rows.append(
            {
                "name": str(name),
                "label": _label_with_unit(str(name)),
                "count": str(int(values.notna().sum())),
                "missing": str(int(values.isna().sum())),
                "mean": _number(values.mean()),
                "std": _number(values.std()),
                "min": _number(values.min()),
                "max": _number(values.max()),
            }
        )
    return rows


def _number(value: float) -> str:
    return "–" if pd.isna(value) else f"{value:.2f}"


def _correlation_columns(frame: pd.DataFrame) -> list[str]:
    # num is left out: target is derived from it, so it would top the list and teach nothing.
    return [c.name for c in RAW_COLUMNS if c.name in frame.columns] + [TARGET]


def _target_correlations(frame: pd.DataFrame) -> pd.Series:
    correlations = frame[_correlation_columns(frame)].corr()[TARGET].drop(TARGET)
    return correlations.reindex(correlations.abs().sort_values(ascending=False).index)


# --- figures --------------------------------------------------------------------------------


def _build_figures(frame: pd.DataFrame) -> Iterator[tuple[str, str, str, Figure]]:
    yield (
        "class-balance",
        "Class balance",
        "Left: patients with and without heart disease (target = 1 when num > 0). "
        "Right: the UCI diagnosis num from 0 (no disease) to 4 (most severe).",
        _class_balance_figure(frame),
    )
    yield (
        "numeric-by-target",
        "Numeric features by class",
        "Distribution of each measured feature for patients without and with heart disease.",
        _numeric_by_target_figure(frame),
    )
    yield (
        "categorical-by-target",
        "Coded features by class",
        "Patients per UCI code, split by class; the percentage above each pair is the share "
        "with heart disease.",
        _coded_by_target_figure(frame),
    )
    yield (
        "correlation",
        "Correlations",
        "Pearson correlation between features and the target (pairwise, missing values "
        "skipped). Nominal features enter with their UCI code numbers, so their values only "
        "hint at a relation.",
        _correlation_figure(frame),
    )
    yield (
        "missing",
        "Missing values",
        "Missing values per column (including cholesterol and blood pressure recorded as 0).",
        _missing_figure(frame),
    )


def save_figure(out_dir: Path, slug: str, title: str, caption: str, figure: Figure) -> ReportFigure:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    png = buffer.getvalue()
    (out_dir / f"{slug}.png").write_bytes(png)
    data_uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return ReportFigure(slug, title, caption, data_uri)


def _bar_labels(ax: Axes, bars: BarContainer, texts: list[str]) -> None:
    ax.bar_label(bars, labels=texts, padding=2, fontsize=9)


def _class_balance_figure(frame: pd.DataFrame) -> Figure:
    figure = Figure(figsize=(12, 4.2))
    by_target, by_num = figure.subplots(1, 2, width_ratios=[2, 3])
    rows = len(frame)

    target_counts = frame[TARGET].value_counts().reindex([0, 1], fill_value=0)
    bars = by_target.bar(
        [f"{CLASS_NAMES[0]}\n(num = 0)", f"{CLASS_NAMES[1]}\n(num > 0)"],
        target_counts.to_numpy(),
        color=[NO_DISEASE_COLOUR, DISEASE_COLOUR],
    )
    _bar_labels(by_target, bars, [f"{n} ({n / rows:.1%})" for n in target_counts])
    by_target.set_ylabel("Patients")
    by_target.set_title("Heart disease (target)")
    by_target.margins(y=0.12)

    num_counts = frame[SOURCE_COLUMN].value_counts().reindex(range(5), fill_value=0)
    bars = by_num.bar(
        [str(level) for level in num_counts.index],
        num_counts.to_numpy(),
        color=[NO_DISEASE_COLOUR] + [DISEASE_COLOUR] * 4,
    )
    _bar_labels(by_num, bars, [str(n) for n in num_counts])
    by_num.set_xlabel("UCI diagnosis num (0 = no disease, 1-4 = increasing severity)")
    by_num.set_ylabel("Patients")
    by_num.set_title("Diagnosis (num)")
    by_num.margins(y=0.12)
    return figure


def _numeric_by_target_figure(frame: pd.DataFrame) -> Figure:
    numeric = [c for c in RAW_COLUMNS if c.kind == "numeric"]
    columns = 3
    rows = -(-len(numeric) // columns)
    figure = Figure(figsize=(13, 3.8 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, column in zip(axes, numeric, strict=False):
        values = frame[column.name]
        # Shared bin edges so the two classes' bars line up and compare.
        edges = np.histogram_bin_edges(values.dropna(), bins=20)
        for target, colour in ((0, NO_DISEASE_COLOUR), (1, DISEASE_COLOUR)):
            ax.hist(
                values[frame[TARGET] == target].dropna(),
                bins=edges,
                color=colour,
                alpha=0.6,
                label=CLASS_NAMES[target],
            )
        ax.set_title(column.label)
        ax.set_xlabel(_axis_label(column))
        ax.set_ylabel("Patients")
    axes[0].legend(frameon=False)
    for ax in axes[len(numeric) :]:
        ax.set_visible(False)
    return figure


def _coded_by_target_figure(frame: pd.DataFrame) -> Figure:
    coded = [c for c in RAW_COLUMNS if c.kind != "numeric"]
    columns = 2
    rows = -(-len(coded) // columns)
    figure = Figure(figsize=(12, 3.6 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, column in zip(axes, coded, strict=False):
        values = frame[column.name]
        groups: list[tuple[str, pd.Series]] = [
            (meaning, frame[TARGET][values == code]) for code, meaning in column.codes.items()
        ]
        if values.isna().any():
            groups.append(("missing", frame[TARGET][values.isna()]))
        positions = np.arange(len(groups))
        healthy = [int((g == 0).sum()) for _, g in groups]
        diseased = [int((g == 1).sum()) for _, g in groups]
        width = 0.4
        ax.bar(positions - width / 2, healthy, width, color=NO_DISEASE_COLOUR, label=CLASS_NAMES[0])
        ax.bar(positions + width / 2, diseased, width, color=DISEASE_COLOUR, label=CLASS_NAMES[1])
        for x, h, d in zip(positions, healthy, diseased, strict=True):
            if h + d:
                ax.annotate(
                    f"{d / (h + d):.0%}",
                    (x, max(h, d)),
                    xytext=(0, 3),
                    textcoords="offset points",
                    ha="center",
                    fontsize=9,
                )
        ax.set_xticks(positions, [textwrap.fill(meaning, 14) for meaning, _ in groups])
        ax.set_title(f"{column.label} ({column.name})")
        ax.set_ylabel("Patients")
        ax.margins(y=0.15)
    axes[0].legend(frameon=False)
    for ax in axes[len(coded) :]:
        ax.set_visible(False)
    return figure


def _correlation_figure(frame: pd.DataFrame) -> Figure:
    names = _correlation_columns(frame)
    matrix = frame[names].corr().to_numpy()
    labels = [f"{_label(name)} ({name})" for name in names]
    figure = Figure(figsize=(11, 9.5), layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(names)), labels, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(len(names)), labels)
    ax.spines[:].set_visible(False)
    for i in range(len(names)):
        for j in range(len(names)):
            value = matrix[i, j]
            ax.text(
                j,
                i,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if abs(value) > 0.6 else "black",
            )
    figure.colorbar(image, ax=ax, shrink=0.8, label="Pearson r")
    return figure


def _missing_figure(frame: pd.DataFrame) -> Figure:
    missing = frame.isna().sum()
    figure = Figure(figsize=(9, 0.35 * len(missing) + 1.2), layout="constrained")
    ax = figure.subplots()
    labels = [f"{_label(str(name))} ({name})" for name in missing.index]
    bars = ax.barh(labels, missing.to_numpy(), color=NEUTRAL_COLOUR)
    _bar_labels(ax, bars, [str(int(n)) for n in missing])
    ax.invert_yaxis()  # keep the file's column order from top to bottom
    ax.set_xlabel(f"Missing values (of {len(frame)} rows)")
    ax.margins(x=0.1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if missing.max() == 0:
        ax.set_xlim(0, 1)
    return figure


# --- page -----------------------------------------------------------------------------------

_TEMPLATE = jinja2.Environment(autoescape=True).from_string(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Heart disease data: exploratory analysis</title>
<style>
  body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
         line-height: 1.5; margin: 0 auto; max-width: 1100px; padding: 1.5rem; }
  h1 { font-size: 1.7rem; margin-bottom: 0.2rem; }
  h2 { font-size: 1.3rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem;
       margin-top: 2.2rem; }
  .summary { background: #f5f7fa; border-left: 4px solid #0072B2; padding: 0.6rem 1.2rem; }
  table { border-collapse: collapse; font-size: 0.92rem; width: 100%; }
  th, td { padding: 0.3rem 0.6rem; border-bottom: 1px solid #e4e4e4; text-align: left; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  tr:nth-child(even) td { background: #fafafa; }
  code { font-size: 0.9em; }
  td.value { word-break: break-all; }
  figure { margin: 0; }
  figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
  figcaption { color: #555; font-size: 0.92rem; margin-top: 0.4rem; }
  nav a { margin-right: 1rem; }
</style>
</head>
<body>
<h1>Heart disease data: exploratory analysis</h1>
<p>UCI Heart Disease, Cleveland subset.</p>
<nav>
  <a href="#summary">Summary</a><a href="#quality">Data quality</a>
  <a href="#statistics">Statistics</a>
  {%- for figure in figures %}<a href="#{{ figure.slug }}">{{ figure.title }}</a>{% endfor %}
</nav>

<section id="summary">
<h2>Summary</h2>
<ul class="summary">
{%- for line in summary %}
  <li>{{ line }}</li>
{%- endfor %}
</ul>
</section>

<section id="quality">
<h2>Data quality report</h2>
{%- if quality_rows %}
<table>
  <tr><th>Item</th><th>Value</th></tr>
  {%- for key, value in quality_rows %}
  <tr><td><code>{{ key }}</code></td><td class="value">{{ value }}</td></tr>
  {%- endfor %}
</table>
{%- else %}
<p>The data quality report is empty.</p>
{%- endif %}
</section>

<section id="statistics">
<h2>Summary statistics per column</h2>
<table>
  <tr><th>Column</th><th>Meaning</th><th class="num">Count</th><th class="num">Missing</th>
      <th class="num">Mean</th><th class="num">Std</th><th class="num">Min</th>
      <th class="num">Max</th></tr>
  {%- for row in statistics %}
  <tr><td><code>{{ row.name }}</code></td><td>{{ row.label }}</td>
      <td class="num">{{ row.count }}</td><td class="num">{{ row.missing }}</td>
      <td class="num">{{ row.mean }}</td><td class="num">{{ row.std }}</td>
      <td class="num">{{ row.min }}</td><td class="num">{{ row.max }}</td></tr>
  {%- endfor %}
</table>
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
</body>
</html>
"""
)
