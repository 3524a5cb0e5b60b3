"""Small shared pieces of the reliability suite: the built packages, numbers to report, RSS."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from harness.projects import Project
from harness.serve import Server

ADMIN_KEY = "reliability-admin-key"  # a test value, given to the servers that need one
POLL_S = 0.5  # HEARTML_SERVE_RELOAD_INTERVAL_S of the servers that watch for a new model

ACCESS_LOGGER = '"logger":"heartml.serving.access"'

# test name -> measured numbers; printed by conftest's pytest_terminal_summary.
NUMBERS: dict[str, dict[str, Any]] = {}


def report(test: str, **numbers: Any) -> None:
    NUMBERS.setdefault(test, {}).update(numbers)
    print(f"{test}: {numbers}")


@dataclass(frozen=True)
class Built:
    """The session's project (embedded MLflow store, champion = version 2) and its packages."""

    project: Project
    v1: Path
    v2: Path

    def version(self, package: Path) -> str:
        return str(manifest_of(package)["version"])


def manifest_of(package: Path) -> dict[str, Any]:
    return dict(json.loads((package / "MANIFEST.json").read_text()))


def install_package(source: Path, packages_dir: Path, name: str | None = None) -> Path:
    """Copy beside packages/, then one rename in: how `heartml package` installs a package, so a
    watcher never sees a half-copied folder."""
    target = packages_dir / (name or source.name)
    staging = packages_dir / f".staging-{target.name}"
    shutil.copytree(source, staging)
    staging.rename(target)
    return target


def vmrss_kib(pid: int) -> int:
    """Resident set size of a process (VmRSS in /proc/<pid>/status), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def wait_for_log(
    server: Server, predicate: Any, timeout: float = 20, what: str = "a log line"
) -> dict[str, Any]:
    """The first JSON log line of `server` for which predicate(line) is true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in service_log(server):
            if predicate(line):
                return line
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {timeout} s:\n{service_tail(server)}")


def service_log(server: Server) -> list[dict[str, Any]]:
    """The server's JSON log lines without the per-request access lines (fast under load)."""
    return [
        json.loads(line)
        for line in server.log().splitlines()
        if line.startswith("{") and ACCESS_LOGGER not in line
    ]


def service_tail(server: Server, lines: int = 25) -> str:
    """The end of the server's log without the access lines: what it said, for a failure."""
    return "\n".join(json.dumps(line) for line in service_log(server)[-lines:])


def model_info(server: Server) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/model/info", timeout=5)
    assert response.status_code == 200, response.text
    return dict(response.json())
