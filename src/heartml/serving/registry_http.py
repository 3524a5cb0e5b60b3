"""Talking to an MLflow server without leaking its credentials: the URI as logs and errors show
it (`public_uri`), MLflow's credentials as request headers, the two failures of a registry call
and an answer or a transport failure in words (heartml.serving.registry_client makes the calls).

Credentials are MLflow's own variables (MLFLOW_TRACKING_USERNAME/PASSWORD as basic auth, else
MLFLOW_TRACKING_TOKEN as a bearer token; user and password in the URI also work). Failures are
RegistryUnavailable (no answer: keep serving what we have) or RegistryError (an answer we cannot
use); their messages never carry the URI's credentials.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from heartml.errors import HeartmlError
from heartml.settings import Settings

HTTP_SCHEMES = ("http", "https")


class RegistryUnavailable(HeartmlError):
    """The registry did not answer (refused, timed out, kept failing with 5xx)."""


class RegistryError(HeartmlError):
    """The registry answered, but not with something we can use (auth, no package, bad data)."""


def public_uri(uri: str) -> str:
    """The URI without user and password (for logs and errors)."""
    parts = urllib.parse.urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit(parts._replace(netloc=f"***@{netloc}"))


def is_server_uri(uri: str) -> bool:
    return urllib.parse.urlsplit(uri).scheme in HTTP_SCHEMES


def auth_headers(settings: Settings) -> dict[str, str]:
    """MLflow's credentials, as MLflow sends them: basic auth wins over a token."""
    import base64

    user, password = settings.mlflow_tracking_username, settings.mlflow_tracking_password
    if user and password is not None:
        pair = f"{user}:{password.get_secret_value()}".encode()
        return {"Authorization": "Basic " + base64.standard_b64encode(pair).decode()}
    if settings.mlflow_tracking_token is not None:
        return {"Authorization": f"Bearer {settings.mlflow_tracking_token.get_secret_value()}"}
    return {}


def response_json(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def refusal_text(response: Any, body: dict[str, Any]) -> str:
    status = response.status_code
    if status in (401, 403):
        return (
            f"HTTP {status}: the server refused the credentials (MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN)"
        )
    message = str(body.get("message") or "").splitlines()[0:1]
    code = body.get("error_code")
    detail = f"{code}: {message[0]}" if code and message else (code or "")
    return f"HTTP {status}" + (f" ({detail[:200]})" if detail else "")


def transport_failure(exc: BaseException) -> str:
    text = f"{type(exc).__name__} {exc}"
    if "refused" in text.lower():
        return "no server answers (connection refused)"
    if "name or service not known" in text.lower() or "name resolution" in text.lower():
        return "unknown host"
    return f"the connection failed ({type(exc).__name__})"
