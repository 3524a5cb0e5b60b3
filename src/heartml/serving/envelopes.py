"""The error body of each protocol the service speaks, chosen by the request's path.

- This project's own routes: `{"detail": ..., "request_id"}` (heartml.serving.errors).
- MLflow's scoring protocol (`/invocations`, `/ping`, `/version`): MLflow's envelope,
  `{"error_code": "BAD_REQUEST", "message": ...}`, with MLflow's code for the HTTP status
  (its `mlflow.exceptions` table, copied here: the server does not import MLflow).
- The Open Inference Protocol (`/v2...`): `{"error": ...}`.

Every body also carries the request id (as the X-Request-ID header does), so that a client's
report can be joined with the log line; the protocols' clients read only their own fields.
Used by the exception handlers and by the middleware (413 before a route runs, 500).
"""

from __future__ import annotations

from typing import Any, TypedDict

from heartml.errors import FieldProblem

MLFLOW_PATHS = frozenset({"/invocations", "/ping", "/version"})
OPEN_INFERENCE_PREFIX = "/v2"
# MLflow's error code for an HTTP status (mlflow.exceptions.HTTP_STATUS_TO_ERROR_CODE); a status
# MLflow has no code for is BAD_REQUEST (4xx) or INTERNAL_ERROR (5xx).
MLFLOW_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    409: "RESOURCE_CONFLICT",
    429: "REQUEST_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
    501: "NOT_IMPLEMENTED",
    503: "TEMPORARILY_UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
# What MLflow answers for a value its model signature refuses (a missing column, a bad type).
MLFLOW_INVALID_VALUE = "INVALID_PARAMETER_VALUE"


class MlflowErrorBody(TypedDict):
    """MLflow's envelope (documented as protocol_schemas.MlflowError)."""

    error_code: str
    message: str
    request_id: str


class InferenceErrorBody(TypedDict):
    """The Open Inference Protocol's (documented as protocol_schemas.InferenceError)."""

    error: str
    request_id: str


class ErrorBody(TypedDict):
    """This project's (documented as schemas.ErrorResponse and ValidationErrorResponse):
    `detail` is a message, or the refused values (heartml.errors.FieldProblem)."""

    detail: str | list[FieldProblem]
    request_id: str


def protocol_of(path: str) -> str:
    """ "mlflow", "open_inference" or "heartml": whose error format a path answers in."""
    if path in MLFLOW_PATHS:
        return "mlflow"
    if path == OPEN_INFERENCE_PREFIX or path.startswith(OPEN_INFERENCE_PREFIX + "/"):
        return "open_inference"
    return "heartml"


def mlflow_code(status: int) -> str:
    return MLFLOW_CODES.get(status, "INTERNAL_ERROR" if status >= 500 else "BAD_REQUEST")


def as_text(detail: Any) -> str:
    """A detail as one message: this project's 422 lists become `field: message; ...`."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list) and all(isinstance(item, dict) for item in detail):
        return "; ".join(
            str(item.get("message"))
            if str(item.get("message", "")).startswith(str(item.get("field")))
            else f"{item.get('field')}: {item.get('message')}"
            for item in detail
        )
    return str(detail)


def error_body(
    path: str,
    status: int,
    detail: str | list[FieldProblem],
    request_id: str,
    code: str | None = None,
) -> MlflowErrorBody | InferenceErrorBody | ErrorBody:
    """The error body for `path`'s protocol; `code` overrides MLflow's code for the status."""
    protocol = protocol_of(path)
    if protocol == "mlflow":
        return {
            "error_code": code or mlflow_code(status),
            "message": as_text(detail),
            "request_id": request_id,
        }
    if protocol == "open_inference":
        return {"error": as_text(detail), "request_id": request_id}
    return {"detail": detail, "request_id": request_id}
