"""The Open Inference Protocol (KServe v2) over HTTP: health, server and model metadata, model
readiness and inference (heartml.serving.open_inference reads and writes the payloads).

The served model is the one model here: its registered name and version are the protocol's
model name and version, and any other name (or version) is a 404 naming it. Errors answer as
the protocol says, `{"error": "..."}`: 400 for a malformed request or a refused value (with
this project's words), 404 for another model, 413 over the limits, 503 before a model is loaded
(as KServe's own server answers a model that is not ready). Inference is as lean as /predict:
a single row joins /predict's micro-batch.
"""

from __future__ import annotations

from typing import Any, TypedDict

from fastapi import APIRouter, HTTPException, Request, Response

from heartml import __version__
from heartml.documents.base import JsonObject
from heartml.onnx_names import INPUT_NAME
from heartml.serving.envelopes import OPEN_INFERENCE_PREFIX
from heartml.serving.errors import (
    JSONBytesResponse,
    error_response,
    json_response,
    request_id,
)
from heartml.serving.loaded_model import LoadedModel
from heartml.serving.middleware import MODEL_VERSION_KEY
from heartml.serving.open_inference import EXTENSIONS, header_length, parse_request
from heartml.serving.open_inference_response import encode_response
from heartml.serving.protocol_schemas import (
    INFERENCE_REQUEST,
    OUTPUT_DATATYPES,
    InferenceError,
    InferenceResponse,
    ModelMetadata,
    ModelReady,
    ServerLive,
    ServerMetadata,
    ServerReady,
)
from heartml.serving.routes.bodies import check_batch_limit, content_type_of, service_of
from heartml.serving.rows import InputError, record_rows, score_rows
from heartml.serving.service import Service

router = APIRouter(prefix=OPEN_INFERENCE_PREFIX, tags=["Open Inference Protocol (KServe v2)"])

SERVER_NAME = "heartml"
PLATFORM = "onnxruntime_onnx"
NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"model": InferenceError, "description": "No model loaded yet"}
}
MODEL_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": InferenceError, "description": "Not the served model (or version)"},
    **NOT_READY,
}
INFER_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/octet-stream": {}},
        "description": "The inference response; with binary outputs, its JSON part (of "
        "Inference-Header-Content-Length bytes) followed by the tensors' bytes",
    },
    400: {"model": InferenceError, "description": "Malformed request, or a refused value"},
    413: {"model": InferenceError, "description": "Body or batch over the configured limit"},
    415: {"model": InferenceError, "description": "A form or text/plain body"},
    **MODEL_ERRORS,
}


def served(service: Service, name: str, version: str | None = None) -> LoadedModel:
    """The served model, if `name` (and `version`) are its; else a 404 naming them."""
    model = service.store.require()
    if name != model.name:
        raise HTTPException(
            404,
            f"model {name!r} is not served here; this server serves {model.name!r} "
            f"(version {model.version})",
        )
    if version is not None and version != model.version:
        raise HTTPException(
            404,
            f"version {version!r} of {name!r} is not served here; this server serves version "
            f"{model.version}",
        )
    return model


def _path_parameter(name: str) -> JsonObject:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _infer_extra(*parameters: str) -> JsonObject:
    # The path parameters are read from request.path_params, not declared as function
    # parameters (FastAPI would validate them on every request), and documented here instead.
    # With the router order in app.py: 185 -> 139 µs of CPU per single-row inference
    # in-process (benchmarks/bench_request_path.py, random forest; /predict: 99 µs).
    return {
        "parameters": [_path_parameter(name) for name in parameters],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{INFERENCE_REQUEST}"}
                }
            },
        },
    }


# The inference routes first: a request is matched against the routes in order.
@router.post(
    "/models/{name}/infer",
    response_model=InferenceResponse,
    responses=INFER_ERRORS,
    openapi_extra=_infer_extra("name"),
)
async def infer(request: Request) -> Response:
    """Score n rows: `probabilities` [n, 2] and `label` [n] (the decision at the package
    threshold), for a tensor `input` [n, k] or one tensor per column."""
    return await _infer(request, request.path_params["name"], None)


