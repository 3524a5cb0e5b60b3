"""The monitoring report's figures (heartml.reports.monitoring computes what they show)."""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from heartml.monitoring.checks import Limits
from heartml.reports.style import (
    HIGHLIGHT_COLOUR,
    NEUTRAL_COLOUR,
    PALETTE,
    REFERENCE_COLOUR,
    ReportFigure,
    figure_style,
    legend,
    panel_grid,
    save_figure,
    unit_square,
)

CALIBRATION_BINS = 10
DISTRIBUTIONS = "distributions"  # the figure's slug; its numbers go to <slug>.csv beside it


@dataclass(frozen=True)
class Distribution:
    """One input's reference and current proportions in the same bins (current None: no value
    in the window)."""

    name: str
    labels: list[str]  # one per bin
    reference: np.ndarray
    current: np.ndarray | None
    psi: float | None


def interval_labels(edges: list[float]) -> list[str]:
    """Bins on interior edges, open at both ends, closed on the left (searchsorted side=right)."""
    if not edges:
        return ["all"]
    inner = [f"[{a:g}, {b:g})" for a, b in itertools.pairwise(edges)]
    return [f"< {edges[0]:g}", *inner, f"≥ {edges[-1]:g}"]


def _times(edges: np.ndarray) -> np.ndarray:
    """Bin centres as UTC datetime64 (matplotlib's date axis)."""
    centres = (edges[:-1] + edges[1:]) / 2
    return np.round(centres).astype("datetime64[s]")


def _time_axis(figure: Figure) -> None:
    figure.autofmt_xdate()


def volume(out: Path, edges: np.ndarray, series: dict[str, Any]) -> ReportFigure:
    figure = Figure(figsize=(9, 3.6), layout="constrained")
    ax = figure.subplots()
    times, bottom = _times(edges), np.zeros(len(edges) - 1)
    width = (edges[1] - edges[0]) / 86400 * 0.9
    for index, (version, counts) in enumerate(series["volume"].items()):
        ax.bar(
            times, counts, width, bottom=bottom, color=PALETTE[index % len(PALETTE)], label=version
        )
        bottom = bottom + counts
    ax.set_ylabel("predictions")
    if series["volume"]:
        legend(ax)
    _time_axis(figure)
    return save_figure(
        out, "volume", "Volume over time",
        "Predictions recorded per time bin, by model version.", figure,
    )  # fmt: skip


def psi_over_time(
    out: Path, edges: np.ndarray, series: dict[str, Any], limits: Limits
) -> ReportFigure:
    figure = Figure(figsize=(9, 4.2), layout="constrained")
    ax = figure.subplots()
    times = _times(edges)
    for index, (name, values) in enumerate(series["psi"].items()):
        style = "-" if index < len(PALETTE) else "--"
        ax.plot(
            times, values, style, marker="o", ms=3, color=PALETTE[index % len(PALETTE)], label=name
        )
    ax.axhline(
        limits.psi_max, color=HIGHLIGHT_COLOUR, lw=1, ls=":", label=f"limit {limits.psi_max:g}"
    )
    ax.set_ylabel("PSI vs the training reference")
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_ylim(bottom=0)
    legend(ax, ncol=4, loc="upper left")
    _time_axis(figure)
    return save_figure(
        out, "psi", "Input drift over time",
        "Population stability index of each input per time bin against the package's reference "
        "statistics (gaps: fewer inputs than the drift code needs).", figure,
    )  # fmt: skip


def performance(out: Path, edges: np.ndarray, series: dict[str, Any]) -> ReportFigure:
    figure = Figure(figsize=(9, 3.8), layout="constrained")
    ax = figure.subplots()
    times = _times(edges)
    for key, label, colour in (
        ("realised", "realised ROC-AUC (outcomes)", PALETTE[0]),
        ("estimated", "estimated ROC-AUC (CBPE, no outcome yet)", PALETTE[1]),
    ):
        values = np.array(series[key], dtype=np.float64).reshape(-1, 3)
        ax.plot(times, values[:, 0], marker="o", ms=3, color=colour, label=label)
        ax.fill_between(times, values[:, 1], values[:, 2], color=colour, alpha=0.2, lw=0)
    ax.set_ylim(0, 1.02)
    ax.axhline(0.5, color=REFERENCE_COLOUR, lw=0.8, ls=":")
    ax.set_ylabel("ROC-AUC")
    legend(ax, loc="lower left")
    _time_axis(figure)
    return save_figure(
        out, "performance", "Realised and estimated performance",
        "ROC-AUC per time bin with its 95% band: realised on the predictions with an outcome "
        "(bootstrap), estimated on those still waiting (CBPE).", figure,
    )  # fmt: skip


