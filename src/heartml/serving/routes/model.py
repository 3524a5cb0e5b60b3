"""GET /model/info: what is being served, where it came from, and how good it was; in registry
mode whether the registry answered at the last look-up, and with a challenger in shadow how the
two models compare."""

from __future__ import annotations

from fastapi import APIRouter

from heartml.serving.schemas import ErrorResponse, ModelInfo
from heartml.serving.service import ServiceDep

router = APIRouter(tags=["model"])


@router.get("/model/info", response_model=ModelInfo, responses={503: {"model": ErrorResponse}})
async def model_info(service: ServiceDep) -> dict[str, object]:
    """Name, algorithm, version, run id, metrics, feature names, source, threshold, loaded_at;
    `registry` (registry mode) and `shadow` (a challenger scored in shadow), else null;
    `calibrations`: the site calibrations served with this version, and any refused."""
    info = service.store.require().info()
    info["registry"] = service.store.source_status()
    info["shadow"] = service.shadow.info() if service.shadow is not None else None
    calibrations = service.calibrations
    info["calibrations"] = calibrations.info(service.store.current) if calibrations else None
    return info
