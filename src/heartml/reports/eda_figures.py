"""The EDA page's figures: class balance, each feature by class, correlations, missing values."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from heartml.reports import columns
from heartml.reports.columns import CLASS_NAMES, SOURCE_COLUMN, TARGET
from heartml.reports.style import (
    DISEASE_COLOUR,
    NEUTRAL_COLOUR,
    NO_DISEASE_COLOUR,
    panel_grid,
)

CLASS_COLOURS = ((0, NO_DISEASE_COLOUR), (1, DISEASE_COLOUR))


def build_figures(frame: pd.DataFrame) -> Iterator[tuple[str, str, str, Figure]]:
    """(slug, title, caption, figure) of each figure, in page order."""
    yield (
        "class-balance",
        "Class balance",
        "Left: patients with and without heart disease (target = 1 when num > 0). "
        "Right: the UCI diagnosis num from 0 (no disease) to 4 (most severe).",
        class_balance_figure(frame),
    )
    yield (
        "numeric-by-target",
        "Numeric features by class",
        "Distribution of each measured feature for patients without and with heart disease.",
        numeric_by_target_figure(frame),
    )
    yield (
        "categorical-by-target",
        "Coded features by class",
        "Patients per UCI code, split by class; the percentage above each pair is the share "
        "with heart disease.",
        coded_by_target_figure(frame),
    )
    yield (
        "correlation",
        "Correlations",
        "Pearson correlation between features and the target (pairwise, missing values "
        "skipped). Nominal features enter with their UCI code numbers, so their values only "
        "hint at a relation.",
        correlation_figure(frame),
    )
    yield (
        "missing",
        "Missing values",
        "Missing values per column (including cholesterol and blood pressure recorded as 0).",
        missing_figure(frame),
    )


def correlation_columns(frame: pd.DataFrame) -> list[str]:
    # num is left out: target is derived from it, so it would top the list and teach nothing.
    return [c.name for c in columns.input_columns() if c.name in frame.columns] + [TARGET]


def _bar_labels(ax: Axes, bars: BarContainer, texts: list[str]) -> None:
    ax.bar_label(bars, labels=texts, padding=2, fontsize=9)


def class_balance_figure(frame: pd.DataFrame) -> Figure:
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


def numeric_by_target_figure(frame: pd.DataFrame) -> Figure:
    numeric = [c for c in columns.input_columns() if c.kind == "numeric"]
    figure, axes = panel_grid(len(numeric), per_row=3, width=13, row_height=3.8)
    for ax, column in zip(axes, numeric, strict=True):
        values = frame[column.name]
        # Shared bin edges so the two classes' bars line up and compare.
        edges = np.histogram_bin_edges(values.dropna(), bins=20).tolist()
        for target, colour in CLASS_COLOURS:
            ax.hist(
                values[frame[TARGET] == target].dropna(),
                bins=edges,
                color=colour,
                alpha=0.6,
                label=CLASS_NAMES[target],
            )
        ax.set_title(column.label)
        ax.set_xlabel(column.axis_label)
        ax.set_ylabel("Patients")
    axes[0].legend(frameon=False)
    return figure


def coded_by_target_figure(frame: pd.DataFrame) -> Figure:
    coded = [c for c in columns.input_columns() if c.kind != "numeric"]
    figure, axes = panel_grid(len(coded), per_row=2, width=12, row_height=3.6)
    for ax, column in zip(axes, coded, strict=True):
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
    return figure


def correlation_figure(frame: pd.DataFrame) -> Figure:
    names = correlation_columns(frame)
    matrix = frame[names].corr().to_numpy()
    labels = [f"{columns.label(name)} ({name})" for name in names]
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


def missing_figure(frame: pd.DataFrame) -> Figure:
    missing = frame.isna().sum()
    figure = Figure(figsize=(9, 0.35 * len(missing) + 1.2), layout="constrained")
    ax = figure.subplots()
    labels = [f"{columns.label(str(name))} ({name})" for name in missing.index]
    bars = ax.barh(labels, missing.to_numpy(), color=NEUTRAL_COLOUR)
    _bar_labels(ax, bars, [str(int(n)) for n in missing])
    ax.invert_yaxis()  # keep the file's column order from top to bottom
    ax.set_xlabel(f"Missing values (of {len(frame)} rows)")
    ax.margins(x=0.1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if missing.max() == 0:
        ax.set_xlim(0, 1)
    return figure
