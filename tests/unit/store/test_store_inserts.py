"""The SQLite insert (heartml.store.records.insert_rows) keeps its native memory bounded: every
distinct INSERT text is a prepared statement Python's sqlite3 keeps per connection (up to 128),
so batches of every size must not mean statements of every size."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from heartml.store.query import count
from heartml.store.records import db_time, insert_rows

pytestmark = pytest.mark.monitoring

BATCHES = 200  # more sizes than sqlite3's statement cache holds (128)
MAX_GROWTH_KIB = 16 * 1024  # measured: ~60 MB when each batch size had its own statement


def vmrss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


def test_batches_of_every_size_leave_resident_memory_flat(engine: Engine) -> None:
    """What the writer does at saturation: one flush after another, each of a new size."""
    created = db_time("sqlite", 1.7e9)
    sizes = random.Random(0).sample(range(1, 500), BATCHES)
    batches = [
        [
            (f"b{b}-{i}", 0, created, "api", "m", "1", "h", None, '{"age":63}', "[]", 0.3, 0,
             "low", 0.5, None, None)
            for i in range(size)
        ]
        for b, size in enumerate(sizes)
    ]  # fmt: skip
    with engine.begin() as connection:  # the connection's first statements: not growth
        insert_rows(connection, [("warm", 0, *batches[0][0][2:])])
    before = vmrss_kib()
    for batch in batches:
        with engine.begin() as connection:
            insert_rows(connection, batch)
    grown = vmrss_kib() - before
    assert count(engine) == sum(sizes) + 1
    assert grown <= MAX_GROWTH_KIB, f"resident memory grew {grown / 1024:.1f} MB"
