"""Reading the store back (heartml.store.query): selections by time, version, site, outcome."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from sqlalchemy.engine import Engine

from heartml.store.outcomes import parse_outcomes, record_outcomes
from heartml.store.query import Selection, count, iter_read, read, versions
from heartml.store.records import utc

pytestmark = pytest.mark.monitoring


def test_selections(engine: Engine, add_predictions: Callable[..., list[str]]) -> None:
    now = time.time()
    add_predictions(5, model_version="1", created=now - 3600, prefix="old", site="north")
    add_predictions(4, model_version="2", created=now, prefix="new", site="south")
    record_outcomes(engine, parse_outcomes([{"request_id": "new1", "outcome": 1}]))

    assert count(engine) == 9
    assert read(engine, Selection(model_version="2")).request_id == [f"new{i}" for i in range(4)]
    assert read(engine, Selection(site="north")).request_id == [f"old{i}" for i in range(5)]
    assert read(engine, Selection(since=utc(now - 60))).request_id[0] == "new0"
    assert len(read(engine, Selection(until=utc(now - 60)))) == 5
    assert read(engine, Selection(labelled=True)).request_id == ["new1"]
    assert len(read(engine, Selection(labelled=False))) == 8
    newest = read(engine, Selection(limit=6))
    assert newest.request_id[:2] == ["old3", "old4"] and len(newest) == 6  # oldest first
    assert read(engine, Selection(labelled=True)).outcome.tolist() == [1]
    assert read(engine, Selection(model_version="1")).outcome.tolist() == [-1] * 5
    chunks = list(iter_read(engine, Selection(), chunk=4))
    assert [len(c) for c in chunks] == [4, 4, 1]
    found = versions(engine)
    assert [(v.model_version, v.predictions, v.labelled) for v in found] == [
        ("2", 4, 1),
        ("1", 5, 0),
    ]
    assert found[0].last == pytest.approx(now, abs=1)
