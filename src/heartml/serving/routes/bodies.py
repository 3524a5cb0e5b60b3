"""The request bodies of the prediction routes: read, checked and validated (shared by
/predict, /predict/batch, /predict/explain and the other protocols' routes).

The prediction routes read their JSON body themselves and validate it with pydantic's own JSON
parser (`model_validate_json`): measured on this service, FastAPI's body parameter (stdlib json,
then Python-object validation) and a dependency cost about 30 µs per request, as much as the
ONNX call. The OpenAPI document still describes the bodies (see `openapi_body`), and validation
errors go through the same handler as FastAPI's own.

Each body is validated with the input contract of the model that scores it (its package's
dataset spec, heartml.serving.contract): the model is taken from the store once, first
(`served_model`), so a hot swap to another contract mid-request cannot validate with one and
score with the other.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request
from pydantic import BaseModel, ValidationError

from heartml.documents.base import JsonObject
from heartml.serving.contract import Contract
from heartml.serving.errors import RecordValidationError
from heartml.serving.fast_check import checked_record
from heartml.serving.loaded_model import LoadedModel
from heartml.serving.requests import generic_models
from heartml.serving.schemas import ErrorResponse, ValidationErrorResponse
from heartml.serving.service import Service

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The body is not valid JSON"},
    413: {"model": ErrorResponse, "description": "Body or batch over the configured limit"},
    415: {"model": ErrorResponse, "description": "The body is not sent as application/json"},
    422: {"model": ValidationErrorResponse, "description": "A field is missing or not allowed"},
    503: {"model": ErrorResponse, "description": "No model loaded yet"},
}
# Above this many rows, the ONNX call runs in the thread pool (onnxruntime releases the GIL),
# so that a large batch does not hold up the single-row requests queued behind it.
THREADPOOL_ROWS = 64


def check_batch_limit(service: Service, count: int) -> None:
    """A 413 for more records than HEARTML_SERVE_BATCH_LIMIT (every route that takes many)."""
    limit = service.settings.serve_batch_limit
    if count > limit:
        raise HTTPException(
            413,
            f"the batch has {count} records; the limit is {limit} per request "
            "(HEARTML_SERVE_BATCH_LIMIT): split it into smaller batches",
        )


def openapi_body(model: str) -> JsonObject:
    """The OpenAPI request body of a route that reads the body itself (the component is the
    served contract's model, added by the app's OpenAPI document)."""
    schema: JsonObject = {"$ref": f"#/components/schemas/{model}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def is_json(content_type: str) -> bool:
    if content_type == "application/json":  # what nearly every client sends
        return True
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def content_type_of(request: Request) -> str:
    # Straight from the ASGI headers: request.headers would build a Headers object first.
    for name, value in request.scope["headers"]:
        if name == b"content-type":
            return value.decode("latin-1")
    return ""


async def json_body(request: Request, batch: bool = False) -> bytes:
    """The request's body, once the checks every prediction route shares have passed."""
    body = await request.body()
    content_type = content_type_of(request)
    if not is_json(content_type):
        # Only JSON: a browser sends a cross-site form or text/plain without a CORS preflight.
        raise HTTPException(
            415,
            "send the body as JSON with the header Content-Type: application/json "
            f"(got {'Content-Type: ' + content_type if content_type else 'no Content-Type'})",
        )
    if not body or body.isspace():
        wanted = '{"records": [...]}' if batch else "with the model's input fields"
        # The same shape as every other 422: a list of field errors.
        raise HTTPException(
            422,
            [
                {
                    "field": "body",
                    "value": None,
                    "message": f"the request body is empty: send a JSON object {wanted}",
                    "type": "missing",
                }
            ],
        )
    return body


def validated(body: bytes, model: type[BaseModel], contract: Contract | None) -> Any:
    """`body` as `model` (one of the contract's), or the 4xx that says what is wrong with it."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RecordValidationError(errors, body, contract) from None


def record_row(body: bytes, contract: Contract) -> tuple[list[float], list[str], str | None]:
    """One record's row, its unknown fields and its site: the fast check, else the contract's
    model (which words any error)."""
    checked = checked_record(body, contract)
    if checked is None:
        request = validated(body, contract.request, contract)
        row = contract.record_row(request)
        return row, contract.imputed(row), request.site
    return checked


def site_or_default(service: Service, site: str | None) -> str | None:
    """The request's site, else the deployment's (HEARTML_SERVE_SITE), else None."""
    return service.settings.serve_site if site is None else site


def service_of(request: Request) -> Service:
    # Not the ServiceDep dependency here: solving it costs ~10 µs on every prediction.
    service: Service = request.app.state.service
    return service


def served_model(service: Service, body: bytes, batch: bool = False) -> LoadedModel:
    """The model that scores this request (taken once: a hot swap mid-request does not mix two
    contracts). Without one, bad input is still refused (422, by the project's spec, or as
    "not an object of numbers") before the 503 that says no model is loaded."""
    model = service.store.current
    if model is None:
        contract = service.store.configured_contract()
        if contract is not None:
            validated(body, contract.batch if batch else contract.request, contract)
        else:
            _, request_model, batch_model = generic_models()
            validated(body, batch_model if batch else request_model, None)
        model = service.store.require()  # ModelNotReady: the 503 with the reason
    return model
