"""POST /predict, /predict/batch and /predict/explain.

These routes read their JSON body themselves and validate it with pydantic's own JSON parser
(`model_validate_json`): measured on this service, FastAPI's body parameter (stdlib json, then
Python-object validation) and a dependency cost about 30 µs per request, as much as the ONNX
call. The OpenAPI document still describes the bodies (see `openapi_body`), and validation
errors go through the same handler as FastAPI's own.

Each body is validated with the input contract of the model that scores it (its package's
dataset spec, heartml.serving.contract): the model is taken from the store once, first, so a
hot swap to another contract mid-request cannot validate with one and score with the other.
Every answer names the fields the model imputed (`imputed_fields`) and, if any, says in `note`
that the estimate is less certain.

Explanations are model-agnostic occlusion on the ONNX graph: for each of the k raw features,
the record's value is replaced by a typical training value (the median of a numeric feature,
the most frequent code of a coded one, from the package's reference_statistics.json) and the
change in probability is that feature's contribution: P(record) - P(record with the feature at
its typical value). Positive pushed this prediction up, negative pushed it down. One ONNX call
scores the record and the k variants (k + 1 rows). Contributions are local and need not add up
to anything; correlated features (age and maximum heart rate) share credit unevenly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from heartml.documents.base import JsonObject
from heartml.serving.contract import Contract
from heartml.serving.errors import (
    JSONBytesResponse,
    RecordValidationError,
    json_response,
    request_id,
)
from heartml.serving.fast_check import batch_rows, checked_record
from heartml.serving.loaded_model import LoadedModel
from heartml.serving.middleware import MODEL_VERSION_KEY
from heartml.serving.requests import BATCH_MODEL, REQUEST_MODEL, generic_models
from heartml.serving.schemas import (
    BatchPredictionResponse,
    ErrorResponse,
    ExplanationResponse,
    PredictionResponse,
    ValidationErrorResponse,
)
from heartml.serving.service import Service

router = APIRouter(tags=["prediction"])

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
EXPLANATION_METHOD = (
    "occlusion: each raw feature replaced by its training median (numeric) or most frequent "
    "code (coded); contribution = P(record) - P(record with that feature replaced)"
)


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


@router.post(
    "/predict",
    response_model=PredictionResponse,
    responses=ERRORS,
    openapi_extra=openapi_body(REQUEST_MODEL),
)
async def predict(request: Request) -> Response:
    """Score one record (the served model's input fields; see /model/info), optionally for a
    site: its calibration, if any, is applied (see `calibration` in the answer)."""
    body = await json_body(request)
    service = service_of(request)
    model = served_model(service, body)
    contract = model.contract
    # The fast check accepts only valid records; anything else gets the contract model's verdict.
    row, imputed, site = record_row(body, contract)
    site = site_or_default(service, site)
    rid = request_id(request)
    probability, prediction, raw, entry = await service.score_one(model, row, rid, site)
    request.scope[MODEL_VERSION_KEY] = model.version
    return JSONBytesResponse(
        orjson.dumps(
            {
                "prediction": prediction,
                "probability": probability,
                "risk_level": contract.risk_level(probability),
                "imputed_fields": imputed,
                "note": contract.note(imputed),
                "model_name": model.name,
                "model_version": model.version,
                "request_id": rid,
                "site": site,
                "calibration": None if entry is None else entry.body(raw),
            }
        )
    )


@router.post(
    "/predict/batch",
    response_model=BatchPredictionResponse,
    responses=ERRORS,
    openapi_extra=openapi_body(BATCH_MODEL),
)
async def predict_batch(request: Request) -> Response:
    """Score many records at once: one result per record, in order; a top-level `site`
    applies that site's calibration to every record."""
    body = await json_body(request, batch=True)
    service = service_of(request)
    model = served_model(service, body, batch=True)
    contract = model.contract
    checked = batch_rows(body, contract)
    if checked is None:
        batch = validated(body, contract.batch, contract)
        row_list, site = [contract.record_row(record) for record in batch.records], batch.site
    else:
        row_list, site = checked
    check_batch_limit(service, len(row_list))
    site = site_or_default(service, site)
    entry = service.site_entry(model, site)
    rid = request_id(request)
    rows = np.array(row_list, dtype=np.float64)
    if len(rows) > THREADPOOL_ROWS:
        raw = await run_in_threadpool(model.probabilities, rows)
    else:
        raw = model.probabilities(rows)
    probabilities, predictions = service.record(model, rows, raw, rid, entry)
    service.metrics.batch_size.observe(len(rows))
    request.scope[MODEL_VERSION_KEY] = model.version
    results = []
    for row, p, label, own in zip(
        row_list, probabilities.tolist(), predictions.tolist(), raw.tolist(), strict=True
    ):
        imputed = contract.imputed(row)
        results.append(
            {
                "prediction": label,
                "probability": p,
                "risk_level": contract.risk_level(p),
                "imputed_fields": imputed,
                "note": contract.note(imputed),
                "calibration": None if entry is None else entry.body(own),
            }
        )
    return json_response(
        {
            "results": results,
            "count": len(rows),
            "model_name": model.name,
            "model_version": model.version,
            "request_id": rid,
            "site": site,
        }
    )


@router.post(
    "/predict/explain",
    response_model=ExplanationResponse,
    responses=ERRORS,
    openapi_extra=openapi_body(REQUEST_MODEL),
)
async def explain(request: Request) -> Response:
    """Score one record and say which features pushed the probability up or down (with a site,
    on the site's calibrated probabilities)."""
    body = await json_body(request)
    service = service_of(request)
    model = served_model(service, body)
    contract = model.contract
    listed, imputed, site = record_row(body, contract)
    site = site_or_default(service, site)
    entry = service.site_entry(model, site)
    rid = request_id(request)
    row = np.array(listed, dtype=np.float64)
    count = len(row)
    rows = np.repeat(row[None, :], count + 1, axis=0)
    rows[np.arange(count) + 1, np.arange(count)] = model.baseline
    raw = model.probabilities(rows)
    # Contributions in the probability the answer gives (the calibration is monotone).
    probabilities = raw if entry is None else entry.apply(raw)
    _, decided = service.record(model, rows[:1], raw[:1], rid, entry)
    probability, prediction = float(probabilities[0]), int(decided[0])
    request.scope[MODEL_VERSION_KEY] = model.version
    deltas = probability - probabilities[1:]
    names, columns = contract.names, contract.columns
    contributions = [
        {
            "feature": names[i],
            "label": columns[names[i]].label,
            "value": None if np.isnan(row[i]) else float(row[i]),
            "reference_value": float(model.baseline[i]),
            "contribution": float(deltas[i]),
        }
        for i in np.argsort(-np.abs(deltas), kind="stable").tolist()
    ]
    return json_response(
        {
            "prediction": prediction,
            "probability": probability,
            "risk_level": contract.risk_level(probability),
            "imputed_fields": imputed,
            "note": contract.note(imputed),
            "model_name": model.name,
            "model_version": model.version,
            "request_id": rid,
            "site": site,
            "calibration": None if entry is None else entry.body(float(raw[0])),
            "method": EXPLANATION_METHOD,
            "contributions": contributions,
        }
    )
