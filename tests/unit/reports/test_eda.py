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
    heart_words,
    section,
    visible_text,
)
from sklearn.datasets import load_breast_cancer

from heartml.data.acquire import sklearn_csv
from heartml.data.parse import parse_records
from heartml.reports.eda import write_eda_report
from heartml.spec import DatasetSpec, load_spec

pytestmark = pytest.mark.task1

ROOT = Path(__file__).resolve().parents[3]
RAW_FILE = ROOT / "data" / "raw" / "processed.cleveland.data"
BREAST_SPEC_FILE = ROOT / "configs" / "datasets" / "breast_cancer.yaml"
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
def frame(heart_spec: DatasetSpec) -> pd.DataFrame:
    return parse_records(RAW_FILE.read_bytes(), heart_spec).frame


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
def report(
    frame: pd.DataFrame, heart_spec: DatasetSpec, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out_dir = tmp_path_factory.mktemp("eda") / "report"  # does not exist yet: must be created
    return write_eda_report(frame, quality_for(frame), out_dir, heart_spec)


@pytest.fixture(scope="module")
def html(report: Path) -> str:
    return report.read_text(encoding="utf-8")


def test_returns_index_html_inside_out_dir(report: Path) -> None:
    assert_index_page(report)


def test_page_has_every_section_in_order_and_a_link_to_each(html: str) -> None:
    assert_headings_and_links(html, list(SECTION_HEADINGS))


def test_page_uses_the_shared_layout(html: str) -> None:
    assert_shared_layout(html, "UCI Heart Disease (Cleveland): exploratory analysis")
    header = re.search(r"<header>(.*?)</header>", html, re.DOTALL)
    assert header and "from 13 routine clinical measurements" in header.group(1)  # the spec's


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
    assert "303 patients (rows) with 13 input features each" in summary
    assert "139 of 303 are positive, heart disease (num &gt; 0): prevalence 45.9%" in summary
    assert "164 (54.1%) are negative, no heart disease (num = 0)" in summary
    assert "(ca): 4" in summary
    assert "(thal): 2" in summary
    # thal, ca and exang are the three strongest in the Cleveland data.
    top = summary.split("Most correlated with the target (heart disease):")[1].split("</li>")[0]
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


def test_figure_captions_say_the_specs_words(html: str) -> None:
    captions = " ".join(re.findall(r"<figcaption>(.*?)</figcaption>", html, re.DOTALL))
    assert "no heart disease (num = 0) and heart disease (num &gt; 0)" in captions
    assert "Right: the source label num by value" in captions  # num is graded 0-4
    assert "Patients per code" in captions
    # The spec's missing_values: trestbps and chol write 0 where nothing was measured.
    assert "Resting blood pressure and Serum cholesterol recorded as 0" in captions


def test_html_special_characters_in_quality_are_escaped(
    frame: pd.DataFrame, heart_spec: DatasetSpec, tmp_path: Path
) -> None:
    hostile = '<script>alert("x")</script> & <b>'
    index = write_eda_report(frame, quality_for(frame, source=hostile), tmp_path, heart_spec)
    page = index.read_text(encoding="utf-8")
    assert "&lt;script&gt;" in page
    assert "&amp; &lt;b&gt;" in page
    assert "<script>" not in page
    assert "<b>" not in page


def test_minimal_quality_dict_still_gives_a_full_report(
    frame: pd.DataFrame, heart_spec: DatasetSpec, tmp_path: Path
) -> None:
    page = write_eda_report(frame, {}, tmp_path, heart_spec).read_text(encoding="utf-8")
    for section_id in FIGURE_SECTIONS:
        assert DATA_URI in section(page, section_id)
    assert "45.9%" in page
    assert "Duplicate rows: 0" in page  # counted from the data when the report lacks it


def test_leaves_no_figures_open_and_no_global_style_change(
    frame: pd.DataFrame, heart_spec: DatasetSpec, tmp_path: Path
) -> None:
    font_size = plt.rcParams["font.size"]
    open_before = plt.get_fignums()
    write_eda_report(frame, {}, tmp_path, heart_spec)
    assert plt.get_fignums() == open_before
    assert plt.rcParams["font.size"] == font_size


# --- the same page for another dataset: the breast-cancer spec -------------------------------

BREAST_FIGURES = ("class-balance", "numeric-by-target", "correlation", "missing")


@pytest.fixture(scope="module")
def breast_spec() -> DatasetSpec:
    return load_spec(BREAST_SPEC_FILE)


@pytest.fixture(scope="module")
def breast_frame(breast_spec: DatasetSpec) -> pd.DataFrame:
    names = {name: column.source_name or name for name, column in breast_spec.columns.items()}
    target = (breast_spec.target.column, breast_spec.target.source_name or "target")
    return parse_records(sklearn_csv("breast_cancer", names, target), breast_spec).frame


@pytest.fixture(scope="module")
def breast_report(
    breast_frame: pd.DataFrame, breast_spec: DatasetSpec, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out_dir = tmp_path_factory.mktemp("breast-eda") / "report"
    return write_eda_report(breast_frame, {"rows": len(breast_frame)}, out_dir, breast_spec)


@pytest.fixture(scope="module")
def breast_html(breast_report: Path) -> str:
    return breast_report.read_text(encoding="utf-8")


def test_breast_cancer_page_has_its_sections_and_no_coded_figure(breast_html: str) -> None:
    # No coded column in this spec: the coded-features figure is left out, not drawn empty.
    headings = [h for h in SECTION_HEADINGS if h != "Coded features by class"]
    assert_headings_and_links(breast_html, headings)
    assert_shared_layout(breast_html, "Breast Cancer Wisconsin (Diagnostic): exploratory analysis")
    assert_offline(breast_html)


@pytest.mark.parametrize("section_id", BREAST_FIGURES)
def test_breast_cancer_figures_are_embedded_and_written(
    breast_report: Path, breast_html: str, section_id: str
) -> None:
    assert_figure_embedded_and_written(breast_report, breast_html, section_id)


def test_breast_cancer_summary_counts_come_from_the_data(breast_html: str) -> None:
    # Oracle: scikit-learn's own copy, where target 0 is malignant.
    data = load_breast_cancer()
    rows, malignant = len(data.target), int((data.target == 0).sum())
    summary = re.sub(r"\s+", " ", section(breast_html, "summary"))
    assert f"{rows} tumour samples (rows) with 30 input features each" in summary
    assert (
        f"{malignant} of {rows} are positive, malignant (diagnosis = 0): prevalence "
        f"{malignant / rows:.1%}; {rows - malignant} ({(rows - malignant) / rows:.1%}) are "
        "negative, benign (diagnosis = 1)."
    ) in summary
    assert "No missing values." in summary
    assert "Most correlated with the target (malignant):" in summary


def test_breast_cancer_statistics_use_the_specs_labels(
    breast_html: str, breast_spec: DatasetSpec
) -> None:
    statistics = section(breast_html, "statistics")
    for name, column in breast_spec.columns.items():
        row = statistics.split(f"<code>{name}</code>")[1].split("</tr>")[0]
        assert f"<td>{column.label}</td>" in row
    assert "Malignant (1 when diagnosis = 0)" in statistics


def test_breast_cancer_page_has_no_heart_words(breast_html: str, html: str) -> None:
    assert heart_words(visible_text(breast_html)) == []
    # The check itself can fail: the heart page has them.
    assert {"heart", "num", "Cleveland", "patients"} <= set(heart_words(visible_text(html)))
