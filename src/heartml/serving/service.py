"""The service's parts in one object, handed to the routes as an Annotated dependency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np
from fastapi import Depends, Request

from heartml.serving.drift import DriftMonitor
from heartml.serving.logging import PredictionLog
from heartml.serving.metrics import ServiceMetrics
from heartml.serving.model_store import LoadedModel, ModelStore
from heartml.settings import Settings


@dataclass
class Service:
    settings: Settings
    store: ModelStore
    metrics: ServiceMetrics
    drift: DriftMonitor
    prediction_log: PredictionLog | None = None

    def predict(
        self, model: LoadedModel, rows: np.ndarray, request_id: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """P(disease) and the 0/1 decision for raw rows, recorded in metrics, drift and log."""
        return self.record(model, rows, model.probabilities(rows), request_id)

    def record(
        self, model: LoadedModel, rows: np.ndarray, probabilities: np.ndarray, request_id: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """Decide at the model's threshold and record; call it on the event loop (not thread-safe
        by design: the drift window and the log queue see one writer)."""
        predictions = (probabilities >= model.threshold).astype(np.int64)
        self.metrics.observe_predictions(predictions, probabilities)
        self.drift.observe(rows)
        if self.prediction_log is not None:
            self.prediction_log.write(
                request_id, model.name, model.version, rows, probabilities, predictions
            )
        return probabilities, predictions

    def model_changed(self, model: LoadedModel) -> None:
        self.metrics.set_model(model.name, model.algorithm, model.version, model.run_id)
        self.drift.set_reference(model.reference, model.version)


async def get_service(request: Request) -> Service:
    # async: FastAPI would run a plain `def` dependency in the thread pool, on every request.
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]
