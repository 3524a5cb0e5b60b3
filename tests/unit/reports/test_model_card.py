"""The model card: Markdown from its template, and the same card as a page in the shared layout."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from heartml.reports.model_card import markdown_to_html, model_card_markdown

pytestmark = pytest.mark.task4

DATA = Path(__file__).parent / "data"
# model_card_input.json: a real pipeline's summary (curves left out), one subgroup without an AUC
# and a parameter holding HTML. model_card_expected.md: what the hand-built card of
# heartml.packaging (before the template) wrote for that input, byte for byte.
SECTIONS = ("Intended use", "Model", "Data", "Metrics", "Subgroups", "Limitations")


@pytest.fixture(scope="module")
def card_input() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((DATA / "model_card_input.json").read_text())
    return document


@pytest.fixture(scope="module")
def markdown(card_input: dict[str, Any]) -> str:
    return model_card_markdown(card_input["champion"], card_input["summary"], card_input["data"])


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
