"""The way to MLflow: imported lazily, short timeouts, and its failures as one-line TrackingErrors.

Nothing here runs at import: mlflow (about 2 s to import) is loaded by the first call.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from heartml.errors import TrackingError
from heartml.settings import Settings

# MlflowException.error_code values we act on (mlflow.protos.databricks_pb2 names).
RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"

# Transport failures reach us as text (requests/urllib3 inside an MlflowException message, with
# no code of their own); what each means to a user.
_TRANSPORT_FAILURES = (
    ("Connection refused", "no server answers (connection refused)"),
    ("Name or service not known", "unknown host"),
    ("Temporary failure in name resolution", "unknown host"),
    ("timed out", "no answer within the timeout (MLFLOW_HTTP_REQUEST_TIMEOUT)"),
    ("Connection aborted", "the server dropped the connection"),
    ("Connection reset", "the server dropped the connection"),
    ("RemoteDisconnected", "the server dropped the connection"),
    ("too many 5", "the server kept answering with errors (HTTP 5xx)"),
)


def mlflow_module() -> Any:
    import mlflow

    return mlflow


def error_code(exc: BaseException) -> str | None:
    """The MLflow error code of an exception (None if it is not an MlflowException)."""
    from mlflow.exceptions import MlflowException

    return str(exc.error_code) if isinstance(exc, MlflowException) else None


def describe(exc: BaseException) -> str:
    """One short line: a transport failure by its meaning, anything else by its first line."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    everything = " ".join(str(e) for e in chain)
    for marker, meaning in _TRANSPORT_FAILURES:
        if marker in everything:
            return meaning
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


@contextmanager
def tracking_errors(what: str, uri: str) -> Iterator[None]:
    """Any failure inside becomes one TrackingError line naming the operation and the server."""
    try:
        yield
    except TrackingError:
        raise
    except Exception as exc:
        raise TrackingError(f"{what} failed on {uri}: {describe(exc)}") from exc


_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def configure(settings: Settings) -> Any:
    """Point MLflow at the settings' store with short timeouts; return a client (not yet used)."""
    # Short timeouts and few retries: an unreachable server is an error in seconds, not minutes.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(settings.mlflow_timeout_s)))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # urllib3 warns on every retry; the failure, if it comes, is reported once by TrackingError.
    urllib3_log = logging.getLogger("urllib3.connectionpool")
    if urllib3_log.getEffectiveLevel() > logging.DEBUG:
        urllib3_log.setLevel(logging.ERROR)
    mlflow = mlflow_module()
    uri = settings.tracking_uri
    # The fluent API (runs, model loading) reads the process-wide URIs; the client is explicit.
    # MLflow also writes them into os.environ, where they would reach every later Settings and
    # child process of a program that uses heartml as a library: the environment is put back.
    saved = {name: os.environ.get(name) for name in _URI_VARIABLES}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
