"""Structured logs of the service: one JSON object per line, with the request id of the request
being served (a context variable set by the middleware), and the optional prediction log.

Built by the app's lifespan, never at import time.
"""

from __future__ import annotations

import logging
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

from heartml.coding import RAW_FEATURES

REQUEST_ID: ContextVar[str | None] = ContextVar("heartml_request_id", default=None)

# LogRecord's own attributes; everything else on a record came in through `extra=` and is logged
# (but not uvicorn's `color_message`, the same text with terminal escape codes).
_RECORD_FIELDS = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "color_message"}
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
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


class _ServiceHandler(logging.StreamHandler):
    """Marks the handler this module installed, so that a second app replaces it."""


def configure_logging(level: str) -> logging.Handler:
    """JSON lines on stderr through the root logger (uvicorn's loggers propagate to it)."""
    root = logging.getLogger()
    for existing in [h for h in root.handlers if isinstance(h, _ServiceHandler)]:
        root.removeHandler(existing)
    handler = _ServiceHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler


def remove_logging(handler: logging.Handler) -> None:
    logging.getLogger().removeHandler(handler)


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
        rows: np.ndarray,
        probabilities: np.ndarray,
        predictions: np.ndarray,
    ) -> None:
        self._queue.put(
            (time.time(), request_id, model_name, model_version, rows, probabilities, predictions)
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
                        k: (None if v != v else v) for k, v in zip(RAW_FEATURES, row, strict=True)
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
