"""Reading the prediction store: the selections monitoring needs, as columns.

`Selection` says which predictions (a time window, a model name and version, a site, with or
without an outcome, the newest N); `read` returns them as numpy columns (`Predictions`), oldest
first; `versions` lists the model versions seen in a time window. This is the interface the
monitoring window, the report and the checks read the store through.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from heartml.store.schema import predictions

READ_CHUNK = 50_000  # rows fetched per round trip by iter_read


@dataclass(frozen=True)
class Selection:
    since: datetime | None = None  # created at or after (UTC)
    until: datetime | None = None  # created before (UTC)
    model_name: str | None = None
    model_version: str | None = None
    site: str | None = None  # None: every site (and none)
    labelled: bool | None = None  # True: with an outcome; False: without; None: both
    source: str | None = None  # "api" or "batch"
    limit: int | None = None  # the newest `limit` of the selected rows

    def where(self) -> list[Any]:
        c = predictions.c
        clauses: list[Any] = []
        if self.since is not None:
            clauses.append(c.created_at >= self.since)
        if self.until is not None:
            clauses.append(c.created_at < self.until)
        if self.model_name is not None:
            clauses.append(c.model_name == self.model_name)
        if self.model_version is not None:
            clauses.append(c.model_version == self.model_version)
        if self.site is not None:
            clauses.append(c.site == self.site)
        if self.labelled is not None:
            clauses.append(c.outcome.is_not(None) if self.labelled else c.outcome.is_(None))
        if self.source is not None:
            clauses.append(c.source == self.source)
        return clauses


@dataclass
class Predictions:
    """Selected predictions as columns, oldest first. `outcome` is -1 where none is known."""

    request_id: list[str] = field(default_factory=list)
    row: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    created_at: np.ndarray = field(default_factory=lambda: np.empty(0))  # POSIX seconds
    model_name: list[str] = field(default_factory=list)
    model_version: list[str] = field(default_factory=list)
    site: list[str | None] = field(default_factory=list)
    probability: np.ndarray = field(default_factory=lambda: np.empty(0))
    prediction: np.ndarray = field(default_factory=lambda: np.empty(0, np.int8))
    threshold: np.ndarray = field(default_factory=lambda: np.empty(0))
    outcome: np.ndarray = field(default_factory=lambda: np.empty(0, np.int8))
    # The model's own probability: `probability` where no site calibration was applied.
    raw_probability: np.ndarray = field(default_factory=lambda: np.empty(0))
    calibration_version: np.ndarray = field(
        default_factory=lambda: np.empty(0, np.int64)
    )  # -1: none
    inputs: list[dict[str, float | None]] | None = None  # with_inputs=True only
    imputed: list[list[str]] | None = None  # with_inputs=True only

    def __len__(self) -> int:
        return len(self.request_id)

    @property
    def labelled(self) -> np.ndarray:
        return self.outcome >= 0


def _columns(with_inputs: bool) -> list[Any]:
    c = predictions.c
    columns = [
        c.request_id, c.row, c.created_at, c.model_name, c.model_version, c.site,
        c.probability, c.prediction, c.threshold, c.outcome, c.raw_probability,
        c.calibration_version,
    ]  # fmt: skip
    if with_inputs:
        columns += [c.inputs, c.imputed]
    return columns


def _statement(selection: Selection, with_inputs: bool) -> Any:
    c = predictions.c
    query = sa.select(*_columns(with_inputs)).where(*selection.where())
    if selection.limit is not None:
        newest = query.order_by(c.created_at.desc(), c.id.desc()).limit(selection.limit)
        inner = newest.subquery()
        return sa.select(inner).order_by(inner.c.created_at, inner.c.request_id, inner.c.row)
    return query.order_by(c.created_at, c.id)


def _timestamp(value: datetime) -> float:
    # SQLite gives back naive datetimes; everything is stored in UTC.
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def _as_columns(rows: Sequence[Any], with_inputs: bool) -> Predictions:
    if not rows:
        return Predictions(inputs=[] if with_inputs else None, imputed=[] if with_inputs else None)
    columns = list(zip(*rows, strict=True))
    return Predictions(
        request_id=list(columns[0]),
        row=np.asarray(columns[1], dtype=np.int64),
        created_at=np.array([_timestamp(v) for v in columns[2]]),
        model_name=list(columns[3]),
        model_version=list(columns[4]),
        site=list(columns[5]),
        probability=np.asarray(columns[6], dtype=np.float64),
        prediction=np.asarray(columns[7], dtype=np.int8),
        threshold=np.asarray(columns[8], dtype=np.float64),
        outcome=np.array([-1 if v is None else v for v in columns[9]], dtype=np.int8),
        raw_probability=np.array(
            [p if raw is None else raw for p, raw in zip(columns[6], columns[10], strict=True)],
            dtype=np.float64,
        ),
        calibration_version=np.array([-1 if v is None else v for v in columns[11]], np.int64),
        inputs=list(columns[12]) if with_inputs else None,
        imputed=list(columns[13]) if with_inputs else None,
    )


def read(engine: Engine, selection: Selection, with_inputs: bool = False) -> Predictions:
    """The selected predictions, oldest first."""
    with engine.connect() as connection:
        rows = connection.execute(_statement(selection, with_inputs)).all()
    return _as_columns(rows, with_inputs)


def iter_read(
    engine: Engine, selection: Selection, with_inputs: bool = False, chunk: int = READ_CHUNK
) -> Iterator[Predictions]:
    """The selected predictions in chunks (for windows too large to hold as Python rows)."""
    with engine.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=chunk).execute(
            _statement(selection, with_inputs)
        )
        for part in result.partitions(chunk):
            yield _as_columns(list(part), with_inputs)


@dataclass(frozen=True)
class VersionSummary:
    model_name: str
    model_version: str
    predictions: int
    labelled: int
    first: float  # POSIX seconds
    last: float


def versions(engine: Engine, selection: Selection = Selection()) -> list[VersionSummary]:
    """Model versions among the selected predictions, the most recently used first."""
    c = predictions.c
    query = (
        sa.select(
            c.model_name,
            c.model_version,
            sa.func.count(),
            sa.func.count(c.outcome),
            sa.func.min(c.created_at),
            sa.func.max(c.created_at),
        )
        .where(*selection.where())
        .group_by(c.model_name, c.model_version)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    summaries = [
        VersionSummary(name, version, int(n), int(labelled), _time(first), _time(last))
        for name, version, n, labelled, first, last in rows
    ]
    return sorted(summaries, key=lambda s: s.last, reverse=True)


def _time(value: Any) -> float:
    # min()/max() over a DateTime column come back as text from SQLite.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return _timestamp(value)


def count(engine: Engine, selection: Selection = Selection()) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                sa.select(sa.func.count()).select_from(predictions).where(*selection.where())
            ).scalar_one()
        )
