"""MLflow's scoring protocol, as `mlflow models serve` has it: POST /invocations, GET /ping,
GET /version (heartml.serving.mlflow_scoring reads the payloads).

Lean like /predict (routes/predict.py, routes/bodies.py): the body is read here, parsed with
orjson, checked with the fast check, and a single record joins /predict's micro-batch. Errors
answer in MLflow's envelope (`{"error_code", "message"}`, heartml.serving.envelopes) with this
project's words: 400 BAD_REQUEST for the payload's shape, 400 INVALID_PARAMETER_VALUE for a
refused column or value, 413 over the limits, 415 for another Content-Type (MLflow answers
text/plain there), 503 TEMPORARILY_UNAVAILABLE before a model is loaded.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from heartml import __version__
from heartml.serving.envelopes import MLFLOW_INVALID_VALUE
from heartml.serving.errors import JSONBytesResponse, error_response, request_id
from heartml.serving.middleware import MODEL_VERSION_KEY
from heartml.serving.mlflow_scoring import (
    CSV_TYPE,
    UnsupportedMediaType,
    csv_records,
    json_records,
    media_type,
)
from heartml.serving.protocol_schemas import MLFLOW_REQUEST, MlflowError, MlflowPredictions
from heartml.serving.routes.bodies import check_batch_limit, content_type_of, service_of
from heartml.serving.rows import InputError, record_rows, score_rows

router = APIRouter(tags=["MLflow scoring protocol"])

_PING = b"\n"  # MLflow's body, with its Content-Type
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": MlflowError, "description": "Malformed payload, or a refused column or value"},
    413: {"model": MlflowError, "description": "Body or batch over the configured limit"},
    415: {"model": MlflowError, "description": "Neither application/json nor text/csv"},
    503: {"model": MlflowError, "description": "No model loaded yet"},
}


def _refused(request: Request, exc: InputError) -> Response:
    status = 415 if isinstance(exc, UnsupportedMediaType) else 400
    code = MLFLOW_INVALID_VALUE if exc.value_problem else None
    return error_response(request, status, str(exc), code=code)


@router.post(
    "/invocations",
    response_model=MlflowPredictions,
    responses=ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{MLFLOW_REQUEST}"}},
            },
        }
    },
)
async def invocations(request: Request) -> Response:
    """Score records sent in one of MLflow's formats; `{"predictions": [[P(0), P(1)], ...]}`, as
    `mlflow models serve` answers for the same registered version. Also `Content-Type: text/csv`:
    a header line with the column names, then one line per record (not in the schema below:
    any text is a string, and only some strings are CSV of valid records)."""
    body = await request.body()
    service = service_of(request)
    try:
        read = csv_records if media_type(content_type_of(request)) == CSV_TYPE else json_records
        model = service.store.current
        if model is None:
            # Without a model, bad input is still refused by the project's spec, before the 503.
            configured = service.store.configured_contract()
            if configured is not None:
                record_rows(read(body, configured), configured)
            model = service.store.require()  # ModelNotReady: the 503 with the reason
        records = read(body, model.contract)
        check_batch_limit(service, len(records.items))
        rows = record_rows(records, model.contract)
    except InputError as exc:
        return _refused(request, exc)
    probabilities, _ = await score_rows(service, model, rows, request_id(request))
    request.scope[MODEL_VERSION_KEY] = model.version
    return JSONBytesResponse(orjson.dumps({"predictions": [[1.0 - p, p] for p in probabilities]}))


@router.get(
    "/ping",
    response_class=Response,
    responses={
        200: {"content": {"application/json": {}}, "description": "A model is loaded"},
        503: {"model": MlflowError, "description": "No model loaded yet"},
    },
)
async def ping(request: Request) -> Response:
    """MLflow's health check: 200 (body: a newline) once a model is loaded."""
    service_of(request).store.require()
    return Response(_PING, media_type="application/json")


@router.get(
    "/version",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def version() -> Response:
    """The server's version (heartml's; MLflow's server answers with MLflow's)."""
    return Response(__version__, media_type="text/plain")
