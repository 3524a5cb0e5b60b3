"""POST /feedback: outcomes for stored predictions (heartml.store.outcomes).

One object `{request_id, row?, outcome, observed_at?}` or an array of them, at most 10,000 per
call (heartml.store.outcomes.MAX_ITEMS) and within HEARTML_SERVE_MAX_BODY_BYTES. Applied whole or
not at all. Needs the X-API-Key header when HEARTML_SERVE_ADMIN_API_KEY is set.

The body is parsed with the standard library's json (not orjson): it reads NaN, which a client
may well send, so that NaN gets the 422 naming the field instead of a 400. Outcomes usually
follow their prediction within seconds, so the writer is asked to write what it holds before
the ids are looked up (at most FLUSH_WAIT_S).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from heartml.documents.base import JsonObject
from heartml.serving.auth import check_admin_key
from heartml.serving.errors import error_response, json_response, request_id
from heartml.serving.routes.bodies import content_type_of, is_json
from heartml.serving.schemas import ErrorResponse, ValidationErrorResponse
from heartml.serving.service import Service
from heartml.store.outcomes import MAX_ITEMS
from heartml.store.schema import ROW_MAX

router = APIRouter(tags=["monitoring"])
log = logging.getLogger("heartml.serving")

FLUSH_WAIT_S = 5.0


class FeedbackItem(BaseModel):
    request_id: str = Field(
        min_length=1, max_length=64, description="The `request_id` of the prediction's answer"
    )
    row: int = Field(
        default=0,
        ge=0,
        le=ROW_MAX,
        description="The record's position in a /predict/batch call's `records` (0 for /predict)",
    )
    outcome: int = Field(ge=0, le=1, description="What happened: 1 = positive, 0 = negative")
    observed_at: str | None = Field(
        default=None,
        description="When the outcome was observed (ISO 8601; UTC if no offset)",
        json_schema_extra={"format": "date-time"},
    )


class FeedbackResponse(BaseModel):
    received: int = Field(description="Distinct predictions in the call")
    recorded: int = Field(description="Predictions that had no outcome and have one now")
    overwritten: int = Field(description="Stored outcomes replaced (overwrite=true)")
    unchanged: int = Field(description="Outcomes that were already stored")
    request_id: str


def feedback_body() -> JsonObject:
    """The OpenAPI request body (the route reads its body itself, as JSON that may hold NaN)."""
    item = FeedbackItem.model_json_schema()
    item["additionalProperties"] = False
    # No maxItems: over MAX_ITEMS is a documented 413 (the batch's own limit), not a 422.
    many: JsonObject = {
        "type": "array",
        "items": item,
        "minItems": 1,
        "description": f"At most {MAX_ITEMS:,} outcomes per call (more: 413)",
    }
    schema: JsonObject = {"oneOf": [item, many]}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _store_off(request: Request) -> Response:
    return error_response(request, 503, "the prediction store is off (HEARTML_STORE_ENABLED=false)")


@router.post(
    "/feedback",
    response_model=FeedbackResponse,
    openapi_extra=feedback_body(),
    responses={
        400: {"model": ErrorResponse, "description": "The body is not valid JSON"},
        401: {"model": ErrorResponse, "description": "Missing or wrong X-API-Key (key set)"},
        404: {"model": ErrorResponse, "description": "No stored prediction has this request_id"},
        409: {
            "model": ErrorResponse,
            "description": "The other outcome is stored already, or the call sends both outcomes "
            "for one prediction",
        },
        413: {"model": ErrorResponse, "description": "More than 10,000 outcomes, or body too big"},
        415: {"model": ErrorResponse, "description": "The body is not sent as application/json"},
        422: {"model": ValidationErrorResponse, "description": "An item is not a valid outcome"},
        503: {"model": ErrorResponse, "description": "The prediction store is off or away"},
    },
)
async def feedback(
    request: Request,
    overwrite: Annotated[
        bool, Query(description="Replace an outcome already stored for a prediction")
    ] = False,
    x_api_key: Annotated[str | None, Header(description="The admin API key, if one is set")] = None,
) -> Response:
    """Record what happened to the patients of earlier predictions (one outcome or many)."""
    from heartml.store.outcomes import (
        OutcomeConflict,
        OutcomesContradict,
        OutcomesInvalid,
        TooManyOutcomes,
        UnknownPredictions,
        parse_outcomes,
        record_outcomes,
    )

    service: Service = request.app.state.service
    check_admin_key(service.settings.serve_admin_api_key, x_api_key)
    if not is_json(content_type_of(request)):
        raise HTTPException(
            415, "send the body as JSON with the header Content-Type: application/json"
        )
    body = await request.body()
    try:
        data: Any = json.loads(body)
    except (ValueError, RecursionError) as exc:
        return error_response(request, 400, f"the request body is not valid JSON: {exc}")
    live = service.live
    if live is None:
        return _store_off(request)
    try:
        outcomes = parse_outcomes(data)
    except TooManyOutcomes as exc:
        return error_response(request, 413, str(exc))
    except OutcomesInvalid as exc:
        return error_response(request, 422, exc.problems)
    except OutcomesContradict as exc:
        return error_response(request, 409, str(exc))
    await asyncio.to_thread(live.writer.wait_written, FLUSH_WAIT_S)
    try:
        result = await run_in_threadpool(record_outcomes, live.engine, outcomes, overwrite)
    except UnknownPredictions as exc:
        return error_response(request, 404, str(exc))
    except OutcomeConflict as exc:
        return error_response(request, 409, f"{exc} (send ?overwrite=true to replace them)")
    except Exception as exc:  # the database away: nothing was written (one transaction)
        log.warning(
            f"outcomes not recorded, prediction store unavailable: {type(exc).__name__}: {exc}"
        )
        return error_response(
            request,
            503,
            "the prediction store is unavailable; nothing was recorded, try again",
            {"Retry-After": "5"},
        )
    for name in ("recorded", "overwritten", "unchanged"):
        live.feedback[name] += getattr(result, name)
    return json_response(
        {
            "received": result.received,
            "recorded": result.recorded,
            "overwritten": result.overwritten,
            "unchanged": result.unchanged,
            "request_id": request_id(request),
        }
    )
