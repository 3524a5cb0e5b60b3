"""The registry client's transport (heartml.serving.registry_client): retries with backoff,
timeouts, and the credentials MLflow documents, over real HTTP to a local server that plays a
registry in trouble (failures on purpose: a real `mlflow server` cannot be made to answer 503
twice and then 200). The oracles are what that server saw: the number of requests, when they
came, and the Authorization header as RFC 7617 spells it (checked with the standard library).
The happy path against a real `mlflow server` is in tests/integration/test_registry_serving.py
and test_registry_auth.py.
"""

from __future__ import annotations

import base64
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from heartml.serving.registry_client import BACKOFF_S, RegistryClient
from heartml.serving.registry_http import RegistryError, RegistryUnavailable
from heartml.settings import Settings

pytestmark = pytest.mark.serving

MODEL = {"registered_model": {"name": "m", "aliases": [{"alias": "champion", "version": "3"}]}}


class Scripted:
    """Answers the n-th request with script[n] (the last entry repeats): an HTTP status, or
    None for "accept and never answer"; records each request's time and headers."""

    def __init__(self, script: list[int | None]) -> None:
        self.script = script
        self.seen: list[tuple[float, dict[str, str]]] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the stdlib's name
                scripted.seen.append((time.monotonic(), dict(self.headers)))
                status = scripted.script[min(len(scripted.seen), len(scripted.script)) - 1]
                if status is None:
                    time.sleep(5)
                    return
                body = MODEL if status == 200 else {"error_code": "TEMPORARILY_UNAVAILABLE"}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted() -> Iterator[Callable[[list[int | None]], Scripted]]:
    servers: list[Scripted] = []

    def start(script: list[int | None]) -> Scripted:
        servers.append(Scripted(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_a_5xx_is_retried_with_doubling_backoff(scripted: Callable[..., Scripted]) -> None:
    server = scripted([503, 502, 200])
    client = RegistryClient(server.url, timeout_s=2, retries=2)
    assert client.aliases("m") == {"champion": "3"}
    times = [t for t, _ in server.seen]
    assert len(times) == 3
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= BACKOFF_S and gaps[1] >= 2 * BACKOFF_S, gaps


def test_retries_used_up_is_unavailable_naming_the_failure(
    scripted: Callable[..., Scripted],
) -> None:
    server = scripted([503])
    client = RegistryClient(server.url, timeout_s=2, retries=2)
    with pytest.raises(RegistryUnavailable, match=r"HTTP 503 \(3 attempts\)"):
        client.aliases("m")
    assert len(server.seen) == 3


def test_a_refusal_is_an_answer_not_retried(scripted: Callable[..., Scripted]) -> None:
    server = scripted([401])
    client = RegistryClient(server.url, timeout_s=2, retries=2)
    with pytest.raises(RegistryError, match="refused the credentials") as caught:
        client.aliases("m")
    assert not isinstance(caught.value, RegistryUnavailable)
    assert len(server.seen) == 1


def test_a_silent_server_times_out_per_attempt(scripted: Callable[..., Scripted]) -> None:
    server = scripted([None])
    client = RegistryClient(server.url, timeout_s=0.3, retries=1)
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable, match="no answer within the timeout"):
        client.aliases("m")
    took = time.monotonic() - started
    assert len(server.seen) == 2
    assert 2 * 0.3 + BACKOFF_S <= took < 4.0, took  # two timeouts and one pause, not 5 s each


def test_nobody_listening_is_unavailable() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = RegistryClient(f"http://127.0.0.1:{port}", timeout_s=1, retries=0)
    with pytest.raises(RegistryUnavailable, match="connection refused"):
        client.aliases("m")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"MLFLOW_TRACKING_USERNAME": "ada", "MLFLOW_TRACKING_PASSWORD": "pä:ss"},
            "Basic " + base64.b64encode("ada:pä:ss".encode()).decode(),
        ),
        ({"MLFLOW_TRACKING_TOKEN": "tok-123"}, "Bearer tok-123"),
        (  # MLflow's rule: user and password win over a token
            {
                "MLFLOW_TRACKING_USERNAME": "ada",
                "MLFLOW_TRACKING_PASSWORD": "pw",
                "MLFLOW_TRACKING_TOKEN": "tok-123",
            },
            "Basic " + base64.b64encode(b"ada:pw").decode(),
        ),
        ({}, None),
    ],
    ids=["basic", "token", "basic-wins", "none"],
)
def test_mlflows_credential_variables_are_sent(
    scripted: Callable[..., Scripted],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    env: dict[str, str],
    expected: str | None,
) -> None:
    server = scripted([200])
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    client = RegistryClient.from_settings(Settings(root=tmp_path))
    assert client.aliases("m") == {"champion": "3"}
    headers = {k.lower(): v for k, v in server.seen[0][1].items()}
    assert headers.get("authorization") == expected
