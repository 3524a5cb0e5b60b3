"""Error responses: every 4xx names the field, the value and what is allowed; a 5xx says nothing
about internals. Each error body carries the request id, which is also in the log line.

A value the served contract refuses is described in the words of heartml.spec.rules (the
message its validator raised), so every door says the same thing about the same value."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic_core import ErrorDetails
from starlette.exceptions import HTTPException

from heartml.errors import FieldProblem
from heartml.serving.contract import Contract
from heartml.serving.envelopes import error_body
from heartml.serving.middleware import REQUEST_ID_KEY
from heartml.serving.model_store import ModelNotReady
from heartml.serving.requests import allowed_text
from heartml.sites import SITE_ERROR

BATCH_PATH = "/predict/batch"
# The rules' problems (heartml.spec.rules): their message is the API's message, as it is.
RULE_PROBLEMS = frozenset({"not_a_number", "not_allowed", "required"})


class RecordValidationError(RequestValidationError):
    """A body the served contract refuses; carries the contract, whose fields name the errors."""

    def __init__(self, errors: Any, body: Any, contract: Contract | None) -> None:
        super().__init__(errors, body=body)
        self.contract = contract


def request_id(request: Request) -> str:
    return str(request.scope.get(REQUEST_ID_KEY, ""))


class JSONBytesResponse(Response):
    """A response whose body is JSON already serialised (orjson): Starlette's Response without
    its per-request header building when there are no extra headers."""

    media_type = "application/json"

    def __init__(
        self, body: bytes, status_code: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        if headers:
            super().__init__(body, status_code, headers)
            return
        self.status_code = status_code
        self.background = None
        self.body = body
        self.raw_headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
        ]


def json_response(
    content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return JSONBytesResponse(orjson.dumps(content), status_code, headers)


def error_response(
    request: Request,
    status_code: int,
    detail: str | list[FieldProblem],
    headers: Mapping[str, str] | None = None,
    code: str | None = None,
) -> Response:
    """An error in the format of the protocol the path speaks (heartml.serving.envelopes)."""
    body = error_body(request.scope["path"], status_code, detail, request_id(request), code)
    return json_response(body, status_code, headers)


# orjson writes integers of at most 64 bits (it raises on longer ones: a 500 for a 422).
_JSON_INTEGERS = range(-(1 << 63), 1 << 64)


def _is_long_int(value: Any) -> bool:
    return isinstance(value, int) and value not in _JSON_INTEGERS


def _shown(value: Any) -> Any:
    """The received value as JSON can carry it (NaN and Infinity as text, containers summarised,
    an integer beyond 64 bits as its digits)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if _is_long_int(value):
        try:
            digits = str(value)
        except ValueError:  # more digits than int -> str converts (sys.int_info)
            return "<an integer too long to show>"
        return digits if len(digits) <= 80 else digits[:80] + "…"
    if isinstance(value, dict | list):
        return f"<a JSON {'object' if isinstance(value, dict) else 'array'} of {len(value)} items>"
    if isinstance(value, str) and len(value) > 80:
        return value[:80] + "…"
    return value


def _as_text(value: Any) -> str:
    """The received value for a message: JSON text, or the words of `_shown`."""
    shown = _shown(value)
    if (
        isinstance(value, dict | list)
        or (isinstance(value, float) and not math.isfinite(value))
        or _is_long_int(value)
    ):
        return str(shown)
    return orjson.dumps(shown).decode()


def describe_error(
    error: ErrorDetails, batch: bool, contract: Contract | None = None
) -> FieldProblem:
    """One pydantic error -> {field, value, message, type} in the API's own words."""
    loc = [part for part in error["loc"] if part != "body"]
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    name = loc[-1] if loc and isinstance(loc[-1], str) else None
    kind = str(error["type"])
    value = None if kind == "missing" else error.get("input")
    in_record = not batch or (len(loc) >= 2 and loc[0] == "records")
    columns = contract.columns if contract is not None else {}
    column = columns.get(name) if name and in_record else None
    record_fields = contract.fields_text if contract is not None else "of the model's inputs"
    title = contract.spec.record_title if contract is not None else "input"

    if kind == "missing" and column is not None:
        message = f"{path} is missing: send {allowed_text(column)}"
    elif kind == "extra_forbidden":
        accepted = record_fields if in_record else "records"
        message = f"{path} is not an accepted field; the accepted fields are: {accepted}"
    elif (column is not None and kind in RULE_PROBLEMS) or kind == SITE_ERROR:
        message = str((error.get("ctx") or {}).get("message") or error.get("msg"))
    elif column is not None:
        message = f"{path} must be {allowed_text(column)}; got {_as_text(value)}"
    elif kind in ("model_type", "model_attributes_type", "dict_type") and (in_record and loc):
        message = f"{path} must be a JSON object with the fields {record_fields}"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        wanted = '{"records": [...]}' if batch else f"with the fields {record_fields}"
        message = f"the request body must be a JSON object {wanted}"
    elif name == "records":
        message = (
            f"records must be a non-empty JSON array of {title} records; got {_as_text(value)}"
        )
    else:
        message = f"{path or 'body'}: {error.get('msg', 'invalid')}"
    return {"field": path or "body", "value": _shown(value), "message": message, "type": kind}


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    for error in errors:
        if error["type"] == "json_invalid":
            reason = (error.get("ctx") or {}).get("error") or error.get("msg", "")
            return error_response(request, 400, f"the request body is not valid JSON: {reason}")
    batch = request.url.path == BATCH_PATH
    contract = exc.contract if isinstance(exc, RecordValidationError) else None
    return error_response(request, 422, [describe_error(e, batch, contract) for e in errors])


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(request, exc.status_code, exc.detail, exc.headers)


async def not_ready_handler(request: Request, exc: Exception) -> Response:
    return error_response(request, 503, f"no model loaded: {exc}", {"Retry-After": "5"})


EXCEPTION_HANDLERS = {
    RequestValidationError: validation_error_handler,
    HTTPException: http_error_handler,
    ModelNotReady: not_ready_handler,
}
