"""A challenger scored in shadow: every row the champion answers is also scored by the
challenger, off the request path, and the two are compared. Nothing of it reaches a client.

The budget, measured in benchmarks/bench_shadow.py: on the request path, once per scored batch
(not per request), `submit` appends the batch's rows and the champion's probabilities to a
queue - a few microseconds, and nothing that can raise into the request. A worker thread takes
what has gathered every SCORE_INTERVAL_S and scores it with one ONNX call (onnxruntime releases
the GIL while it computes). When the challenger falls behind - more than
HEARTML_SHADOW_QUEUE_ROWS rows waiting - new rows are dropped and counted, never queued without
bound; a challenger that raises costs its own rows (counted as errors, logged once per kind of
error), never a request.

Compared per row: the same 0/1 decision (each model at its own package threshold) and
|P_champion - P_challenger|. The figures start again when either model changes.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypedDict

import numpy as np

from heartml.serving.loaded_model import LoadedModel

log = logging.getLogger("heartml.serving.shadow")

SCORE_INTERVAL_S = 0.01  # rows gather this long: one ONNX call for many requests' rows


class ChallengerBody(TypedDict):
    name: str
    algorithm: str
    version: str
    source: str
    threshold: float


class ShadowBody(TypedDict):
    """/model/info `shadow` (documented as heartml.serving.schemas.ShadowInfo)."""

    challenger: ChallengerBody
    since: str | None
    predictions: dict[str, int]  # rows answered: champion, challenger
    compared: int
    agreement_rate: float | None
    mean_abs_difference: float | None
    dropped: int
    errors: int
    skipped: int
    queue_limit_rows: int


@dataclass
class ShadowStats:
    """The comparison of one (champion, challenger) pair since `since`."""

    champion: LoadedModel | None = None
    challenger: LoadedModel | None = None
    since: str = ""
    champion_rows: int = 0  # rows the champion answered while a challenger was set
    challenger_rows: int = 0  # rows the challenger scored
    compared: int = 0
    agreements: int = 0
    abs_difference_sum: float = 0.0
    dropped: int = 0  # not scored in shadow: the queue was full
    errors: int = 0  # the challenger raised on them
    skipped: int = 0  # the challenger takes other input columns than the champion

    @property
    def agreement_rate(self) -> float | None:
        return self.agreements / self.compared if self.compared else None

    @property
    def mean_abs_difference(self) -> float | None:
        return self.abs_difference_sum / self.compared if self.compared else None


class Shadow:
    """The challenger, its queue, its worker thread and the running comparison."""

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self.challenger: LoadedModel | None = None
        self._queue: deque[tuple[LoadedModel, LoadedModel, np.ndarray, np.ndarray]] = deque()
        self._queued_rows = 0
        self._lock = threading.Lock()  # guards the queue size and the stats
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats = ShadowStats()
        self._errors_logged: set[str] = set()

    # -- event loop side ----------------------------------------------------------------------

    def set_challenger(self, model: LoadedModel | None) -> None:
        self.challenger = model
        if model is not None:
            self.start()

    def submit(self, champion: LoadedModel, rows: np.ndarray, probabilities: np.ndarray) -> None:
        """Queue a scored batch for the challenger (called after the champion's answers are
        set); drops it, counted, when the challenger is that far behind. Never raises."""
        challenger = self.challenger
        if challenger is None:
            return
        count = len(rows)
        with self._lock:
            self._account(champion, challenger)
            self.stats.champion_rows += count
            if self._queued_rows + count > self.max_rows:
                self.stats.dropped += count
                return
            self._queued_rows += count
            self._queue.append((champion, challenger, rows, probabilities))
        if not self._wake.is_set():
            self._wake.set()

    def _account(self, champion: LoadedModel, challenger: LoadedModel) -> None:
        """Start the figures again when the pair changed (under the lock)."""
        stats = self.stats
        if stats.champion is not champion or stats.challenger is not challenger:
            self.stats = ShadowStats(champion, challenger, datetime.now(UTC).isoformat())

    # -- worker thread ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="shadow-scorer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.is_set():
                return
            self._stop.wait(SCORE_INTERVAL_S)  # let more rows gather: fewer, larger calls
            self._wake.clear()
            with self._lock:
                batch = list(self._queue)
                self._queue.clear()
                self._queued_rows = 0
            if batch:
                self._score(batch)

    def _score(self, batch: list[tuple[LoadedModel, LoadedModel, np.ndarray, np.ndarray]]) -> None:
        # Consecutive items of one pair are scored together (a swap splits the batch).
        start = 0
        while start < len(batch):
            champion, challenger = batch[start][0], batch[start][1]
            end = start + 1
            while end < len(batch) and batch[end][0] is champion and batch[end][1] is challenger:
                end += 1
            rows = np.concatenate([item[2] for item in batch[start:end]])
            reference = np.concatenate([item[3] for item in batch[start:end]])
            self._compare(champion, challenger, rows, reference)
            start = end

    def _compare(
        self,
        champion: LoadedModel,
        challenger: LoadedModel,
        rows: np.ndarray,
        reference: np.ndarray,
    ) -> None:
        count = len(rows)
        if challenger.columns != champion.columns:
            with self._lock:
                self._account(champion, challenger)
                self.stats.skipped += count
            return
        try:
            scored = np.asarray(challenger.probabilities(rows), dtype=np.float64)
            if scored.shape != reference.shape:
                raise ValueError(f"{scored.shape} probabilities for {count} rows")
        except Exception as exc:  # the challenger's failure is its own: counted, logged once
            with self._lock:
                self._account(champion, challenger)
                self.stats.errors += count
            self._log_error(challenger, exc)
            return
        agree = int(
            np.count_nonzero((reference >= champion.threshold) == (scored >= challenger.threshold))
        )
        difference = float(np.abs(reference - scored).sum())
        with self._lock:
            self._account(champion, challenger)
            stats = self.stats
            stats.challenger_rows += count
            stats.compared += count
            stats.agreements += agree
            stats.abs_difference_sum += difference

    def _log_error(self, challenger: LoadedModel, exc: Exception) -> None:
        kind = f"{challenger.name}:{challenger.version}:{type(exc).__name__}"
        if kind not in self._errors_logged:
            self._errors_logged.add(kind)
            log.warning(
                "challenger failed to score; its rows are counted as shadow errors",
                extra={
                    "challenger": challenger.name,
                    "challenger_version": challenger.version,
                    "reason": f"{type(exc).__name__}: {exc}"[:300],
                },
            )

    # -- reading ----------------------------------------------------------------------------------

    def snapshot(self) -> ShadowStats:
        with self._lock:
            return ShadowStats(**vars(self.stats))

    def info(self) -> ShadowBody | None:
        """For /model/info: the challenger and the comparison so far (None without one)."""
        challenger = self.challenger
        if challenger is None:
            return None
        stats = self.snapshot()
        if stats.challenger is not challenger:
            stats = ShadowStats(challenger=challenger)
        return {
            "challenger": {
                "name": challenger.name,
                "algorithm": challenger.algorithm,
                "version": challenger.version,
                "source": challenger.source,
                "threshold": challenger.threshold,
            },
            "since": stats.since or None,
            "predictions": {"champion": stats.champion_rows, "challenger": stats.challenger_rows},
            "compared": stats.compared,
            "agreement_rate": stats.agreement_rate,
            "mean_abs_difference": stats.mean_abs_difference,
            "dropped": stats.dropped,
            "errors": stats.errors,
            "skipped": stats.skipped,
            "queue_limit_rows": self.max_rows,
        }
