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

from heartml.reports.columns import DatasetView, capitalised
from heartml.reports.style import (
    NEGATIVE_COLOUR,
    NEUTRAL_COLOUR,
    POSITIVE_COLOUR,
    panel_grid,
)
from heartml.spec import TARGET

CLASS_COLOURS = ((0, NEGATIVE_COLOUR), (1, POSITIVE_COLOUR))
ANNOTATED_CORRELATIONS = 16  # above this many columns the numbers in the cells are unreadable


def build_figures(frame: pd.DataFrame, view: DatasetView) -> Iterator[tuple[str, str, str, Figure]]:
    """(slug, title, caption, figure) of each figure, in page order."""
    records = view.records
    classes = f"{view.negative_label} ({view.negative_rule}) and {view.positive_label} "
    classes += f"({view.positive_rule})"
    balance = f"Left: {records} per class, {classes}; target = 1 when {view.positive_rule}."
    if view.graded_label:
        balance += (
            f" Right: the source label {view.label_column} by value; the values where "
            f"{view.positive_rule} make the class {view.positive_label}."
        )
    yield ("class-balance", "Class balance", balance, class_balance_figure(frame, view))
    yield (
        "numeric-by-target",
        "Numeric features by class",
        f"Distribution of each measured feature for {records} of each class: {classes}.",
        numeric_by_target_figure(frame, view),
    )
    if view.coded_columns:
        yield (
            "categorical-by-target",
            "Coded features by class",
            f"{capitalised(records)} per code, split by class; the percentage above each pair "
            f"is the share of {view.positive_label} cases.",
            coded_by_target_figure(frame, view),
        )
    correlation = (
        "Pearson correlation between features and the target (pairwise, missing values skipped)."
    )
    if any(len(column.codes) > 2 for column in view.coded_columns):
        correlation += (
            " Coded features enter with their code numbers, so their values only hint at a "
            "relation."
        )
    yield ("correlation", "Correlations", correlation, correlation_figure(frame, view))
    yield ("missing", "Missing values", _missing_caption(view), missing_figure(frame, view))


def _missing_caption(view: DatasetView) -> str:
    recorded: dict[tuple[float, ...], list[str]] = {}
    for column in view.columns:
        if column.missing_values:
            recorded.setdefault(column.missing_values, []).append(column.label)
    if not recorded:
        return "Missing values per column."
    parts = [
        " and ".join(labels) + " recorded as " + " or ".join(f"{v:g}" for v in values)
        for values, labels in recorded.items()
    ]
    return f"Missing values per column (including {'; '.join(parts)})."


def correlation_columns(frame: pd.DataFrame, view: DatasetView) -> list[str]:
    # The label column is left out: the target is derived from it, so it would top the list and
    # teach nothing.
    return [c.name for c in view.columns if c.name in frame.columns] + [TARGET]


def _bar_labels(ax: Axes, bars: BarContainer, texts: list[str]) -> None:
    ax.bar_label(bars, labels=texts, padding=2, fontsize=9)


def class_balance_figure(frame: pd.DataFrame, view: DatasetView) -> Figure:
    graded = view.graded_label
    figure = Figure(figsize=(12, 4.2) if graded else (6, 4.2))
    if graded:
        by_target, by_label = figure.subplots(1, 2, width_ratios=[2, 3])
    else:
        by_target = figure.subplots()
    rows = len(frame)
    records = capitalised(view.records)

    target_counts = frame[TARGET].value_counts().reindex([0, 1], fill_value=0)
    bars = by_target.bar(
        [
            f"{view.negative_label}\n({view.negative_rule})",
            f"{view.positive_label}\n({view.positive_rule})",
        ],
        target_counts.to_numpy(),
        color=[NEGATIVE_COLOUR, POSITIVE_COLOUR],
    )
    _bar_labels(by_target, bars, [f"{n} ({n / rows:.1%})" for n in target_counts])
    by_target.set_ylabel(records)
    by_target.set_title(f"{capitalised(view.positive_label)} (target)")
    by_target.margins(y=0.12)
    if not graded:  # a two-valued label would only repeat the classes
        return figure

    column = view.label_column
    label_counts = frame[column].value_counts().reindex(view.label_values, fill_value=0)
    bars = by_label.bar(
        [str(value) for value in label_counts.index],
        label_counts.to_numpy(),
        color=[
            POSITIVE_COLOUR if value in view.positive_values else NEGATIVE_COLOUR
            for value in label_counts.index
        ],
    )
    _bar_labels(by_label, bars, [str(n) for n in label_counts])
    by_label.set_xlabel(
        f"Source label {column} ({view.negative_rule}: {view.negative_label}; "
        f"{view.positive_rule}: {view.positive_label})"
    )
    by_label.set_ylabel(records)
    by_label.set_title(f"Source label ({column})")
    by_label.margins(y=0.12)
    return figure


