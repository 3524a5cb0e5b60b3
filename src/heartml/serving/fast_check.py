"""The fast check of a request body: orjson and one comparison per field, without pydantic.

It applies the rules of the served model's contract (heartml.serving.contract, `row_rules`) and
accepts only what the contract's pydantic models (heartml.serving.requests) accept; anything
else goes to those models, whose errors are the API's messages.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from heartml.serving.contract import Contract, RowRule
from heartml.sites import is_site

_ABSENT = object()
NAN = math.nan


def _record_row(data: Any, rules: tuple[RowRule, ...], unknown: list[str]) -> list[float] | None:
    if type(data) is not dict or len(data) != len(rules):
        return None
    row: list[float] = []
    append = row.append
    for name, minimum, maximum, codes, optional, missing in rules:
        value = data.get(name, _ABSENT)
        kind = type(value)
        if kind is float or kind is int:  # exact types: a JSON true is not a number
            if codes is None:
                if not minimum <= value <= maximum:
                    # Only here: a "not measured" value is never an allowed one (see
                    # Contract.fast_path), so the common case pays nothing for it.
                    if optional and value in missing:  # e.g. a cholesterol of 0
                        append(NAN)
                        unknown.append(name)
                        continue
                    return None
            elif value not in codes:
                if optional and value in missing:
                    append(NAN)
                    unknown.append(name)
                    continue
                return None
            append(float(value))
        elif value is None and optional:
            append(NAN)
            unknown.append(name)
        else:
            return None
    return row


def _site_of(data: Any) -> Any:
    """A body's `site` (taken out of it: it is not a model input), None when it has none, or
    _ABSENT when it breaks the site rule (the pydantic model words that error)."""
    if type(data) is not dict or "site" not in data:  # one lookup: no site, no cost
        return None
    site = data.pop("site")
    return site if site is None or is_site(site) else _ABSENT


def _parsed(body: bytes, contract: Contract) -> tuple[Any, str | None] | None:
    """The body's JSON and its site (taken out), or None for the pydantic model to word:
    no fast path for this contract, not JSON, or a site that breaks the rule."""
    if not contract.fast_path:
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    site = _site_of(data)
    return None if site is _ABSENT else (data, site)


def checked_record(
    body: bytes, contract: Contract
) -> tuple[list[float], list[str], str | None] | None:
    """The inputs of a valid single-record JSON body in model order (NaN = unknown), the
    names of its unknown fields and its site (None: none given), else None.

    The request path's fast check: orjson plus one comparison per field, about a tenth of
    validating with the contract's pydantic model. It accepts only what `contract.record`
    accepts (JSON numbers, not booleans; the same ranges, codes and "not measured" values; null
    only where allowed; no missing or extra field; orjson refuses NaN and Infinity; a `site`
    by heartml.sites' rule) and gives the same row as `contract.record_row`. On None the caller validates the body with the
    pydantic model, whose errors are the API's messages, so no error is ever worded twice.
    """
    parsed = _parsed(body, contract)
    if parsed is None:
        return None
    data, site = parsed
    unknown: list[str] = []
    row = _record_row(data, contract.row_rules, unknown)
    return None if row is None else (row, unknown, site)


def checked_row(data: Any, contract: Contract) -> list[float] | None:
    """`checked_record`'s row for a record already parsed (a dict of JSON values), else None:
    the other protocols' records (heartml.serving.rows) take the same fast check."""
    if not contract.fast_path:
        return None
    return _record_row(data, contract.row_rules, [])


def patient_row(body: bytes, contract: Contract) -> list[float] | None:
    """`checked_record`'s row alone."""
    checked = checked_record(body, contract)
    return None if checked is None else checked[0]


def batch_rows(body: bytes, contract: Contract) -> tuple[list[list[float]], str | None] | None:
    """`patient_row` for a `{"records": [...], "site": ...}` body: every record's row and the
    site (None: none given), or None as soon as one record (or the shape) is not what
    `contract.batch` accepts."""
    parsed = _parsed(body, contract)
    if parsed is None:
        return None
    data, site = parsed
    if type(data) is not dict or len(data) != 1:
        return None
    records = data.get("records")
    if type(records) is not list or not records:
        return None
    rows = []
    rules = contract.row_rules
    unknown: list[str] = []
    for record in records:
        row = _record_row(record, rules, unknown)
        if row is None:
            return None
        rows.append(row)
    return rows, site
