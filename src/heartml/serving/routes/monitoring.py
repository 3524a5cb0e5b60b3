"""GET /metrics (Prometheus text format) and GET /monitoring/drift (JSON).

Drift statistics are computed here, when asked, and cached until new inputs arrive: the request
path only appends rows to the window.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from heartml.serving.metrics import CONTENT_TYPE_LATEST
from heartml.serving.schemas import DriftReport
from heartml.serving.service import ServiceDep

router = APIRouter(tags=["monitoring"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus metrics"}},
)
async def metrics(service: ServiceDep) -> Response:
    """Request counts and latency by endpoint and status, predictions, model version, drift."""
    service.metrics.model_ready.set(0 if service.store.current is None else 1)
    service.metrics.set_drift(service.drift.report())
    return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/monitoring/drift", response_model=DriftReport)
async def drift(service: ServiceDep) -> DriftReport:
    """PSI per feature and KS for numeric ones: recent inputs vs the training reference."""
    return service.drift.report()
