"""Outcomes (heartml.store.outcomes): every rule, and a rejected call changes nothing stored."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from store_helpers import snapshot

from heartml.store.outcome_csv import read_outcomes_csv
from heartml.store.outcomes import (
    MAX_ITEMS,
    FeedbackError,
    OutcomeConflict,
    OutcomesContradict,
    OutcomesInvalid,
    TooManyOutcomes,
    UnknownPredictions,
    parse_outcomes,
    record_outcomes,
)
from heartml.store.query import Selection, read

pytestmark = pytest.mark.monitoring


def test_outcomes_are_recorded_once_and_repeats_are_harmless(
    engine: Engine, add_predictions: Callable[..., list[str]]
) -> None:
    ids = add_predictions(4)
    first = record_outcomes(
        engine,
        parse_outcomes(
            [{"request_id": ids[0], "outcome": 1, "observed_at": "2025-03-01T14:30:00+02:00"},
             {"request_id": ids[1], "row": 0, "outcome": 0}]
        ),
    )  # fmt: skip
    assert (first.received, first.recorded, first.unchanged) == (2, 2, 0)
    again = record_outcomes(engine, parse_outcomes({"request_id": ids[0], "outcome": 1}))
    assert (again.recorded, again.overwritten, again.unchanged) == (0, 0, 1)
    stored = read(engine, Selection(labelled=True))
    assert stored.request_id == ids[:2] and stored.outcome.tolist() == [1, 0]
    with engine.connect() as connection:
        observed = connection.exec_driver_sql(
            "SELECT observed_at FROM predictions WHERE request_id = ?", (ids[0],)
        ).scalar_one()
    assert str(observed).startswith("2025-03-01 12:30:00")  # stored in UTC


def test_the_other_outcome_is_a_conflict_unless_overwritten(
    engine: Engine, add_predictions: Callable[..., list[str]]
) -> None:
    ids = add_predictions(2)
    record_outcomes(engine, parse_outcomes([{"request_id": i, "outcome": 1} for i in ids]))
    before = snapshot(engine)
    flipped = parse_outcomes(
        [{"request_id": ids[0], "outcome": 1}, {"request_id": ids[1], "outcome": 0}]
    )
    with pytest.raises(OutcomeConflict, match=rf"request_id '{ids[1]}' row 0 \(stored 1, sent 0\)"):
        record_outcomes(engine, flipped)
    assert snapshot(engine) == before
    result = record_outcomes(engine, flipped, overwrite=True)
    assert (result.overwritten, result.unchanged, result.recorded) == (1, 1, 0)
    assert read(engine, Selection(labelled=True)).outcome.tolist() == [1, 0]


BAD_BODIES: list[tuple[str, Any, type[FeedbackError], str]] = [
    ("outcome 2", {"request_id": "r0", "outcome": 2}, OutcomesInvalid, "outcome must be 0 or 1; got 2"),
    ("NaN", [{"request_id": "r0", "outcome": float("nan")}], OutcomesInvalid, r"\[0\].outcome must be 0 or 1; got NaN"),
    ("true", {"request_id": "r0", "outcome": True}, OutcomesInvalid, "outcome must be 0 or 1; got True"),
    ("text", {"request_id": "r0", "outcome": "1"}, OutcomesInvalid, "outcome must be 0 or 1; got '1'"),
    ("missing outcome", [{"request_id": "r0"}], OutcomesInvalid, r"\[0\].outcome is missing: send 0 or 1"),
    ("missing id", {"outcome": 1}, OutcomesInvalid, "request_id is missing"),
    ("extra field", {"request_id": "r0", "outcome": 1, "label": 1}, OutcomesInvalid, "label is not an accepted field"),
    ("bad row", {"request_id": "r0", "row": -1, "outcome": 1}, OutcomesInvalid, "row must be a whole number from 0"),
    ("bad time", {"request_id": "r0", "outcome": 1, "observed_at": "yesterday"}, OutcomesInvalid, "observed_at must be an ISO 8601"),
    ("long id", {"request_id": "x" * 65, "outcome": 1}, OutcomesInvalid, "a string of 1 to 64 characters"),
    ("not an object", [1], OutcomesInvalid, r"\[0\] must be a JSON object"),
    ("empty", [], OutcomesInvalid, "empty array"),
    ("contradiction", [{"request_id": "r0", "outcome": 1}, {"request_id": "r1", "outcome": 0}, {"request_id": "r0", "outcome": 0}],
     OutcomesContradict, r"\[2\]: request_id 'r0' row 0 is sent twice with different outcomes \(\[0\]: 1, \[2\]: 0\)"),
    ("before year 1 in UTC", {"request_id": "r0", "outcome": 1, "observed_at": "0001-01-01T00:00:00+01:00"},
     OutcomesInvalid, "observed_at must be an ISO 8601"),
    ("too many", [{"request_id": "r0", "outcome": 1}] * (MAX_ITEMS + 1), TooManyOutcomes, "10,001 outcomes; the limit is 10,000"),
    ("unknown", [{"request_id": "r0", "outcome": 1}, {"request_id": "nope", "row": 3, "outcome": 1}],
     UnknownPredictions, "no stored prediction has request_id 'nope' row 3$"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "error", "message"), [case[1:] for case in BAD_BODIES], ids=[c[0] for c in BAD_BODIES]
)
def test_a_bad_call_is_refused_whole_and_changes_nothing(
    engine: Engine,
    add_predictions: Callable[..., list[str]],
    body: Any,
    error: type[FeedbackError],
    message: str,
) -> None:
    add_predictions(3)
    record_outcomes(engine, parse_outcomes({"request_id": "r2", "outcome": 1}))
    before = snapshot(engine)
    with pytest.raises(error, match=message):
        record_outcomes(engine, parse_outcomes(body))
    assert snapshot(engine) == before


def test_invalid_items_name_every_problem() -> None:
    with pytest.raises(OutcomesInvalid) as caught:
        parse_outcomes([{"request_id": "a", "outcome": 2}, {"outcome": None, "x": 1}])
    fields = [problem["field"] for problem in caught.value.problems]
    assert fields == ["[0].outcome", "[1].x", "[1].request_id", "[1].outcome"]
    assert caught.value.problems[0] == {
        "field": "[0].outcome",
        "value": 2,
        "message": "[0].outcome must be 0 or 1; got 2",
        "type": "outcome",
    }


def test_csv_outcomes(
    tmp_path: Path, engine: Engine, add_predictions: Callable[..., list[str]]
) -> None:
    ids = add_predictions(3)
    good = tmp_path / "outcomes.csv"
    good.write_text(
        f"request_id,row,outcome,observed_at\n{ids[0]},0,1,\n{ids[1]},,0.0,2025-01-01\n"
    )
    assert record_outcomes(engine, read_outcomes_csv(good)).recorded == 2
    bad = tmp_path / "bad.csv"
    bad.write_text(f"request_id,outcome\n{ids[2]},1\n{ids[2]},NaN\nzz,\n")
    with pytest.raises(OutcomesInvalid) as caught:
        read_outcomes_csv(bad)
    assert str(caught.value) == (
        "line 3: outcome must be 0 or 1; got NaN; line 4: outcome is missing: send 0 or 1"
    )
    headerless = tmp_path / "headerless.csv"
    headerless.write_text("abc,1\n")
    with pytest.raises(FeedbackError, match="the header has no request_id and no outcome column"):
        read_outcomes_csv(headerless)
