"""The background writer: predictions go from the request path to the store in batched inserts.

The request path only appends one tuple per scored group (a micro-batch of /predict calls, or a
/predict/batch) to a deque: no lock, no I/O, no row building. A thread wakes every
`flush_interval_s`, builds the rows and inserts everything queued in one transaction per
`WRITE_CHUNK` rows.

Nothing here can fail a prediction. While the database is away (deleted, read-only, full,
unreachable), the writer keeps the rows it could not insert and retries with a growing pause;
new predictions queue behind them up to `max_rows`, and beyond that are dropped at the door,
counted (`dropped["queue_full"]`, heartml_store_dropped_rows_total in /metrics) and logged once
per outage. On every retry the schema is brought up to date first, so a database that comes back
empty (a deleted SQLite file, a recreated PostgreSQL database) is migrated and used again. Rows
the database refuses outright (a constraint, a value it cannot hold) are dropped, not retried.

Counters have one writer each (the event loop, or the writer thread), so no lock is needed to
keep them exact; the queue length is their difference.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from heartml.store.engine import FileWatch, error_text, shown, upgrade
from heartml.store.records import Describer, Row, db_time, insert_rows, prediction_values
from heartml.store.retention import PRUNE_INTERVAL_S, prune

log = logging.getLogger("heartml.store")

WRITE_CHUNK = 5000  # rows per insert transaction
YIELD_ROWS = 128  # rows built between two hand-overs of the GIL (~0.5 ms)
MAX_BACKOFF_S = 10.0
CLOSE_TIMEOUT_S = 10.0
DROP_REASONS = ("queue_full", "rejected", "shutdown")
# (created, source, model name, version, threshold, describer, request ids, rows, inputs,
#  probabilities, predictions, site, raw probabilities or None, calibration version or None)
# inputs, probabilities, predictions: lists, or numpy arrays (turned into lists by the writer)
Pending = tuple[
    float, str, str, str, float, Describer, Sequence[str], Sequence[int], Any, Any, Any,
    "str | None", Any, "int | None",
]  # fmt: skip


class PredictionWriter:
    def __init__(
        self,
        engine: Engine,
        *,
        max_rows: int,
        flush_interval_s: float,
        retention_days: float = 0.0,
    ) -> None:
        self.engine = engine
        self.max_rows = max_rows
        self.flush_interval_s = flush_interval_s
        self.retention_days = retention_days
        self._items: deque[Pending] = deque()
        # Written by the event loop only:
        self.queued_rows = 0
        self.queue_full_rows = 0
        self.enqueued = 0  # items
        # Written by the writer thread only:
        self.done_rows = 0  # written or dropped by the writer
        self.written_rows = 0
        self.rejected_rows = 0
        self.shutdown_rows = 0
        self.processed = 0  # items taken off the deque and written or dropped
        self.healthy: bool | None = None  # None until the first attempt
        self.last_error: str | None = None
        self._held: list[Row] = []  # rows built, not yet inserted (database away)
        self._dialect = engine.dialect.name
        self._watch = FileWatch(engine)
        self._held_items = 0
        self._closing = False
        self._wake = threading.Event()
        self._done = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="prediction-store", daemon=True)

    # -- the request path (event loop) ---------------------------------------------------------

    def record(
        self,
        created: float,
        source: str,
        model_name: str,
        model_version: str,
        threshold: float,
        describer: Describer,
        request_ids: Sequence[str],
        rows: Sequence[int],
        inputs: Any,
        probabilities: Any,
        predictions: Any,
        site: str | None = None,
        raw_probabilities: Any = None,
        calibration_version: int | None = None,
    ) -> None:
        count = len(probabilities)
        if self.queued_rows - self.done_rows + count > self.max_rows:
            self.queue_full_rows += count
            return
        self.queued_rows += count
        self._items.append(
            (
                created, source, model_name, model_version, threshold, describer,
                request_ids, rows, inputs, probabilities, predictions, site, raw_probabilities,
                calibration_version,
            )
        )  # fmt: skip
        self.enqueued += 1

    # -- for the service ---------------------------------------------------------------------

    @property
    def pending_rows(self) -> int:
        return self.queued_rows - self.done_rows

    @property
    def dropped(self) -> dict[str, int]:
        return {
            "queue_full": self.queue_full_rows,
            "rejected": self.rejected_rows,
            "shutdown": self.shutdown_rows,
        }

    def start(self) -> None:
        self._thread.start()

    def wait_written(self, timeout: float) -> bool:
        """Block until everything queued before this call is written (or dropped); False on
        timeout (the database is away). For a worker thread, never the event loop."""
        target = self.enqueued
        self._wake.set()
        with self._done:
            return self._done.wait_for(lambda: self.processed >= target, timeout)

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Write what is queued (one attempt), then stop the thread."""
        self._closing = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # -- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.0
        next_prune = 0.0
        outage_started: float | None = None
        outage_dropped = 0
        reported: str | None = None
        self._attempt_schema(create_parent=True)
        while True:
            self._wake.wait(max(self.flush_interval_s, backoff))
            self._wake.clear()
            closing = self._closing
            self._take()
            ok = self._write_held()
            if ok:
                if outage_started is not None:
                    dropped = self.queue_full_rows - outage_dropped
                    log.info(
                        "prediction store available again after %.1f s; %d predictions were "
                        "dropped meanwhile",
                        time.monotonic() - outage_started,
                        dropped,
                        extra={"store": shown(self.engine.url), "dropped": dropped},
                    )
                    outage_started = None
                backoff = 0.0
                if self.retention_days > 0 and time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + PRUNE_INTERVAL_S
                    self._prune()
            else:
                if outage_started is None:
                    outage_started = time.monotonic()
                    outage_dropped = self.queue_full_rows
                    log.warning(
                        "prediction store unavailable: %s; up to %d predictions wait in memory, "
                        "newer ones are dropped (heartml_store_dropped_rows_total)",
                        self.last_error,
                        self.max_rows,
                        extra={"store": shown(self.engine.url)},
                    )
                elif self.last_error != reported:  # one line per new reason, not per retry
                    log.warning(
                        "prediction store still unavailable: %s",
                        self.last_error,
                        extra={"store": shown(self.engine.url)},
                    )
                reported = self.last_error
                backoff = min(MAX_BACKOFF_S, max(2 * backoff, self.flush_interval_s))
            if closing:
                self._drop_held("shutdown")
                self._take()  # anything that arrived during the last attempt
                self._drop_held("shutdown")
                return

    def _take(self) -> None:
        """Move the queued items into the held rows (built here, off the request path). The
        GIL is handed back every YIELD_ROWS rows: the event loop waits at most that long."""
        items = self._items
        built = 0
        while items:
            (created, source, name, version, threshold, describer, request_ids, rows, inputs,
             probabilities, predictions, site, raws, calibration) = items.popleft()  # fmt: skip
            try:
                # The request path hands over what it has (numpy arrays from /predict/batch).
                values = prediction_values(
                    created_at=db_time(self._dialect, created),
                    source=source,
                    model_name=name,
                    model_version=version,
                    threshold=threshold,
                    describer=describer,
                    request_ids=request_ids,
                    rows=rows,
                    inputs=_listed(inputs),
                    probabilities=_listed(probabilities),
                    predictions=_listed(predictions),
                    site=site,
                    raw_probabilities=None if raws is None else _listed(raws),
                    calibration_version=calibration,
                )
            except Exception:
                log.exception("prediction rows could not be built; dropped")
                self._finish(len(probabilities), items=1, reason="rejected")
                continue
            self._held.extend(values)
            self._held_items += 1
            built += len(values)
            if built >= YIELD_ROWS:
                built = 0
                time.sleep(0)

    def _write_held(self) -> bool:
        """Insert the held rows; False when the database is away (they stay held)."""
        self._watch.check()
        if self.healthy is not True:
            # After a failure, the schema first: the database may have come back empty.
            self._attempt_schema(create_parent=False)
            if not self.healthy:
                return False
        while self._held:
            chunk = self._held[:WRITE_CHUNK]
            try:
                with self.engine.begin() as connection:
                    insert_rows(connection, chunk)
            except (sa_exc.IntegrityError, sa_exc.DataError) as exc:
                self._error(exc)
                log.error(
                    "prediction store refused %d rows; dropped: %s",
                    len(chunk),
                    self.last_error,
                    extra={"store": shown(self.engine.url)},
                )
                del self._held[: len(chunk)]
                self._finish(len(chunk), items=0, reason="rejected")
                continue
            except Exception as exc:  # the database away: kept, retried after a pause
                self._error(exc)
                self.healthy = False
                return False
            self.healthy = True
            del self._held[: len(chunk)]
            self.written_rows += len(chunk)
            self._finish(len(chunk), items=0)
        self._finish(0, items=self._held_items)
        self._held_items = 0
        return True

    def _drop_held(self, reason: str) -> None:
        self._finish(len(self._held), items=self._held_items, reason=reason)
        self._held.clear()
        self._held_items = 0

    def _finish(self, rows: int, items: int, reason: str | None = None) -> None:
        if reason == "rejected":
            self.rejected_rows += rows
        elif reason == "shutdown":
            self.shutdown_rows += rows
        self.done_rows += rows
        if items:
            with self._done:
                self.processed += items
                self._done.notify_all()

    def _error(self, exc: BaseException) -> None:
        self.last_error = error_text(exc)

    def _attempt_schema(self, create_parent: bool) -> None:
        try:
            upgrade(self.engine, create_parent=create_parent)
            self._watch.check()  # the file the pool now has open
            self.healthy = True
        except Exception as exc:
            self._error(exc)
            self.healthy = False

    def _prune(self) -> None:
        try:
            removed = prune(self.engine, self.retention_days)
        except Exception as exc:  # retention waits for the next round
            self._error(exc)
            return
        if removed:
            log.info(
                "prediction store: %d predictions older than %g days deleted",
                removed,
                self.retention_days,
            )


def _listed(values: Any) -> Any:
    return values.tolist() if hasattr(values, "tolist") else values