def calibration_points(
    outcomes: np.ndarray, probabilities: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean predicted probability and observed rate in each non-empty one of CALIBRATION_BINS
    equal-width bins of predicted probability."""
    which = np.minimum((probabilities * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    counts = np.bincount(which, minlength=CALIBRATION_BINS)
    used = counts > 0
    predicted = np.bincount(which, probabilities, CALIBRATION_BINS)[used] / counts[used]
    observed = np.bincount(which, outcomes.astype(float), CALIBRATION_BINS)[used] / counts[used]
    return predicted, observed


def calibration_curves(
    out: Path,
    outcomes: np.ndarray,
    curves: dict[str, np.ndarray],
    slug: str = "calibration",
    title: str = "Calibration",
    caption: str = "",
) -> ReportFigure:
    """One reliability curve per named set of probabilities of the same outcomes (one curve:
    grey, no legend; several: the palette's colours and a legend)."""
    figure = Figure(figsize=(4.8, 4.8), layout="constrained")
    ax = figure.subplots()
    ax.plot([0, 1], [0, 1], color=REFERENCE_COLOUR, lw=0.8, ls=":")
    for index, (label, probabilities) in enumerate(curves.items()):
        if len(outcomes):
            colour = NEUTRAL_COLOUR if len(curves) == 1 else PALETTE[index % len(PALETTE)]
            predicted, observed = calibration_points(outcomes, probabilities)
            ax.plot(predicted, observed, marker="o", color=colour, label=label)
    if len(curves) > 1 and len(outcomes):
        legend(ax, loc="upper left")
    unit_square(ax)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed rate")
    binned = f"Predictions with an outcome in {CALIBRATION_BINS} bins of predicted probability"
    return save_figure(out, slug, title, f"{binned}{caption}", figure)


def calibration(out: Path, outcomes: np.ndarray, probabilities: np.ndarray) -> ReportFigure:
    return calibration_curves(
        out, outcomes, {"served": probabilities},
        caption=": on the diagonal, the probabilities mean what they say.",
    )  # fmt: skip


def feature_distributions(out: Path, features: list[Distribution]) -> ReportFigure:
    figure, axes = panel_grid(len(features), per_row=4, width=14, row_height=3.0)
    rows = []
    for ax, feature in zip(axes, features, strict=True):
        positions = np.arange(len(feature.labels))
        width = 0.4
        ax.bar(
            positions - width / 2, feature.reference, width, color=REFERENCE_COLOUR,
            label="reference",
        )  # fmt: skip
        if feature.current is not None:
            ax.bar(positions + width / 2, feature.current, width, color=PALETTE[0], label="current")
        psi = "–" if feature.psi is None else f"{feature.psi:.3f}"
        ax.set_title(f"{feature.name} (PSI {psi})")
        if max(map(len, feature.labels)) > 3:  # intervals: slanted to fit; codes stay upright
            ax.set_xticks(positions, feature.labels, rotation=60, ha="right", fontsize=7)
        else:
            ax.set_xticks(positions, feature.labels)
        ax.set_ylabel("share")
        current = [None] * len(positions) if feature.current is None else feature.current
        rows += [
            [feature.name, label, f"{r:.6f}", "" if c is None else f"{c:.6f}"]
            for label, r, c in zip(feature.labels, feature.reference, current, strict=True)
        ]
    if axes:
        legend(axes[0])
    # The plotted numbers, for a reader who wants them (and a test that checks them).
    table = io.StringIO(newline="")
    csv.writer(table).writerows([["feature", "bin", "reference", "current"], *rows])
    (out / f"{DISTRIBUTIONS}.csv").write_bytes(table.getvalue().encode("utf-8"))
    return save_figure(
        out, DISTRIBUTIONS, "Reference and current distributions",
        "Share of each input's values per bin: the training reference (the package's reference "
        "statistics) beside the whole window, in the bins the PSI is computed on (numeric: the "
        "reference deciles; coded: the reference codes; missing values left out). Numbers in "
        f"{DISTRIBUTIONS}.csv.", figure,
    )  # fmt: skip


def all_figures(
    out: Path,
    edges: np.ndarray,
    series: dict[str, Any],
    limits: Limits,
    outcomes: np.ndarray,
    probabilities: np.ndarray,
    features: list[Distribution],
) -> list[ReportFigure]:
    with figure_style():
        return [
            volume(out, edges, series),
            feature_distributions(out, features),
            psi_over_time(out, edges, series, limits),
            performance(out, edges, series),
            calibration(out, outcomes, probabilities),
        ]