@router.post(
    "/models/{name}/versions/{version}/infer",
    response_model=InferenceResponse,
    responses=INFER_ERRORS,
    openapi_extra=_infer_extra("name", "version"),
)
async def infer_version(request: Request) -> Response:
    """As /v2/models/{name}/infer, for the served version."""
    path = request.path_params
    return await _infer(request, path["name"], path["version"])


# The Content-Types a browser sends cross-site without a CORS preflight: never an inference
# request (tritonclient sends none; others application/json or application/octet-stream).
FORM_TYPES = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")


@router.get("", response_model=ServerMetadata)
async def server_metadata() -> Response:
    """The server's name, version and protocol extensions."""
    return json_response({"name": SERVER_NAME, "version": __version__, "extensions": EXTENSIONS})


@router.get("/health/live", response_model=ServerLive)
async def server_live() -> Response:
    """Liveness: answers as long as the event loop does."""
    return json_response({"live": True})


@router.get("/health/ready", response_model=ServerReady, responses=NOT_READY)
async def server_ready(request: Request) -> Response:
    """Readiness: 200 once a verified model is loaded, 503 with the reason before."""
    service_of(request).store.require()
    return json_response({"ready": True})


class TensorBody(TypedDict):
    name: str
    datatype: str
    shape: list[int]


class MetadataBody(TypedDict):
    """GET /v2/models/{name} (documented as protocol_schemas.ModelMetadata)."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorBody]
    outputs: list[TensorBody]
    parameters: dict[str, str | float]  # columns (comma-separated), threshold


def _metadata(model: LoadedModel) -> MetadataBody:
    columns = model.contract.names
    return {
        "name": model.name,
        "versions": [model.version],
        "platform": PLATFORM,
        "inputs": [{"name": INPUT_NAME, "datatype": "FP64", "shape": [-1, len(columns)]}],
        "outputs": [
            {"name": name, "datatype": datatype, "shape": [-1, 2] if datatype == "FP64" else [-1]}
            for name, datatype in OUTPUT_DATATYPES.items()
        ],
        "parameters": {"columns": ",".join(columns), "threshold": model.threshold},
    }


@router.get("/models/{name}", response_model=ModelMetadata, responses=MODEL_ERRORS)
async def model_metadata(request: Request, name: str) -> Response:
    """The model's name, version, platform, input tensor and output tensors."""
    return json_response(_metadata(served(service_of(request), name)))


@router.get(
    "/models/{name}/versions/{version}", response_model=ModelMetadata, responses=MODEL_ERRORS
)
async def model_version_metadata(request: Request, name: str, version: str) -> Response:
    """As /v2/models/{name}, for the served version."""
    return json_response(_metadata(served(service_of(request), name, version)))


@router.get("/models/{name}/ready", response_model=ModelReady, responses=MODEL_ERRORS)
async def model_ready(request: Request, name: str) -> Response:
    """200 when the named model is loaded and can be scored."""
    model = served(service_of(request), name)
    return json_response({"name": model.name, "ready": True})


@router.get(
    "/models/{name}/versions/{version}/ready", response_model=ModelReady, responses=MODEL_ERRORS
)
async def model_version_ready(request: Request, name: str, version: str) -> Response:
    """As /v2/models/{name}/ready, for the served version."""
    model = served(service_of(request), name, version)
    return json_response({"name": model.name, "ready": True})


async def _infer(request: Request, name: str, version: str | None) -> Response:
    body = await request.body()
    content_type = content_type_of(request)
    if content_type and content_type.partition(";")[0].strip().lower() in FORM_TYPES:
        raise HTTPException(
            415,
            "send the inference request as application/json (or application/octet-stream with "
            f"binary tensor data), not {content_type}",
        )
    service = service_of(request)
    model = served(service, name, version)
    contract = model.contract
    try:
        parsed = parse_request(body, header_length(request.scope["headers"]), contract)
        check_batch_limit(service, len(parsed.records.items))
        rows = record_rows(parsed.records, contract)
    except InputError as exc:
        return error_response(request, 400, str(exc))
    probabilities, labels = await score_rows(service, model, rows, request_id(request))
    request.scope[MODEL_VERSION_KEY] = model.version
    content, json_length = encode_response(model.name, model.version, parsed, probabilities, labels)
    if json_length is None:
        return JSONBytesResponse(content)
    return Response(
        content,
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(json_length)},
    )
