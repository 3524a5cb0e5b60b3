"""Checks every report page must pass, shared by the page tests (imported as a plain module)."""

from __future__ import annotations

import base64
import re
import struct
from html.parser import HTMLParser
from pathlib import Path

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DATA_URI = 'src="data:image/png;base64,'


def section(html: str, section_id: str) -> str:
    match = re.search(rf'<section id="{section_id}">(.*?)</section>', html, re.DOTALL)
    assert match, f"no section {section_id!r} in the report"
    return match.group(1)


def assert_index_page(report: Path) -> None:
    assert report.name == "index.html"
    assert report.is_file()
    assert report.read_text(encoding="utf-8").lstrip().startswith("<!DOCTYPE html>")


def assert_headings_and_links(html: str, headings: list[str], levels: str = "2") -> None:
    """The page's headings, in order, and a navigation link to every section, in order."""
    found = re.findall(rf"<h([{levels}])>(.*?)</h[{levels}]>", html)
    shown = [text if levels == "2" else f"h{level} {text}" for level, text in found]
    assert shown == headings
    nav = re.search(r"<nav>(.*?)</nav>", html, re.DOTALL)
    assert nav
    sections = re.findall(r'<section id="([^"]+)">', html)
    assert re.findall(r'href="#([^"]+)"', nav.group(1)) == sections


def assert_shared_layout(html: str, title: str, own_style: str = "") -> None:
    assert html.count("<style>") == 1 and html.count("<h1>") == 1
    assert "<footer>Made by heartml" in html
    assert "table.striped" in html  # the shared stylesheet, included once
    assert own_style in html  # a page's own rules join the shared ones in the one <style>
    assert f"<title>{title}</title>" in html


def assert_figure_embedded_and_written(report: Path, html: str, slug: str) -> None:
    """The section embeds a real PNG, byte for byte the <slug>.png written next to the page."""
    png = (report.parent / f"{slug}.png").read_bytes()
    assert png.startswith(PNG_MAGIC)
    width, height = struct.unpack(">II", png[16:24])  # IHDR: a real picture, not a stub
    assert width > 300 and height > 200
    embedded = re.search(r'data:image/png;base64,([A-Za-z0-9+/=]+)"', section(html, slug))
    assert embedded
    assert base64.b64decode(embedded.group(1)) == png


def assert_offline(html: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//", html, re.IGNORECASE)
    assert "@import" not in html
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()


# Words of the heart dataset that another dataset's page must not contain (the tool's own name,
# heartml, is allowed: whole words only).
HEART_WORDS = ("heart", "num", "Cleveland", "patient", "patients", "UCI", "angina", "thal")


INLINE_TAGS = frozenset({"a", "b", "code", "em", "span", "strong"})


class _Text(HTMLParser):
    """What a reader sees: text outside <style>, plus the images' alt texts and page title.
    Block elements (cells, items, paragraphs) are kept apart by a space, inline ones are not."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._style = tag == "style"
        if tag not in INLINE_TAGS:
            self.parts.append(" ")
        alt = dict(attrs).get("alt")
        if tag == "img" and alt:
            self.parts.append(alt)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._style = False
        if tag not in INLINE_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._style:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return re.sub(r"\s+", " ", "".join(parser.parts))


def heart_words(text: str) -> list[str]:
    return [w for w in HEART_WORDS if re.search(rf"\b{w}\b", text, re.IGNORECASE)]
