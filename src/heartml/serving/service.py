"""The service's parts in one object, handed to the routes as an Annotated dependency.

Single-patient predictions are micro-batched (heartml.serving.micro_batch, Service's base
class): the requests that reach the model in one turn of the event loop share one ONNX call.

With a challenger set (heartml.serving.shadow), each scored batch is also handed to the shadow's
queue, after the champion's answers: one append per batch, scored by another thread.

The prediction store's writer (heartml.store.writer) gets one append per scored group, with the
rows as they are: building the stored rows and inserting them happen in its own thread.

A request may name a site (heartml.serving.calibrations): its calibration is applied to the
model's probability after the ONNX call; the decision and everything recorded use the calibrated
probability, the store also keeps the model's own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import numpy as np
from fastapi import Depends, Request

from heartml.serving.calibrations import ServedCalibrations, SiteEntry
from heartml.serving.contract import Contract
from heartml.serving.drift import DriftMonitor
from heartml.serving.loaded_model import LoadedModel
from heartml.serving.logging import PredictionLog
from heartml.serving.metrics import ServiceMetrics
from heartml.serving.micro_batch import MicroBatching, Pending
from heartml.serving.model_store import ModelStore
from heartml.serving.shadow import Shadow
from heartml.settings import Settings

if TYPE_CHECKING:  # imported by the app only when the store is enabled (SQLAlchemy: ~0.1 s)
    from heartml.serving.live import LiveMonitor
    from heartml.store.writer import PredictionWriter

log = logging.getLogger("heartml.serving")


@dataclass
class Service(MicroBatching):
    settings: Settings
    store: ModelStore
    metrics: ServiceMetrics
    drift: DriftMonitor
    prediction_log: PredictionLog | None = None
    shadow: Shadow | None = None  # the challenger scored in shadow (heartml.serving.shadow)
    challenger_store: ModelStore | None = None
    recorder: PredictionWriter | None = None  # the prediction store's writer, when enabled
    live: LiveMonitor | None = None  # its live-performance window
    calibrations: ServedCalibrations | None = None  # the served model's site calibrations
    # The micro-batch's state (heartml.serving.micro_batch.MicroBatching).
    _pending: list[Pending] = field(default_factory=list, init=False, repr=False)
    _last_batch: int = field(default=1, init=False, repr=False)
    _deferred: bool = field(default=False, init=False, repr=False)
    _contract: Contract | None = field(default=None, init=False, repr=False)

    def site_entry(self, model: LoadedModel, site: str | None) -> SiteEntry | None:
        """How `site`'s predictions are served by `model` (None: no site). Take it once per
        request: the answer names the calibration that was applied."""
        if site is None or self.calibrations is None:
            return None if site is None else SiteEntry(site, "site calibrations are off")
        return self.calibrations.entry(model, site)

    def predict(
        self,
        model: LoadedModel,
        rows: np.ndarray,
        request_id: str,
        entry: SiteEntry | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """P(positive) and the 0/1 decision for raw rows, recorded in metrics, drift and log."""
        return self.record(model, rows, model.probabilities(rows), request_id, entry)

    def record(
        self,
        model: LoadedModel,
        rows: np.ndarray,
        raw: np.ndarray,
        request_id: str,
        entry: SiteEntry | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Calibrate for the site (entry), decide at the model's threshold and record; call it on
        the event loop (not thread-safe by design: the metrics, the drift window and the log
        queue see one writer). Returns the served probabilities and the decisions."""
        probabilities = raw if entry is None else entry.apply(raw)
        predictions = (probabilities >= model.threshold).astype(np.int64)
        self.metrics.observe_predictions(predictions.tolist(), probabilities.tolist())
        self.drift.observe(rows)
        if self.prediction_log is not None:
            self.prediction_log.write(
                request_id,
                model.name,
                model.version,
                model.columns,
                rows,
                probabilities,
                predictions,
            )
        if self.recorder is not None:
            count = len(probabilities)
            # row: a /predict/batch record's position in `records`
            self.store_api_rows(
                model, [request_id] * count, range(count), rows, probabilities, predictions,
                entry, raw,
            )  # fmt: skip
        shadow = self.shadow
        if shadow is not None and shadow.challenger is not None:
            shadow.submit(model, rows, raw)  # model against model: the champion's own
        return probabilities, predictions

    def model_changed(self, model: LoadedModel) -> bool:
        """A new model is being served; True when its input contract differs from the last."""
        self.metrics.set_model(model.name, model.algorithm, model.version, model.run_id)
        self.drift.set_reference(model.reference, model.version, model.columns)
        previous, self._contract = self._contract, model.contract
        if previous is None or previous.key == model.contract.key:
            return previous is None
        old, new = previous.names, model.contract.names
        changed = [
            n
            for n in new
            if n in previous.columns and previous.columns[n] != model.contract.columns[n]
        ]
        log.info(
            f"input contract changed: {', '.join(old)} -> {', '.join(new)}",
            extra={
                "model_version": model.version,
                "added": [n for n in new if n not in previous.columns],
                "removed": [n for n in old if n not in model.contract.columns],
                "changed": changed,
                "spec_hash": model.contract.spec_hash,
            },
        )
        return True


async def get_service(request: Request) -> Service:
    # async: FastAPI would run a plain `def` dependency in the thread pool, on every request.
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]
