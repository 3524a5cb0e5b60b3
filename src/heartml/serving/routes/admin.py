"""POST /admin/reload: check the model source now and load it (even if unchanged).

Protected by HEARTML_SERVE_ADMIN_API_KEY, sent as the X-API-Key header. Without a configured
key the endpoint does not exist (404), so an unconfigured service has no admin surface.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Response

from heartml.serving.auth import check_admin_key
from heartml.serving.errors import json_response
from heartml.serving.schemas import ErrorResponse, ReloadResponse
from heartml.serving.service import ServiceDep

router = APIRouter(tags=["admin"])


@router.post(
    "/admin/reload",
    response_model=ReloadResponse,
    responses={
        401: {"model": ErrorResponse, "description": "Missing or wrong X-API-Key"},
        404: {"model": ErrorResponse, "description": "No admin key configured"},
        409: {"model": ReloadResponse, "description": "Load failed; the last good model stays"},
    },
)
async def reload_model(
    service: ServiceDep,
    x_api_key: Annotated[str | None, Header(description="The admin API key")] = None,
) -> Response:
    """Re-resolve the model source, verify and load it, swap it in atomically."""
    configured = service.settings.serve_admin_api_key
    if configured is None:
        raise HTTPException(404, "Not Found")
    check_admin_key(configured, x_api_key)
    outcome = await service.store.refresh(force=True)
    model = service.store.current
    return json_response(
        {
            "status": outcome.status,
            "detail": outcome.detail,
            "model_version": model.version if model else None,
        },
        200 if outcome.status in ("loaded", "unchanged") else 409,
    )
