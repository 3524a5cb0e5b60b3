"""Subprocesses of the real services: free ports, log tails, process-group kills, a clean environment."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[3]
VENV_BIN = Path(sys.executable).parent
PYTHON = str(VENV_BIN / "python")
HEARTML = str(VENV_BIN / "heartml")
MLFLOW = str(VENV_BIN / "mlflow")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 40) -> str:
    if not path.is_file():
        return f"(no log at {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def kill_group(process: subprocess.Popen[Any], grace_s: float = 10) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left of it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace_s)
    # Children (gunicorn/uvicorn workers, job consumers) may outlive the leader.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def subprocess_env(tracking_uri: str | None = None, **extra: str) -> dict[str, str]:
    """A clean environment for the pipeline's commands: offline, no leaked HEARTML_*/MLFLOW_*."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HEARTML_", "MLFLOW_")) and k != "PYTHONPATH"
    }
    env["HEARTML_OFFLINE"] = "1"
    env["COLUMNS"] = "200"  # rich tables unwrapped in captured output
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    env.update(extra)
    return env
