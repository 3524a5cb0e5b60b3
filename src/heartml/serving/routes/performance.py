"""GET /monitoring/performance: live performance per model version from the prediction store.

Realised figures over the window of labelled predictions, CBPE's estimate beside them and for
the predictions still without an outcome, and the served package's CV ROC-AUC for comparison
(heartml.monitoring.live). Computed when asked, in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from heartml.monitoring.live import VersionPerformance
from heartml.serving.schemas import ErrorResponse, ValidationErrorResponse
from heartml.serving.service import Service
from heartml.sites import SITE_ERROR, SITE_MAX, SITE_PATTERN, SITE_RULE, site_message

router = APIRouter(tags=["monitoring"])
log = logging.getLogger("heartml.serving")

FLUSH_WAIT_S = 1.0


class PerformanceReport(BaseModel):
    generated_at: float = Field(description="POSIX seconds")
    window_max_rows: int = Field(description="HEARTML_MONITOR_WINDOW")
    window_max_age_days: float = Field(description="HEARTML_MONITOR_WINDOW_DAYS")
    min_labels: int = Field(description="HEARTML_MONITOR_MIN_LABELS (the live-AUC alert's)")
    versions: list[VersionPerformance]


@router.get(
    "/monitoring/performance",
    response_model=PerformanceReport,
    responses={
        422: {"model": ValidationErrorResponse, "description": "A query parameter is not valid"},
        503: {"model": ErrorResponse, "description": "The prediction store is off or away"},
    },
)
async def performance(
    request: Request,
    model_version: Annotated[
        str | None, Query(max_length=64, description="Only this model version")
    ] = None,
    site: Annotated[
        str | None,
        Query(
            max_length=SITE_MAX,
            description=f"Only this site's predictions ({SITE_RULE})",
            # Documented, not enforced by FastAPI: the route's own check says what is allowed.
            json_schema_extra={"pattern": f"^{SITE_PATTERN.pattern}$"},
        ),
    ] = None,
) -> PerformanceReport:
    """Realised and estimated performance per model version over the sliding window."""
    service: Service = request.app.state.service
    if site is not None and not SITE_PATTERN.fullmatch(site):
        raise HTTPException(
            422,
            [
                {
                    "field": "site",
                    "value": site,
                    "message": site_message(site),
                    "type": SITE_ERROR,
                }
            ],
        )
    live = service.live
    if live is None:
        raise HTTPException(503, "the prediction store is off (HEARTML_STORE_ENABLED=false)")
    await asyncio.to_thread(live.writer.wait_written, FLUSH_WAIT_S)
    try:
        versions = await run_in_threadpool(live.compute, service.store.current, model_version, site)
    except Exception as exc:
        log.warning(f"live performance not computed: {type(exc).__name__}: {exc}")
        raise HTTPException(503, "the prediction store is unavailable; try again") from None
    return PerformanceReport(
        generated_at=time.time(),
        window_max_rows=live.window.max_rows,
        window_max_age_days=live.window.max_age_days,
        min_labels=live.min_labels,
        versions=versions,
    )
