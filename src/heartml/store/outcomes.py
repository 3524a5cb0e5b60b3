"""Outcomes sent back for stored predictions (POST /feedback, `heartml feedback`).

An outcome names its prediction by the answer's `request_id` and `row` (0 for /predict; the
record's position for /predict/batch; the output's `row` for `heartml score --record`). Every
check runs before anything is written, and everything is written in one transaction, so a call
is applied whole or not at all:

- an item that is not {request_id, row?, outcome, observed_at?} with outcome 0 or 1 ->
  OutcomesInvalid (every problem, each naming the item, the field and the value);
- more than MAX_ITEMS items -> TooManyOutcomes;
- the same prediction twice in one call with different outcomes -> OutcomesContradict;
- a prediction the store does not hold -> UnknownPredictions (naming them);
- a prediction that already has the other outcome -> OutcomeConflict, unless overwrite;
- the outcome it already has -> nothing changes (sending a call twice is harmless).

A CSV file of outcomes (`heartml feedback --input`) is read by heartml.store.outcome_csv.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from heartml.errors import FieldProblem, HeartmlError
from heartml.store.records import utc
from heartml.store.schema import OUTCOMES, REQUEST_ID_MAX, ROW_MAX, predictions

MAX_ITEMS = 10_000  # per POST /feedback call (the CLI sends files of any length)
FIELDS = ("request_id", "row", "outcome", "observed_at")
_SHOWN = 20  # keys named in a message; the rest are counted
_LOOKUP_CHUNK = 400  # keys per SELECT (SQLite allows 32766 variables; two per key)


class FeedbackError(HeartmlError, ValueError):
    """Outcomes that cannot be recorded; nothing was written."""


class OutcomesInvalid(FeedbackError):
    def __init__(self, problems: list[FieldProblem]) -> None:
        shown = "; ".join(p["message"] for p in problems[:_SHOWN])
        more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
        super().__init__(f"{shown}{more}")
        self.problems = problems


class TooManyOutcomes(FeedbackError):
    pass


class OutcomesContradict(FeedbackError):
    """One call sends both outcomes for one prediction: a conflict (409) within the call, not
    an invalid item (each item alone is valid)."""


class UnknownPredictions(FeedbackError):
    def __init__(self, keys: list[tuple[str, int]]) -> None:
        super().__init__(f"no stored prediction has {_keys_text(keys)}")
        self.keys = keys


class OutcomeConflict(FeedbackError):
    def __init__(self, conflicts: list[tuple[str, int, int, int]]) -> None:
        listed = ", ".join(
            f"request_id {rid!r} row {row} (stored {old}, sent {new})"
            for rid, row, old, new in conflicts[:_SHOWN]
        )
        more = f" and {len(conflicts) - _SHOWN} more" if len(conflicts) > _SHOWN else ""
        super().__init__(
            f"{len(conflicts)} predictions already have the other outcome: {listed}{more}",
            hint="--overwrite replaces stored outcomes",
        )
        self.conflicts = conflicts


def _keys_text(keys: list[tuple[str, int]]) -> str:
    listed = ", ".join(f"request_id {rid!r} row {row}" for rid, row in keys[:_SHOWN])
    more = f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
    return f"{listed}{more}"


@dataclass(frozen=True)
class Outcome:
    request_id: str
    row: int
    outcome: int
    observed_at: datetime | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.request_id, self.row)


@dataclass(frozen=True)
class FeedbackResult:
    received: int  # items in the call
    recorded: int  # predictions that had no outcome and have one now
    overwritten: int  # predictions whose outcome was replaced (overwrite)
    unchanged: int  # items that repeat what is stored (or repeat another item)


# -- validation ------------------------------------------------------------------------------


def _shown(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > ROW_MAX:
        return str(value)  # beyond what a JSON number written back (64-bit) can hold
    if isinstance(value, float) and not math.isfinite(value):
        return str(value).replace("nan", "NaN").replace("inf", "Infinity")
    if isinstance(value, str):
        if not _is_text(value):  # a lone surrogate: shown escaped, JSON cannot carry it back
            value = value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value[:80] + "…" if len(value) > 80 else value
    if isinstance(value, dict | list):
        return f"<a JSON {'object' if isinstance(value, dict) else 'array'}>"
    return value


def _text(value: Any) -> str:
    shown = _shown(value)
    return repr(shown) if isinstance(value, str) else str(shown)


def _problem(field: str, value: Any, message: str, kind: str) -> FieldProblem:
    return {"field": field, "value": _shown(value), "message": message, "type": kind}


def parse_item(item: Any, where: str) -> Outcome | list[FieldProblem]:
    """One outcome, or its problems; `where` names the item in messages ("[3]" in a JSON array,
    "line 4" of a CSV file, "" for a single JSON object)."""
    prefix = f"{where}." if where.startswith("[") else (f"{where}: " if where else "")
    if not isinstance(item, dict):
        return [
            _problem(
                where or "body",
                item,
                f"{where or 'the body'} must be a JSON object with request_id and outcome "
                f"(and optionally row, observed_at); got {_text(item)}",
                "object_type",
            )
        ]
    problems = [
        _problem(
            f"{prefix}{name}",
            item[name],
            f"{prefix}{name} is not an accepted field; the accepted fields are "
            + ", ".join(FIELDS),
            "extra_forbidden",
        )
        for name in item
        if name not in FIELDS
    ]
    request_id = item.get("request_id")
    if "request_id" not in item:
        problems.append(
            _problem(
                f"{prefix}request_id",
                None,
                f"{prefix}request_id is missing: send the request_id of the prediction's answer",
                "missing",
            )
        )
    elif (
        not isinstance(request_id, str)
        or not 0 < len(request_id) <= REQUEST_ID_MAX
        or not _is_text(request_id)
    ):
        problems.append(
            _problem(
                f"{prefix}request_id",
                request_id,
                f"{prefix}request_id must be a prediction's request_id (a string of 1 to "
                f"{REQUEST_ID_MAX} characters); got {_text(request_id)}",
                "request_id",
            )
        )
    row = item.get("row", 0)
    if row is None:
        row = 0
    if isinstance(row, float) and row.is_integer():  # 3.0 is a JSON Schema integer
        row = int(row)
    if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row <= ROW_MAX:
        problems.append(
            _problem(
                f"{prefix}row",
                row,
                f"{prefix}row must be a whole number from 0 to {ROW_MAX} (the record's position "
                f"in a /predict/batch call; 0 for /predict); got {_text(row)}",
                "row",
            )
        )
    outcome = item.get("outcome")
    if "outcome" not in item:
        problems.append(
            _problem(
                f"{prefix}outcome", None, f"{prefix}outcome is missing: send 0 or 1", "missing"
            )
        )
    elif (
        isinstance(outcome, bool) or not isinstance(outcome, int | float) or outcome not in OUTCOMES
    ):
        problems.append(
            _problem(
                f"{prefix}outcome",
                outcome,
                f"{prefix}outcome must be 0 or 1; got {_text(outcome)}",
                "outcome",
            )
        )
    observed = item.get("observed_at")
    observed_at = None
    if observed is not None:
        observed_at = _datetime(observed)
        if observed_at is None:
            problems.append(
                _problem(
                    f"{prefix}observed_at",
                    observed,
                    f"{prefix}observed_at must be an ISO 8601 date and time (e.g. "
                    f"2025-03-01T14:30:00Z; UTC when no offset is given); got {_text(observed)}",
                    "datetime",
                )
            )
    if problems:
        return problems
    assert isinstance(request_id, str) and isinstance(outcome, int | float)
    return Outcome(request_id, int(row), int(outcome), observed_at)


def _is_text(value: str) -> bool:
    """Encodable as UTF-8 (JSON lets a string carry a lone surrogate; a database does not)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _datetime(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # not a date; or one whose UTC is before year 1
        return None


def parse_outcomes(data: Any, max_items: int | None = MAX_ITEMS) -> list[Outcome]:
    """A JSON body (one object, or an array of them) as outcomes, each prediction once."""
    single = not isinstance(data, list)
    items = [data] if single else data
    if max_items is not None and len(items) > max_items:
        raise TooManyOutcomes(
            f"the call has {len(items):,} outcomes; the limit is {max_items:,} per call: "
            "send them in several calls"
        )
    if not items:
        raise OutcomesInvalid(
            [_problem("body", [], "the body is an empty array: send at least one outcome", "empty")]
        )
    return checked_outcomes((("" if single else f"[{i}]"), item) for i, item in enumerate(items))


def checked_outcomes(items: Iterable[tuple[str, Any]]) -> list[Outcome]:
    """Each (where, item) parsed, or every problem raised at once (JSON or CSV alike)."""
    problems: list[FieldProblem] = []
    contradictions: list[str] = []
    seen: dict[tuple[str, int], tuple[str, Outcome]] = {}
    outcomes: list[Outcome] = []
    for where, item in items:
        parsed = parse_item(item, where)
        if isinstance(parsed, list):
            problems.extend(parsed)
            continue
        first = seen.get(parsed.key)
        if first is None:
            seen[parsed.key] = (where, parsed)
            outcomes.append(parsed)
        elif first[1].outcome != parsed.outcome:
            contradictions.append(
                f"{where}: request_id {parsed.request_id!r} row {parsed.row} is sent twice "
                f"with different outcomes ({first[0]}: {first[1].outcome}, {where}: "
                f"{parsed.outcome})"
            )
    if problems:
        raise OutcomesInvalid(problems)
    if contradictions:
        more = f" (and {len(contradictions) - _SHOWN} more)" if len(contradictions) > _SHOWN else ""
        raise OutcomesContradict("; ".join(contradictions[:_SHOWN]) + more)
    return outcomes


# -- recording -------------------------------------------------------------------------------


def record_outcomes(
    engine: Engine, outcomes: list[Outcome], overwrite: bool = False, now: float | None = None
) -> FeedbackResult:
    """Record validated outcomes in one transaction (all or nothing; see the module doc)."""
    table = predictions
    received_at = utc(time.time() if now is None else now)
    with engine.begin() as connection:
        stored: dict[tuple[str, int], int | None] = {}
        keys = [o.key for o in outcomes]
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = keys[start : start + _LOOKUP_CHUNK]
            query = (
                sa.select(table.c.request_id, table.c.row, table.c.outcome)
                .where(sa.tuple_(table.c.request_id, table.c.row).in_(chunk))
                .with_for_update()  # PostgreSQL: a concurrent call waits, then sees ours
            )
            for request_id, row, outcome in connection.execute(query):
                stored[(request_id, row)] = outcome
        unknown = [key for key in keys if key not in stored]
        if unknown:
            raise UnknownPredictions(unknown)
        conflicts = [
            (o.request_id, o.row, stored[o.key], o.outcome)
            for o in outcomes
            if stored[o.key] is not None and stored[o.key] != o.outcome
        ]
        if conflicts and not overwrite:
            raise OutcomeConflict(conflicts)  # type: ignore[arg-type]
        changed = [o for o in outcomes if stored[o.key] != o.outcome]
        if changed:
            connection.execute(
                sa.update(table)
                .where(
                    table.c.request_id == sa.bindparam("b_request_id"),
                    table.c.row == sa.bindparam("b_row"),
                )
                .values(
                    outcome=sa.bindparam("b_outcome"),
                    observed_at=sa.bindparam("b_observed_at"),
                    outcome_received_at=received_at,
                ),
                [
                    {
                        "b_request_id": o.request_id,
                        "b_row": o.row,
                        "b_outcome": o.outcome,
                        "b_observed_at": o.observed_at,
                    }
                    for o in changed
                ],
            )
    overwritten = len(conflicts)
    return FeedbackResult(
        received=len(outcomes),
        recorded=len(changed) - overwritten,
        overwritten=overwritten,
        unchanged=len(outcomes) - len(changed),
    )
