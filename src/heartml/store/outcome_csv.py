"""A CSV file of outcomes (`heartml feedback --input`): a header naming request_id and outcome
(row and observed_at optional), each line read as JSON would carry it and checked by the same
rules as a POST /feedback body (heartml.store.outcomes), every problem named by its line."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

from heartml.documents.base import JsonObject
from heartml.store.outcomes import FeedbackError, Outcome, checked_outcomes


def read_outcomes_csv(path: Path) -> list[Outcome]:
    """A CSV file with a header naming request_id, outcome (and optionally row, observed_at)."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [name for name in ("request_id", "outcome") if name not in header]
            if missing:
                raise FeedbackError(
                    f"{path}: the header has no {' and no '.join(missing)} column "
                    f"(columns: {', '.join(header) or 'none'})"
                )
            rows = [(f"line {number}", _typed(row)) for number, row in enumerate(reader, start=2)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise FeedbackError(f"{path}: cannot be read as CSV: {exc}") from None
    if not rows:
        raise FeedbackError(f"{path}: no outcome rows")
    return checked_outcomes(rows)


def _typed(row: Mapping[str | None, str | list[str] | None]) -> JsonObject:
    """CSV text as JSON would carry it: numbers as numbers, an empty field as absent."""
    typed: JsonObject = {}
    for name, text in row.items():
        if name is None or isinstance(text, list):  # more fields than the header names
            typed["(unnamed column)"] = [*text] if isinstance(text, list) else text
            continue
        value = (text or "").strip()
        if value == "":
            continue
        if name in ("row", "outcome"):
            try:
                number = float(value)
                typed[name] = int(number) if number.is_integer() else number
            except ValueError:
                typed[name] = value
        else:
            typed[name] = value
    return typed
