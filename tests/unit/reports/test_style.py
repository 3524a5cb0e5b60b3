"""The shared figure style and save_figure: one PNG on disk, the same PNG in the page."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure

from heartml.reports.style import figure_style, save_figure

pytestmark = pytest.mark.task1


def test_save_figure_writes_the_png_it_embeds(tmp_path: Path) -> None:
    figure = Figure(figsize=(4, 3))
    figure.subplots().plot([0, 1], [1, 0])
    saved = save_figure(tmp_path, "line", "A line", "caption", figure)
    png = (tmp_path / "line.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (400, 300)  # 4 x 3 inches at the default 100 dpi
    prefix = "data:image/png;base64,"
    assert saved.data_uri.startswith(prefix)
    assert base64.b64decode(saved.data_uri[len(prefix) :]) == png
    assert (saved.slug, saved.title, saved.caption) == ("line", "A line", "caption")


def test_figure_style_applies_inside_and_restores_after() -> None:
    before = dict(plt.rcParams)
    with figure_style():
        assert plt.rcParams["axes.titleweight"] == "bold"
        assert plt.rcParams["axes.spines.top"] is False
        assert plt.rcParams["savefig.bbox"] == "tight"
    assert dict(plt.rcParams) == before
