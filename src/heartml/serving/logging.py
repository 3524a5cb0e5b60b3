"""Structured logs of the service: one JSON object per line, with the request id of the request
being served (a context variable set by the middleware), and the optional prediction log.

Built by the app's lifespan, never at import time.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

REQUEST_ID: ContextVar[str | None] = ContextVar("heartml_request_id", default=None)

# LogRecord's own attributes; everything else on a record came in through `extra=` and is logged
# (but not uvicorn's `color_message`, the same text with terminal escape codes).
_RECORD_FIELDS = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "color_message"}
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # Any record logged while a request is served carries its id (a context variable).
        request_id = REQUEST_ID.get()
        if request_id is not None:
            payload["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS:
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(payload, default=str).decode()


FLUSH_INTERVAL_S = 0.2


class _ServiceHandler(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    """JSON lines on stderr, written in blocks: a line at INFO is flushed with the next one
    after FLUSH_INTERVAL_S (or by the app's flusher task), a WARNING or worse at once.

    stderr is line-buffered, so writing to it directly would cost one write() system call per
    line: with an access log line per request, the largest single cost of a request (measured
    ~20-30 µs of its ~100). This handler writes through its own 64 KiB buffer on a duplicate of
    the stderr descriptor instead. Also marks the handler this module installed, so that a
    second app replaces it.
    """

    def __init__(self) -> None:
        self._owned = None
        stream: Any = sys.stderr
        try:
            fd = os.dup(sys.stderr.fileno())
        except (AttributeError, OSError, ValueError):  # no real stderr (captured): unbuffered
            pass
        else:
            stream = self._owned = open(fd, "w", buffering=1 << 16, encoding="utf-8")  # noqa: SIM115
        super().__init__(stream)
        self._flushed_at = time.monotonic()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + "\n")
            now = time.monotonic()
            if record.levelno >= logging.WARNING or now - self._flushed_at >= FLUSH_INTERVAL_S:
                self.stream.flush()
                self._flushed_at = now
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        self.acquire()
        try:
            if self.stream is not None and not getattr(self.stream, "closed", False):
                self.stream.flush()
            self._flushed_at = time.monotonic()
        finally:
            self.release()

    def close(self) -> None:
        self.acquire()
        try:
            try:
                self.flush()
            finally:
                if self._owned is not None:
                    self._owned.close()
                    self._owned = None
                    self.stream = sys.stderr  # a late record still goes somewhere
                super().close()
        finally:
            self.release()


def configure_logging(level: str) -> logging.Handler:
    """JSON lines on stderr through the root logger (uvicorn's loggers propagate to it)."""
    root = logging.getLogger()
    for existing in [h for h in root.handlers if isinstance(h, _ServiceHandler)]:
        root.removeHandler(existing)
        existing.close()
    handler = _ServiceHandler()
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler


def remove_logging(handler: logging.Handler) -> None:
    logging.getLogger().removeHandler(handler)
    handler.close()


class PredictionLog:
    """One JSON line per prediction, appended by a background thread.

    The request path only puts a tuple on a queue; building the JSON and writing happen in the
    writer thread, which drains everything queued before each flush.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def write(
        self,
        request_id: str,
        model_name: str,
        model_version: str,
        columns: tuple[str, ...],
        rows: np.ndarray,
        probabilities: np.ndarray,
        predictions: np.ndarray,
    ) -> None:
        self._queue.put(
            (
                time.time(),
                request_id,
                model_name,
                model_version,
                columns,
                rows,
                probabilities,
                predictions,
            )
        )

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with self.path.open("ab") as handle:
            while True:
                items = [self._queue.get()]
                while not self._queue.empty():
                    items.append(self._queue.get_nowait())
                for item in items:
                    if item is None:
                        handle.flush()
                        return
                    handle.write(b"".join(self._lines(*item)))
                handle.flush()

    @staticmethod
    def _lines(
        created: float,
        request_id: str,
        model_name: str,
        model_version: str,
        columns: tuple[str, ...],
        rows: np.ndarray,
        probabilities: np.ndarray,
        predictions: np.ndarray,
    ) -> list[bytes]:
        timestamp = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        return [
            orjson.dumps(
                {
                    "ts": timestamp,
                    "request_id": request_id,
                    "index": index,
                    "model_name": model_name,
                    "model_version": model_version,
                    # NaN (an unknown measurement) becomes null, as the API received it.
                    "inputs": {
                        k: (None if v != v else v) for k, v in zip(columns, row, strict=True)
                    },
                    "probability": probability,
                    "prediction": prediction,
                }
            )
            + b"\n"
            for index, (row, probability, prediction) in enumerate(
                zip(rows.tolist(), probabilities.tolist(), predictions.tolist(), strict=True)
            )
        ]
