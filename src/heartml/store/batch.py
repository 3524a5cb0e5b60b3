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
from typing import Any

import pyarrow as pa
from sqlalchemy.engine import Engine

from heartml.batch.contract import (
    IMPUTED_COLUMN,
    IMPUTED_SEPARATOR,
    PROBABILITY_COLUMN,
    ROW_COLUMN,
)
from heartml.store.records import inputs_json, insert_rows, utc


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
    request_id: str = field(default_factory=batch_request_id)
    recorded: int = 0

    def __call__(self, table: pa.Table) -> None:
        columns = table.to_pydict()
        created_at = utc(time.time())
        inputs = [columns[name] for name in self.names]
        rows: list[dict[str, Any]] = []
        for i, row in enumerate(columns[ROW_COLUMN]):
            imputed = columns[IMPUTED_COLUMN][i]
            rows.append(
                {
                    "request_id": self.request_id,
                    "row": row,
                    "created_at": created_at,
                    "source": "batch",
                    "model_name": self.model_name,
                    "model_version": self.model_version,
                    "spec_hash": self.spec_hash,
                    "site": self.site,
                    "inputs": inputs_json(self.names, [column[i] for column in inputs]),
                    "imputed": imputed.split(IMPUTED_SEPARATOR) if imputed else [],
                    "probability": columns[PROBABILITY_COLUMN][i],
                    "prediction": columns["prediction"][i],
                    "risk_level": columns["risk_level"][i],
                    "threshold": self.threshold,
                }
            )
        with self.engine.begin() as connection:
            insert_rows(connection, rows)
        self.recorded += len(rows)
