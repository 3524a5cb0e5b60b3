"""The model card: Markdown from its template, and the same card as a page in the shared layout."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from page_checks import heart_words

from heartml.reports.model_card import markdown_to_html, model_card_markdown
from heartml.spec import DatasetSpec, load_spec

pytestmark = pytest.mark.task4

DATA = Path(__file__).parent / "data"
BREAST_SPEC_FILE = (
    Path(__file__).resolve().parents[3] / "configs" / "datasets" / "breast_cancer.yaml"
)
# model_card_input.json: a real pipeline's summary (curves left out, its masked blocks kept), one
# subgroup without an AUC and a parameter holding HTML. model_card_expected.md: the card for that
# input and the heart spec, reviewed line by line against the card heartml.package wrote by
# hand before the reports followed the spec (same sections and facts; the dataset's words now
# come from the spec, the counts from the data). model_card_breast_input.json: the champion of
# a real breast-cancer run (small grid).
SECTIONS = ("Intended use", "Model", "Data", "Metrics", "Subgroups", "Limitations")


@pytest.fixture(scope="module")
def card_input() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((DATA / "model_card_input.json").read_text())
    return document


@pytest.fixture(scope="module")
def markdown(card_input: dict[str, Any], heart_spec: DatasetSpec) -> str:
    return model_card_markdown(
        card_input["champion"], card_input["summary"], card_input["data"], heart_spec
    )


@pytest.fixture(scope="module")
def page(markdown: str) -> str:
    return markdown_to_html(markdown, "Model card: heart_disease_logistic_regression v3")


class _Page(HTMLParser):
    """Headings, table rows (cell texts) and <code> texts of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[tuple[str, str]] = []
        self.tables: list[list[list[str]]] = []
        self.codes: list[str] = []
        self._open: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        if tag in ("h1", "h2", "td", "th", "code"):
            self._open = (tag, [])

    def handle_endtag(self, tag: str) -> None:
        if not self._open or self._open[0] != tag:
            return
        text = "".join(self._open[1])
        if tag in ("td", "th"):
            self.tables[-1][-1].append(text)
        elif tag == "code":
            self.codes.append(text)
        else:
            self.headings.append((tag, text))
        self._open = None

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[1].append(data)


def parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    return parser


def test_markdown_is_the_card_the_package_always_carried(markdown: str) -> None:
    assert markdown == (DATA / "model_card_expected.md").read_text()


def test_markdown_states_identity_sections_and_the_numbers(
    markdown: str, card_input: dict[str, Any]
) -> None:
    assert markdown.startswith("# Model card: heart_disease_logistic_regression v3\n")
    for section in SECTIONS:
        assert re.search(rf"^## {section}", markdown, re.MULTILINE), section
    summary = card_input["summary"]
    cv = summary["cv_metrics"]["roc_auc"]
    assert (
        f"| roc_auc | {cv['mean']:.3f} ± {cv['std']:.3f} [{cv['ci_low']:.3f}, "
        f"{cv['ci_high']:.3f}] | {summary['test_metrics']['roc_auc']:.3f} |"
    ) in markdown
    assert re.search(r"^\| log_loss \| .* \|  \|$", markdown, re.MULTILINE)  # no test value
    young = summary["subgroups"]["cv_out_of_fold"]["age_group=young"]
    assert f"| age_group=young | {young['n']} | {young['prevalence']:.2f} | n/a |" in markdown
    assert card_input["data"]["sha256"] in markdown


def test_html_has_the_cards_headings_and_tables(page: str, card_input: dict[str, Any]) -> None:
    parsed = parse(page)
    assert parsed.headings[0] == ("h1", "Model card: heart_disease_logistic_regression v3")
    assert [text.split(" (")[0] for tag, text in parsed.headings if tag == "h2"] == list(SECTIONS)
    metrics, subgroups = parsed.tables
    summary = card_input["summary"]
    assert metrics[0] == ["metric", "CV", "test"]
    assert [row[0] for row in metrics[1:]] == list(summary["cv_metrics"])
    assert subgroups[0] == ["group", "n", "prevalence", "ROC-AUC", "recall", "precision"]
    assert [row[0] for row in subgroups[1:]] == list(summary["subgroups"]["cv_out_of_fold"])
    assert card_input["champion"]["model_uri"] in parsed.codes


