"""Rows for the predictions table, and the one statement that inserts them.

The insert skips a row whose (request_id, row) is already stored: a caller may send the same
X-Request-ID twice (a retry), and the first prediction stays the one its outcome refers to.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from heartml.store.schema import predictions


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


def inputs_json(names: Sequence[str], values: Sequence[float]) -> dict[str, float | None]:
    # An unknown value (NaN) is stored as null, as the API received it.
    return {
        name: (None if value != value else value) for name, value in zip(names, values, strict=True)
    }


def prediction_rows(
    *,
    created: float,
    source: str,
    model_name: str,
    model_version: str,
    threshold: float,
    describer: Describer,
    request_ids: Sequence[str],
    rows: Sequence[int],
    inputs: Sequence[Sequence[float]],
    probabilities: Sequence[float],
    predictions: Sequence[int],
    site: str | None,
) -> list[dict[str, Any]]:
    """One dict per scored record, as the predictions table takes it."""
    created_at = utc(created)
    names = describer.names
    return [
        {
            "request_id": request_id,
            "row": row,
            "created_at": created_at,
            "source": source,
            "model_name": model_name,
            "model_version": model_version,
            "spec_hash": describer.spec_hash,
            "site": site,
            "inputs": inputs_json(names, values),
            "imputed": describer.imputed(list(values)),
            "probability": probability,
            "prediction": prediction,
            "risk_level": describer.risk_level(probability),
            "threshold": threshold,
        }
        for request_id, row, values, probability, prediction in zip(
            request_ids, rows, inputs, probabilities, predictions, strict=True
        )
    ]


def insert_statement(dialect: str) -> Any:
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(predictions).on_conflict_do_nothing(index_elements=["request_id", "row"])


def insert_rows(connection: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Insert rows in the caller's transaction (an executemany; already stored keys skipped)."""
    if rows:
        connection.execute(insert_statement(connection.dialect.name), rows)
