"""A real `mlflow server` (PostgreSQL behind it, proxied artifacts) in its own process group:
its job consumers outlive a plain kill, so it is stopped by killing that group."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.processes import MLFLOW, free_port, kill_group, tail

BACKENDS = ("embedded", "server")  # the embedded SQLite store; mlflow server on PostgreSQL
SERVER_START_TIMEOUT_S = 90


@dataclass
class MlflowServer:
    """`mlflow server` on a PostgreSQL database with proxied artifacts, on loopback."""

    database_url: str
    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[Any] | None = None
    # e.g. ("--app-name", "basic-auth") with its MLFLOW_AUTH_CONFIG_PATH in extra_env
    extra_args: tuple[str, ...] = ()
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    def start(self) -> MlflowServer:
        """Start (or restart, on the same database and port) and wait for /health."""
        assert self.process is None or self.process.poll() is not None, "already running"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        env.update(self.extra_env)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    MLFLOW,
                    "server",
                    "--backend-store-uri",
                    self.database_url,
                    "--artifacts-destination",
                    str(self.directory / "artifacts"),
                    "--serve-artifacts",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--workers",
                    "1",
                    *self.extra_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.directory,
                start_new_session=True,
            )
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(
                    f"mlflow server exited with {self.process.returncode}:\n{tail(self.log_path)}",
                    pytrace=False,
                )
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        pytest.fail(
            f"mlflow server not healthy after {SERVER_START_TIMEOUT_S} s:\n{tail(self.log_path)}",
            pytrace=False,
        )

    def stop(self) -> None:
        """Kill the server's process group and wait until its port refuses connections."""
        if self.process is None:
            return
        kill_group(self.process)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            except OSError:
                return
            time.sleep(0.2)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None
