"""The EDA report: a self-contained HTML page with the figures embedded and as PNG files."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from page_checks import (
    DATA_URI,
    assert_figure_embedded_and_written,
    assert_headings_and_links,
    assert_index_page,
    assert_offline,
    assert_shared_layout,
    section,
)

from heartml.data.schema import parse_uci
from heartml.reports.eda import write_eda_report

pytestmark = pytest.mark.task1

RAW_FILE = Path(__file__).resolve().parents[3] / "data" / "raw" / "processed.cleveland.data"
FIGURE_SECTIONS = (
    "class-balance",
    "numeric-by-target",
    "categorical-by-target",
    "correlation",
    "missing",
)
# The page's sections as a reader sees them, in order (taken from the page before the move to
# templates): a lost section or figure fails here.
SECTION_HEADINGS = (
    "Summary",
    "Data quality report",
    "Summary statistics per column",
    "Class balance",
    "Numeric features by class",
    "Coded features by class",
    "Correlations",
    "Missing values",
)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return parse_uci(RAW_FILE.read_bytes())


def quality_for(frame: pd.DataFrame, source: str = "shipped copy") -> dict:
    return {
        "rows": len(frame),
        "missing_per_column": {k: int(v) for k, v in frame.isna().sum().items()},
        "duplicates": 0,
        "class_balance": {"0": 164, "1": 139},
        "source": {
            "source": source,
            # A URL as text is fine; only fetched resources would break offline viewing.
            "location": "https://archive.ics.uci.edu/heart-disease/processed.cleveland.data",
            "sha256": "a" * 64,
        },
    }


@pytest.fixture(scope="module")
def report(frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("eda") / "report"  # does not exist yet: must be created
    return write_eda_report(frame, quality_for(frame), out_dir)


@pytest.fixture(scope="module")
def html(report: Path) -> str:
    return report.read_text(encoding="utf-8")


def test_returns_index_html_inside_out_dir(report: Path) -> None:
    assert_index_page(report)


def test_page_has_every_section_in_order_and_a_link_to_each(html: str) -> None:
    assert_headings_and_links(html, list(SECTION_HEADINGS))


def test_page_uses_the_shared_layout(html: str) -> None:
    assert_shared_layout(html, "Heart disease data: exploratory analysis")


@pytest.mark.parametrize("section_id", FIGURE_SECTIONS)
def test_each_figure_section_embeds_a_png_data_uri(html: str, section_id: str) -> None:
    assert DATA_URI in section(html, section_id)


@pytest.mark.parametrize("section_id", FIGURE_SECTIONS)
def test_each_figure_is_a_valid_png_file_identical_to_the_embedded_one(
    report: Path, html: str, section_id: str
) -> None:
    assert_figure_embedded_and_written(report, html, section_id)


def test_html_loads_nothing_from_the_network(html: str) -> None:
    assert_offline(html)


def test_summary_states_rows_prevalence_missing_and_top_correlations(html: str) -> None:
    summary = re.sub(r"\s+", " ", section(html, "summary"))
    assert "303 patients" in summary
    assert "139 of 303" in summary
    assert "45.9%" in summary  # 139 / 303
    assert "(ca): 4" in summary
    assert "(thal): 2" in summary
    # thal, ca and exang are the three strongest in the Cleveland data.
    top = summary.split("Most correlated with heart disease:")[1].split("</li>")[0]
    assert [name for name in ("thal", "ca", "exang") if f"({name}) r = " in top] == [
        "thal",
        "ca",
        "exang",
    ]
    assert "r = +0.53" in top
    assert "Duplicate rows: 0" in summary


def test_statistics_table_has_a_row_per_column(html: str, frame: pd.DataFrame) -> None:
    statistics = section(html, "statistics")
    for name in frame.columns:
        assert f"<code>{name}</code>" in statistics
    age_row = statistics.split("<code>age</code>")[1].split("</tr>")[0]
    assert f"{frame['age'].mean():.2f}" in age_row
    ca_row = statistics.split("<code>ca</code>")[1].split("</tr>")[0]
    assert re.findall(r'class="num">(\d+)<', ca_row)[:2] == ["299", "4"]  # count, missing


def test_quality_values_are_shown(html: str) -> None:
    quality = section(html, "quality")
    assert "shipped copy" in quality
    assert "a" * 64 in quality


def test_html_special_characters_in_quality_are_escaped(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    hostile = '<script>alert("x")</script> & <b>'
    index = write_eda_report(frame, quality_for(frame, source=hostile), tmp_path)
    page = index.read_text(encoding="utf-8")
    assert "&lt;script&gt;" in page
    assert "&amp; &lt;b&gt;" in page
    assert "<script>" not in page
    assert "<b>" not in page


def test_minimal_quality_dict_still_gives_a_full_report(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    page = write_eda_report(frame, {}, tmp_path).read_text(encoding="utf-8")
    for section_id in FIGURE_SECTIONS:
        assert DATA_URI in section(page, section_id)
    assert "45.9%" in page
    assert "Duplicate rows: 0" in page  # counted from the data when the report lacks it


def test_leaves_no_figures_open_and_no_global_style_change(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    font_size = plt.rcParams["font.size"]
    open_before = plt.get_fignums()
    write_eda_report(frame, {}, tmp_path)
    assert plt.get_fignums() == open_before
    assert plt.rcParams["font.size"] == font_size
