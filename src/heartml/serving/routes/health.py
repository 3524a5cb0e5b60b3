"""GET /health (liveness: the process answers; no model access) and GET /ready (a model is
loaded and can be scored; 503 with the reason until then)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from heartml.serving.errors import JSONBytesResponse, json_response
from heartml.serving.schemas import HealthResponse, ReadyResponse
from heartml.serving.service import ServiceDep

router = APIRouter(tags=["health"])

_HEALTHY = b'{"status":"ok"}'


@router.get("/health", response_model=HealthResponse)
async def health() -> Response:
    """Liveness: answers as long as the event loop does."""
    return JSONBytesResponse(_HEALTHY)


@router.get("/ready", response_model=ReadyResponse, responses={503: {"model": ReadyResponse}})
async def ready(service: ServiceDep) -> Response:
    """Readiness: 200 once a verified model is loaded, 503 with the reason before."""
    model = service.store.current
    if model is None:
        return json_response(
            {"status": "not_ready", "model_version": None, "detail": service.store.problem},
            503,
            {"Retry-After": "5"},
        )
    return json_response({"status": "ready", "model_version": model.version, "detail": None})