def numeric_by_target_figure(frame: pd.DataFrame, view: DatasetView) -> Figure:
    numeric = view.numeric_columns
    # Many columns (30 in the breast-cancer data) get more, narrower panels per row.
    per_row, width = (3, 13) if len(numeric) <= 12 else (5, 18)
    figure, axes = panel_grid(len(numeric), per_row=per_row, width=width, row_height=3.8)
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
                label=view.class_names[target],
            )
        ax.set_title(column.label)
        ax.set_xlabel(column.axis_label)
        ax.set_ylabel(capitalised(view.records))
    if axes:
        axes[0].legend(frameon=False)
    return figure


def coded_by_target_figure(frame: pd.DataFrame, view: DatasetView) -> Figure:
    coded = view.coded_columns
    figure, axes = panel_grid(len(coded), per_row=2, width=12, row_height=3.6)
    for ax, column in zip(axes, coded, strict=True):
        values = frame[column.name]
        groups: list[tuple[str, pd.Series]] = [
            (meaning, frame[TARGET][values == code]) for code, meaning in column.codes.items()
        ]
        if values.isna().any():
            groups.append(("missing", frame[TARGET][values.isna()]))
        positions = np.arange(len(groups))
        negatives = [int((g == 0).sum()) for _, g in groups]
        positives = [int((g == 1).sum()) for _, g in groups]
        width = 0.4
        ax.bar(
            positions - width / 2,
            negatives,
            width,
            color=NEGATIVE_COLOUR,
            label=view.negative_label,
        )
        ax.bar(
            positions + width / 2,
            positives,
            width,
            color=POSITIVE_COLOUR,
            label=view.positive_label,
        )
        for x, n, p in zip(positions, negatives, positives, strict=True):
            if n + p:
                ax.annotate(
                    f"{p / (n + p):.0%}",
                    (x, max(n, p)),
                    xytext=(0, 3),
                    textcoords="offset points",
                    ha="center",
                    fontsize=9,
                )
        ax.set_xticks(positions, [textwrap.fill(meaning, 14) for meaning, _ in groups])
        ax.set_title(f"{column.label} ({column.name})")
        ax.set_ylabel(capitalised(view.records))
        ax.margins(y=0.15)
    axes[0].legend(frameon=False)
    return figure


def correlation_figure(frame: pd.DataFrame, view: DatasetView) -> Figure:
    names = correlation_columns(frame, view)
    matrix = frame[names].corr().to_numpy()
    labels = [f"{view.label(name)} ({name})" for name in names]
    side = max(9.5, 0.42 * len(names) + 4)
    figure = Figure(figsize=(side + 1.5, side), layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(names)), labels, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(len(names)), labels)
    ax.spines[:].set_visible(False)
    annotated = len(names) <= ANNOTATED_CORRELATIONS
    for i in range(len(names) if annotated else 0):
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


def missing_figure(frame: pd.DataFrame, view: DatasetView) -> Figure:
    missing = frame.isna().sum()
    figure = Figure(figsize=(9, 0.35 * len(missing) + 1.2), layout="constrained")
    ax = figure.subplots()
    labels = [f"{view.label(str(name))} ({name})" for name in missing.index]
    bars = ax.barh(labels, missing.to_numpy(), color=NEUTRAL_COLOUR)
    _bar_labels(ax, bars, [str(int(n)) for n in missing])
    ax.invert_yaxis()  # keep the file's column order from top to bottom
    ax.set_xlabel(f"Missing values (of {len(frame)} rows)")
    ax.margins(x=0.1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if missing.max() == 0:
        ax.set_xlim(0, 1)
    return figure
