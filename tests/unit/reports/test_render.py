"""The template environment: HTML escaped, Markdown not, names checked, templates shipped."""

from __future__ import annotations

import glob
import tomllib
from pathlib import Path

import jinja2
import pytest

from heartml.reports.render import render

pytestmark = pytest.mark.task1

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "src" / "heartml"
TEMPLATES = PACKAGE / "templates"
MARKDOWN_FIELDS = (
    "name",
    "version",
    "algorithm",
    "estimator",
    "best_params",
    "model_uri",
    "run_id",
    "data_sha256",
    "source",
    "rows_train",
    "rows_test",
    "split_seed",
    "dataset",
    "description",
    "record",
    "rows",
    "records",
    "positive_label",
    "positive_rule",
    "label_column",
    "n_inputs",
    "n_engineered",
    "one_hot",
    "citation",
    "licence",
    "imputed",
)
PAGES = ("reports/eda.html", "reports/evaluation.html", "model_card/model_card.html")


def test_html_templates_escape_values_and_markdown_templates_do_not() -> None:
    page = render("model_card/model_card.html", title='<b>"x"</b>', body="")
    assert "<title>&lt;b&gt;&#34;x&#34;&lt;/b&gt;</title>" in page
    markdown = render(
        "model_card/model_card.md.j2",
        **dict.fromkeys(MARKDOWN_FIELDS, "<b>&</b>"),
        metrics=[],
        subgroups=[],
        smallest_subgroups=[],
        blocks=[],
        limitations=[],
    )
    assert "- Source used: <b>&</b>;" in markdown  # escaped later, by the Markdown renderer


def test_a_value_the_template_names_but_the_view_omits_fails_the_render() -> None:
    with pytest.raises(jinja2.UndefinedError, match="summary"):
        render(
            "reports/eda.html",
            figures=[],
            quality_rows=[],
            statistics=[],
            dataset="d",
            description="",
        )


@pytest.mark.parametrize("page", PAGES)
def test_every_page_extends_the_one_base_layout(page: str) -> None:
    source = (TEMPLATES / page).read_text()
    assert source.lstrip().startswith('{% extends "base.html" %}')
    assert "<html" not in source and "<style>" not in source  # head and CSS only in the base


def test_no_html_or_markdown_page_is_built_in_python() -> None:
    offenders = [
        path.relative_to(PACKAGE).as_posix()
        for path in (PACKAGE / "reports").glob("*.py")
        if "<!DOCTYPE" in path.read_text() or "<html" in path.read_text()
    ]
    assert offenders == []


def test_every_template_file_is_declared_package_data() -> None:
    # setuptools expands package-data patterns with glob(recursive=True) from the package root.
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["heartml"]
    declared = {
        Path(match).resolve()
        for pattern in patterns
        for match in glob.glob(str(PACKAGE / pattern), recursive=True)
    }
    files = {p.resolve() for p in TEMPLATES.rglob("*") if p.is_file()}
    assert files and files <= declared, sorted(map(str, files - declared))
