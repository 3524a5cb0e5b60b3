"""GET /model/info: what is being served, where it came from, and how good it was."""

from __future__ import annotations

from fastapi import APIRouter

from heartml.serving.schemas import ErrorResponse, ModelInfo
from heartml.serving.service import ServiceDep

router = APIRouter(tags=["model"])


@router.get("/model/info", response_model=ModelInfo, responses={503: {"model": ErrorResponse}})
async def model_info(service: ServiceDep) -> dict[str, object]:
    """Name, algorithm, version, run id, metrics, feature names, source, threshold, loaded_at."""
    return service.store.require().info()