def test_html_escapes_values_instead_of_running_them(page: str) -> None:
    assert "&lt;b&gt;balanced&lt;/b&gt; &amp; co" in page
    assert "<b>" not in page


def test_html_is_a_page_in_the_shared_layout(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>Model card: heart_disease_logistic_regression v3</title>" in page
    assert page.count("<h1>") == 1  # the card's own heading, not a second one from the layout
    assert "<footer>Made by heartml" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)


def test_heart_card_states_the_specs_dataset_and_the_datas_counts(
    markdown: str, card_input: dict[str, Any]
) -> None:
    assert "probability of heart disease (num > 0) for one patient: angiographic" in markdown
    assert "13 inputs (unknown ones imputed) → 6 engineered features → scaling, one-hot" in markdown
    rows = card_input["data"]["rows_clean"]
    assert f"- UCI Heart Disease (Cleveland): {rows} patients, sha256" in markdown
    assert "Licence CC BY 4.0; Janosi, A., Steinbrunn, W." in markdown
    assert f"- {rows} patients, all from UCI Heart Disease (Cleveland)" in markdown
    # Oracle: the subgroup counts of the input, by hand: female 77 of 242, young 13 of 242.
    assert "Sex: female, n = 77 (32%); Age ≤ 40 (young), n = 13 (5%)" in markdown
    assert "any input but `age`, `sex`, `cp` are imputed" in markdown  # the spec's required


def test_card_counts_rows_from_the_data_not_a_constant(
    card_input: dict[str, Any], heart_spec: DatasetSpec
) -> None:
    data = {**card_input["data"], "rows_clean": 280}
    card = model_card_markdown(card_input["champion"], card_input["summary"], data, heart_spec)
    assert "Cleveland): 280 patients" in card and "- 280 patients, all from" in card
    del data["rows_clean"]  # older provenance: train + test
    card = model_card_markdown(card_input["champion"], card_input["summary"], data, heart_spec)
    assert "Cleveland): 303 patients" in card


def test_card_lists_what_each_missing_block_costs(
    markdown: str, card_input: dict[str, Any]
) -> None:
    summary = card_input["summary"]
    everything = summary["cv_metrics"]["roc_auc"]["mean"]
    for title, block, names in (
        ("Exercise test", "exercise_test", "`slope`, `oldpeak`, `thalach`, `exang`"),
        ("Lab values", "lab_values", "`chol`, `fbs`"),
        ("Imaging", "imaging", "`ca`, `thal`"),
    ):
        mean = summary["masked_blocks"][block]["roc_auc"]["mean"]
        assert f"  - {title} ({names}): {mean:.3f} ({mean - everything:+.3f})" in markdown


@pytest.fixture(scope="module")
def breast_card() -> str:
    card_input = json.loads((DATA / "model_card_breast_input.json").read_text())
    return model_card_markdown(
        card_input["champion"],
        card_input["summary"],
        card_input["data"],
        load_spec(BREAST_SPEC_FILE),
    )


def test_breast_cancer_card_says_its_own_dataset(breast_card: str) -> None:
    for section in SECTIONS:
        assert re.search(rf"^## {section}", breast_card, re.MULTILINE), section
    assert "probability of malignant (diagnosis = 0) for one tumour sample" in breast_card
    assert "30 inputs (unknown ones imputed) → 3 engineered features → scaling → estimator" in (
        breast_card
    )  # no one-hot: the spec has no coded column
    assert "Breast Cancer Wisconsin (Diagnostic): 569 tumour samples" in breast_card
    assert "Wolberg, W., Mangasarian, O., Street, N., & Street, W. (1993)" in breast_card
    assert "Mean radius > 20 (very large), n = 38 (8%)" in breast_card
    assert "  - Standard errors (10 columns): " in breast_card
    assert "`diagnosis` as recorded (diagnosis = 0: malignant)" in breast_card
    # No heart word unless the breast-cancer spec itself says it (its citation names UCI's
    # repository).
    said_by_the_spec = set(heart_words(BREAST_SPEC_FILE.read_text()))
    assert said_by_the_spec == {"UCI"}
    assert set(heart_words(breast_card)) <= said_by_the_spec


def test_the_heart_word_check_finds_them_in_the_heart_card(markdown: str) -> None:
    assert {"heart", "num", "Cleveland", "patients"} <= set(heart_words(markdown))
