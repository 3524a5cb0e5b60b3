"""Templates to text: the package's Jinja2 templates (src/heartml/templates), HTML autoescaped."""

from __future__ import annotations

from functools import cache
from importlib import metadata
from typing import Any

import jinja2


@cache
def environment() -> jinja2.Environment:
    """Built on first use, never at import. HTML pages escape every value; Markdown does not
    (Markdown is escaped when it is turned into HTML, see model_card.markdown_to_html)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("heartml", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        undefined=jinja2.StrictUndefined,  # a misspelt name fails the render, not blanks a cell
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals["heartml_version"] = _version()
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def _version() -> str:
    try:
        return metadata.version("heartml")
    except metadata.PackageNotFoundError:  # running from a source tree without an install
        return "unknown"
