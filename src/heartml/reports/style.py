"""The look shared by every report figure, and the one way a figure leaves matplotlib.

Figures use the object-oriented `Figure` API: it never touches pyplot's global figure registry or
a GUI backend, PNGs are rendered by Agg, and a figure is freed when it goes out of scope.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure

# Okabe-Ito: distinguishable with colour blindness. Blue and orange are the two classes in the
# EDA; in the evaluation each model keeps one colour in every figure, so a reader learns it once.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")
NEGATIVE_COLOUR, POSITIVE_COLOUR = PALETTE[0], PALETTE[1]  # the two classes
NEUTRAL_COLOUR = "#7F7F7F"  # figures not split by class
REFERENCE_COLOUR = "#9A9A9A"  # chance lines, diagonals, baselines
HIGHLIGHT_COLOUR = PALETTE[5]  # a marker that must stand out from every model colour


@dataclass(frozen=True)
class ReportFigure:
    slug: str  # section id in the HTML page and PNG file name
    title: str
    caption: str
    data_uri: str  # the PNG itself, so the page opens offline and travels as one file


@contextmanager
def figure_style() -> Iterator[None]:
    """The report style for the figures built and saved inside; the global style is restored.

    savefig reads the style too, so figures must be saved inside the block.
    """
    # A literal here, not a module constant: matplotlib's stubs type the keys as literals.
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
        yield


def save_figure(out_dir: Path, slug: str, title: str, caption: str, figure: Figure) -> ReportFigure:
    """Write out_dir/<slug>.png and return the figure with the same PNG as a data URI."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    png = buffer.getvalue()
    (out_dir / f"{slug}.png").write_bytes(png)
    data_uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return ReportFigure(slug, title, caption, data_uri)


def legend(ax: Axes, **kwargs: Any) -> None:
    ax.legend(frameon=False, fontsize=9, **kwargs)


def panel_grid(
    count: int, per_row: int, width: float, row_height: float
) -> tuple[Figure, list[Axes]]:
    """A figure with `count` panels filled row by row; the leftover panels of the grid are hidden."""
    rows = -(-count // per_row)
    figure = Figure(figsize=(width, row_height * rows), layout="constrained")
    axes = list(figure.subplots(rows, per_row, squeeze=False).ravel())
    for ax in axes[count:]:
        ax.set_visible(False)
    return figure, axes[:count]


def unit_square(ax: Axes) -> None:
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_aspect("equal")


def separate_rows(ax: Axes, count: int) -> None:
    """Thin lines between the rows of a horizontal chart keep each row's marks together."""
    for boundary in range(count - 1):
        ax.axhline(boundary + 0.5, color="#e4e4e4", lw=0.8)
