"""`heartml score --record`: the scored rows of a batch run, stored like the service's.

A run is one request id (`score-<12 hex digits>`, printed by the command); each stored row's
`row` is the output file's `row` (the input's 1-based data row), so an outcome for a batch row
is sent as {request_id, row, outcome}. Rows are inserted per chunk, in their own transaction,
as the chunks are written: a database that fails stops the run (the rows of earlier chunks stay
recorded; the command says how many).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import pyarrow as pa
from sqlalchemy.engine import Engine

from heartml.batch.contract import (
    IMPUTED_COLUMN,
    IMPUTED_SEPARATOR,
    PREDICTION_COLUMN,
    PROBABILITY_COLUMN,
    RAW_PROBABILITY_COLUMN,
    RISK_COLUMN,
    ROW_COLUMN,
)
from heartml.store.records import NO_FIELDS, db_time, insert_rows, json_text


def batch_request_id() -> str:
    return f"score-{os.urandom(6).hex()}"


@dataclass
class BatchRecorder:
    engine: Engine
    model_name: str
    model_version: str
    spec_hash: str
    threshold: float
    names: tuple[str, ...]  # the spec's input columns
    site: str | None = None
    calibration_version: int | None = None  # the site calibration applied, if any
    request_id: str = field(default_factory=batch_request_id)
    recorded: int = 0

    def __call__(self, table: pa.Table) -> None:
        columns = table.to_pydict()
        created_at = db_time(self.engine.dialect.name, time.time())
        inputs = [columns[name] for name in self.names]
        raw_probabilities = columns.get(RAW_PROBABILITY_COLUMN)  # a site calibration applied
        rows = []
        for i, row in enumerate(columns[ROW_COLUMN]):
            imputed = columns[IMPUTED_COLUMN][i]
            probability = columns[PROBABILITY_COLUMN][i]
            raw = raw_probabilities[i] if raw_probabilities is not None else None
            rows.append(
                (
                    self.request_id, row, created_at, "batch", self.model_name,
                    self.model_version, self.spec_hash, self.site,
                    json_text(dict(zip(self.names, [c[i] for c in inputs], strict=True))),
                    json_text(imputed.split(IMPUTED_SEPARATOR)) if imputed else NO_FIELDS,
                    probability, columns[PREDICTION_COLUMN][i], columns[RISK_COLUMN][i],
                    self.threshold, raw, self.calibration_version,
                )
            )  # fmt: skip
        with self.engine.begin() as connection:
            insert_rows(connection, rows)
        self.recorded += len(rows)
