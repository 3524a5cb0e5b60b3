"""The spec in words for people: the README's table of fields is this function's output (a test
checks that the README and the spec agree)."""

from __future__ import annotations

from heartml.spec.model import DatasetSpec
from heartml.spec.rules import number_text


def fields_table(spec: DatasetSpec) -> str:
    """A Markdown table: one row per input field, in the spec's order."""
    lines = [
        "| field | meaning | allowed | may be unknown |",
        "|---|---|---|---|",
    ]
    for name, column in spec.columns.items():
        unknown = "no (required)" if column.required else "yes: null / empty"
        if column.missing_values:
            written = ", ".join(number_text(v) for v in column.missing_values)
            unknown += f", or {written} (not measured)"
        lines.append(f"| `{name}` | {column.description} | {column.allowed} | {unknown} |")
    return "\n".join(lines) + "\n"


def features_table(spec: DatasetSpec) -> str:
    lines = ["| feature | expression |", "|---|---|"]
    for name, feature in spec.features.items():
        lines.append(f"| `{name}` | `{feature.expression}` |")
    return "\n".join(lines) + "\n"
