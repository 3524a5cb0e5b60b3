"""Rows for the predictions table, and the one statement that inserts them.

A row is a tuple in INSERT_COLUMNS order with its JSON columns already serialised (orjson) and
its time in the database's form (`db_time`): built once, in the writer thread (or the batch
recorder), and handed to the driver as is (sqlite3's executemany; psycopg2's execute_values, one
multi-row INSERT per PAGE_ROWS rows; SQLite: the same, in pages of `sqlite_pages`). Measured:
SQLAlchemy's executemany spent ~35 µs per row preparing parameters (its bind processors, a dict
per row), three times SQLite's own insert, and psycopg2's plain executemany is one round trip per
row (~6,500 rows/s on loopback). SQLite's datetimes are written in SQLAlchemy's own storage
format, so SQLAlchemy reads them back as usual.

SQLite's pages come in a few fixed sizes (`sqlite_pages`): every distinct statement text is a
prepared statement that Python's sqlite3 keeps, up to 128 per pooled connection, each holding
native memory in proportion to its rows (~1-2 KB a row). A last page of "whatever is left" gave
the writer a new size at nearly every flush, and the service's resident memory rose 0.6-0.9 MB/s
at saturation, still rising after 3 minutes (+130 MB); with at most 10 sizes it stays flat
(tests/unit/store/test_store_inserts.py, tests/reliability/test_load.py, bench_store.py).

The insert skips a row whose (request_id, row) is already stored: a caller may send the same
X-Request-ID twice (a retry), and the first prediction stays the one its outcome refers to.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import sqlalchemy as sa

from heartml.store.schema import predictions

# The columns a new prediction fills, in the order of a row tuple (its outcome comes later;
# the id is the database's). A unit test holds this to the table.
INSERT_COLUMNS = (
    "request_id", "row", "created_at", "source", "model_name", "model_version", "spec_hash",
    "site", "inputs", "imputed", "probability", "prediction", "risk_level", "threshold",
    "raw_probability", "calibration_version",
)  # fmt: skip
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's storage format for SQLite's DATETIME
PAGE_ROWS = 1000  # rows per multi-row INSERT on PostgreSQL
SQLITE_PAGE_ROWS = 500  # 8,000 parameters: within SQLite's limit of 32,766 (3.32 and later)
NO_FIELDS = "[]"

Row = tuple[Any, ...]


class Describer(Protocol):
    """What the rows of a model need from its input contract (heartml.serving.contract)."""

    @property
    def names(self) -> tuple[str, ...]: ...

    @property
    def spec_hash(self) -> str: ...

    def risk_level(self, probability: float) -> str: ...

    def imputed(self, row: list[float]) -> list[str]: ...


def utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def db_time(dialect: str, timestamp: float) -> datetime | str:
    """A time as the insert takes it: a UTC datetime, or SQLAlchemy's text form for SQLite."""
    moment = utc(timestamp)
    return moment.strftime(SQLITE_DATETIME) if dialect == "sqlite" else moment


def json_text(value: Any) -> str:
    # orjson writes NaN as null: an unknown input is stored as null, as the API received it.
    return orjson.dumps(value).decode()


def prediction_values(
    *,
    created_at: datetime | str,
    source: str,
    model_name: str,
    model_version: str,
    threshold: float,
    describer: Describer,
    request_ids: Sequence[str],
    rows: Sequence[int],
    inputs: Sequence[list[float]],
    probabilities: Sequence[float],
    predictions: Sequence[int],
    site: str | None,
    raw_probabilities: Sequence[float] | None = None,
    calibration_version: int | None = None,
) -> list[Row]:
    """One row tuple per scored record (INSERT_COLUMNS order). `raw_probabilities`: the model's
    own, when a site calibration turned them into `probabilities` (else None)."""
    names, spec_hash = describer.names, describer.spec_hash
    risk_level, imputed, dumps = describer.risk_level, describer.imputed, orjson.dumps
    values = []
    raws: Sequence[float | None] = (
        [None] * len(probabilities) if raw_probabilities is None else raw_probabilities
    )
    for request_id, row, raw, probability, prediction, model_probability in zip(
        request_ids, rows, inputs, probabilities, predictions, raws, strict=True
    ):
        total = sum(raw)  # NaN when a value is unknown: the names are looked for only then
        values.append(
            (
                request_id, row, created_at, source, model_name, model_version, spec_hash, site,
                dumps(dict(zip(names, raw, strict=True))).decode(),
                dumps(imputed(raw)).decode() if total != total else NO_FIELDS,
                probability, prediction, risk_level(probability), threshold,
                model_probability, calibration_version,
            )
        )  # fmt: skip
    return values


def sqlite_pages(count: int) -> list[int]:
    """Rows per INSERT for `count` rows: full pages of SQLITE_PAGE_ROWS, then the rest in
    powers of two (256, 128, ..., 1), so that at most 10 statement texts ever exist (see the
    module doc: each one is a prepared statement the connection keeps)."""
    full, rest = divmod(count, SQLITE_PAGE_ROWS)
    return [SQLITE_PAGE_ROWS] * full + [
        1 << bit for bit in reversed(range(rest.bit_length())) if rest >> bit & 1
    ]


@functools.cache
def insert_sql(dialect: sa.Dialect) -> str:
    """INSERT ... ON CONFLICT (request_id, row) DO NOTHING, with `{values}` for the rows."""
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(name) for name in INSERT_COLUMNS)
    key = f"{quote('request_id')}, {quote('row')}"
    return (
        f"INSERT INTO {quote(predictions.name)} ({names}) VALUES {{values}} "
        f"ON CONFLICT ({key}) DO NOTHING"
    )


def insert_rows(connection: sa.Connection, rows: Sequence[Row]) -> None:
    """Insert row tuples in the caller's transaction (already stored keys skipped)."""
    if not rows:
        return
    dialect = connection.dialect
    sql = insert_sql(dialect)
    cursor = connection.connection.cursor()
    try:
        if dialect.name == "postgresql":
            from psycopg2.extras import execute_values

            execute_values(cursor, sql.format(values="%s"), rows, page_size=PAGE_ROWS)
        else:
            # Multi-row INSERTs too: sqlite3 hands the GIL back around every statement it
            # steps, and with the event loop waiting for it each hand-back is a thread switch
            # (measured: executemany row by row cost the service more CPU than the inserts).
            marks = "(" + ", ".join("?" * len(INSERT_COLUMNS)) + ")"
            start = 0
            for size in sqlite_pages(len(rows)):
                flat = [value for row in rows[start : start + size] for value in row]
                cursor.execute(sql.format(values=", ".join([marks] * size)), flat)
                start += size
    finally:
        cursor.close()
