"""Retention: predictions older than HEARTML_STORE_RETENTION_DAYS are deleted (0 keeps all).

The service's writer prunes once an hour (every replica may: the delete is idempotent);
`heartml store prune` does it at once.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from heartml.store.records import utc
from heartml.store.schema import predictions

PRUNE_INTERVAL_S = 3600.0


def prune(engine: Engine, retention_days: float, now: float | None = None) -> int:
    """Delete the predictions made more than `retention_days` ago; returns how many."""
    if retention_days <= 0:
        return 0
    cutoff = utc((time.time() if now is None else now) - retention_days * 86400.0)
    with engine.begin() as connection:
        result = connection.execute(sa.delete(predictions).where(predictions.c.created_at < cutoff))
    return int(result.rowcount or 0)
