"""One pure ASGI middleware for what every request needs: a request id, the body size limit,
latency and status metrics, the access log line, and a 500 without internals.

Pure ASGI (not BaseHTTPMiddleware) and one layer instead of four: each layer costs
microseconds on every request, and /predict is meant to run near the framework's own speed.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from heartml.serving.envelopes import error_body
from heartml.serving.logging import REQUEST_ID
from heartml.serving.metrics import ServiceMetrics

log = logging.getLogger("heartml.serving")
ACCESS_LOGGER = "heartml.serving.access"
access_log = logging.getLogger(ACCESS_LOGGER)

REQUEST_ID_KEY = "heartml.request_id"  # in the ASGI scope
MODEL_VERSION_KEY = "heartml.model_version"  # set by the prediction routes, for the access log
_SAFE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


class BodyTooLarge(HTTPException):
    """An HTTPException, so that FastAPI's body reader passes it on (it turns others into 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"request body is larger than the limit of {limit} bytes (HEARTML_SERVE_MAX_BODY_BYTES)",
        )


def new_request_id() -> str:
    return os.urandom(12).hex()


async def send_json(send: Send, status: int, content: dict[str, Any], request_id: str) -> None:
    body = orjson.dumps(content)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class ServiceMiddleware:
    def __init__(
        self, app: ASGIApp, *, metrics: ServiceMetrics, max_body_bytes: int, access: bool
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id: str | None = None
        content_length: int | None = None
        for name, value in scope["headers"]:
            if name == b"x-request-id" and _SAFE_REQUEST_ID.fullmatch(value):
                request_id = value.decode()  # the caller's id, so that logs can be joined
            elif name == b"content-length" and value.isdigit():
                content_length = int(value)
        if request_id is None:
            request_id = new_request_id()
        scope[REQUEST_ID_KEY] = request_id
        token = REQUEST_ID.set(request_id)
        header = (b"x-request-id", request_id.encode())
        status = 500
        response_started = False
        limit = self.max_body_bytes
        received = 0

        async def receive_limited() -> Message:
            # Bodies without a Content-Length (chunked) are counted as they arrive.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            downstream: Receive
            if content_length is None:
                downstream = receive_limited
            elif content_length > limit:
                raise BodyTooLarge(limit)
            else:  # the HTTP server delivers exactly Content-Length bytes: nothing to count
                downstream = receive
            await self.app(scope, downstream, send_with_id)
        except BodyTooLarge as exc:
            status = 413
            if not response_started:
                content = error_body(scope["path"], 413, exc.detail, request_id)
                await send_json(send, 413, content, request_id)
        except Exception:
            status = 500
            log.exception("unhandled error", extra={"path": scope["path"]})
            if not response_started:
                content = error_body(scope["path"], 500, "internal error", request_id)
                await send_json(send, 500, content, request_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"  # bounded label values
            self.metrics.observe_request(endpoint, scope["method"], status, elapsed)
            if self.access and access_log.isEnabledFor(logging.INFO):
                # makeRecord + handle: Logger.info would also walk the stack for the caller's
                # file and line on every request, which an access line does not need.
                access_log.handle(
                    access_log.makeRecord(
                        ACCESS_LOGGER,
                        logging.INFO,
                        __file__,
                        0,
                        "request",
                        (),
                        None,
                        extra={
                            "request_id": request_id,
                            "method": scope["method"],
                            "path": scope["path"],
                            "status": status,
                            "latency_ms": round(elapsed * 1000, 3),
                            "model_version": scope.get(MODEL_VERSION_KEY),
                        },
                    )
                )
            REQUEST_ID.reset(token)
