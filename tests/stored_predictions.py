"""Predictions written straight into a prediction store, through the store's own insert path
(what `heartml serve` records), for the tests that need a store with history in it."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Sequence

from sqlalchemy.engine import Engine

from heartml.serving.contract import build_contract
from heartml.spec import DatasetSpec
from heartml.store.records import db_time, insert_rows, prediction_values


def store_predictions(
    engine: Engine,
    spec: DatasetSpec,
    request_ids: Sequence[str],
    inputs: Sequence[Sequence[float]],
    *,
    probabilities: Sequence[float] | None = None,
    age_days: float = 0.0,
    threshold: float = 0.5,
    site: str | None = None,
    model_version: str = "1",
    raw_probabilities: Sequence[float] | None = None,
    calibration_version: int | None = None,
) -> None:
    """One /predict answer per row (row 0 of its request), by the spec's logistic regression
    (version 1 unless given) at `site`; probabilities 0.5 unless given, labels from the
    threshold. `raw_probabilities`: the model's own, when a site calibration (version
    `calibration_version`) turned them into `probabilities`."""
    shown = [0.5] * len(request_ids) if probabilities is None else list(probabilities)
    values = prediction_values(
        created_at=db_time("sqlite", time.time() - age_days * 86400.0),
        source="api",
        model_name=f"{spec.model_name_prefix}_logistic_regression",
        model_version=model_version,
        threshold=threshold,
        describer=build_contract(spec),
        request_ids=list(request_ids),
        rows=[0] * len(request_ids),
        inputs=[list(row) for row in inputs],
        probabilities=shown,
        predictions=[int(p >= threshold) for p in shown],
        site=site,
        raw_probabilities=raw_probabilities,
        calibration_version=calibration_version,
    )
    with engine.begin() as connection:
        insert_rows(connection, values)


def stored_count(url: str) -> int:
    """Rows in a store's predictions table, read with the database's own driver (not through
    heartml.store), on SQLite or PostgreSQL."""
    if url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db:
            return int(db.execute("SELECT count(*) FROM predictions").fetchone()[0])
    import psycopg2

    with (
        contextlib.closing(psycopg2.connect(url.replace("+psycopg2", ""))) as db,
        db.cursor() as cursor,
    ):
        cursor.execute("SELECT count(*) FROM predictions")
        return int(cursor.fetchone()[0])
