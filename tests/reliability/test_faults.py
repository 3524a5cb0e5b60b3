"""Faults: the registry down at start, broken packages at start and on reload.

- Registry unreachable at API start (registry mode, MLFLOW_TRACKING_URI on a closed port): the
  service serves the newest packaged model and says so (a log line, /model/info `source`).
- A corrupted package at start is refused with a clear log line naming the file and the reason;
  the service stays up (/health 200) and not ready (/ready and /predict 503), and says it once.
  (The one-byte change of model.onnx is tests/integration/test_serving_http.py's; here: a file
  missing, a MANIFEST that is not JSON, a smuggled unlisted file, and an ONNX graph that is
  garbage although its checksum was re-signed.)
- A corrupted NEW package dropped into packages/ on a running server is refused, the last good
  model keeps serving every request, the log says why; the repaired package is then picked up.
- The tracking server killed during `experiment_tracking`: clear error, no alias half-moved.
  That is tests/integration/test_tracking_integration.py::
  test_server_stopped_mid_run_fails_cleanly_and_keeps_the_champion (also marked `reliability`;
  it needs the PostgreSQL-backed `mlflow server` fixtures of tests/integration).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness.processes import free_port
from harness.serve import SEED_BODY, Load, Server
from reliability_helpers import (
    POLL_S,
    Built,
    install_package,
    model_info,
    report,
    service_log,
    service_tail,
    wait_for_log,
)

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.slow]

FALLBACK_WAIT_S = 15  # a registry on a closed port is given up on within ~5 s


def rejected_lines(server: Server) -> list[dict[str, Any]]:
    return [
        line for line in service_log(server) if line["message"].startswith("model package rejected")
    ]


# --------------------------------------------------------------------------------------------
# Registry unreachable at start


def test_registry_unreachable_at_start_serves_the_newest_package_and_says_so(
    built: Built, serve: Callable[..., Server]
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    server = serve(
        packages=(built.v1, built.v2),
        HEARTML_MODEL_SOURCE="registry",
        MLFLOW_TRACKING_URI=closed,
        HEARTML_REGISTRY_MODELS="heart_disease_logistic_regression",  # no spec in this root
        HEARTML_SERVE_RELOAD_INTERVAL_S=str(POLL_S),
    )
    newest = server.root / "packages" / built.v2.name
    deadline = time.monotonic() + FALLBACK_WAIT_S
    ready = httpx.get(f"{server.url}/ready", timeout=5)
    while ready.status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        ready = httpx.get(f"{server.url}/ready", timeout=5)
    assert ready.status_code == 200, f"{ready.json()}\n{service_tail(server)}"
    assert ready.json()["model_version"] == built.version(built.v2)
    predicted = httpx.post(f"{server.url}/predict", json=SEED_BODY, timeout=5)
    assert predicted.status_code == 200 and predicted.json()["model_version"] == "2"
    source = model_info(server)["source"]
    assert newest.name in source and "fallback" in source.lower(), source
    said = [
        line
        for line in service_log(server)
        if line["level"] in ("WARNING", "ERROR")
        and "fallback" in json.dumps(line).lower()
        and newest.name in json.dumps(line)
    ]
    assert said, f"no log line says it fell back to {newest.name}:\n{service_tail(server)}"


# The registry on a server that accepts and never answers: the lookup at start runs into its
# timeout (HEARTML_REGISTRY_TIMEOUT_S per try, 3 tries, 0.75 s of back-off), in a
# worker thread, so /health answers all along; then the newest package is served, said once.
SILENT_TIMEOUT_S = 1.0
SILENT_BOUND_S = 3 * SILENT_TIMEOUT_S + 4
# The server's own share: a poll every 0.2 s here, a worker thread and HTTP on a busy machine
# (7.2 s measured under a load average of 6). Still far below one default timeout (20 s).
SERVER_SLACK_S = 3.0


def test_registry_silent_at_start_times_out_and_serves_the_newest_package(
    built: Built, serve: Callable[..., Server], silent_url: str
) -> None:
    server = serve(
        packages=(built.v1, built.v2),
        HEARTML_MODEL_SOURCE="registry",
        MLFLOW_TRACKING_URI=silent_url,
        HEARTML_REGISTRY_MODELS="heart_disease_logistic_regression",  # no spec in this root
        HEARTML_REGISTRY_TIMEOUT_S=str(SILENT_TIMEOUT_S),
        HEARTML_SERVE_RELOAD_INTERVAL_S="60",  # one lookup: the one at start
    )
    started = time.monotonic()  # /health answers: the lookup has begun (or is about to)
    waiting = httpx.get(f"{server.url}/ready", timeout=5)
    health_s = []
    while waiting.status_code != 200 and time.monotonic() - started < SILENT_BOUND_S + 15:
        before = time.monotonic()
        assert httpx.get(f"{server.url}/health", timeout=2).status_code == 200
        health_s.append(time.monotonic() - before)
        time.sleep(0.2)
        waiting = httpx.get(f"{server.url}/ready", timeout=5)
    ready_after = time.monotonic() - started
    assert waiting.status_code == 200, f"{waiting.json()}\n{service_tail(server)}"
    assert ready_after <= SILENT_BOUND_S + SERVER_SLACK_S, f"ready after {ready_after:.1f} s"
    assert health_s and max(health_s) < 1.0, "the lookup blocked the event loop"
    assert waiting.json()["model_version"] == built.version(built.v2)
    said = [
        line
        for line in service_log(server)
        if line["level"] == "WARNING" and "registry fallback" in line["message"]
    ]
    assert len(said) == 1, service_tail(server)
    assert "no answer within the timeout" in said[0]["reason"], said[0]
    assert silent_url in said[0]["reason"], said[0]
    report(
        "registry silent at start",
        ready_after_s=round(ready_after, 2),
        bound_s=SILENT_BOUND_S,
        health_max_ms=round(1000 * max(health_s), 1),
    )


def test_registry_silent_and_no_package_is_not_ready_with_the_reason(
    serve: Callable[..., Server], silent_url: str
) -> None:
    server = serve(
        HEARTML_MODEL_SOURCE="registry",
        MLFLOW_TRACKING_URI=silent_url,
        HEARTML_REGISTRY_MODELS="heart_disease_logistic_regression",  # no spec in this root
        HEARTML_REGISTRY_TIMEOUT_S=str(SILENT_TIMEOUT_S),
        HEARTML_SERVE_RELOAD_INTERVAL_S="60",
    )
    started = time.monotonic()
    detail = ""
    while time.monotonic() - started < SILENT_BOUND_S + 10:
        ready = httpx.get(f"{server.url}/ready", timeout=5)
        assert ready.status_code == 503
        detail = ready.json()["detail"]
        if detail != "loading":
            break
        time.sleep(0.2)
    assert detail == "model registry unreachable and no model package to fall back to", detail
    assert time.monotonic() - started <= SILENT_BOUND_S + SERVER_SLACK_S
    assert silent_url not in detail  # clients get no server addresses
    predict = httpx.post(f"{server.url}/predict", json=SEED_BODY, timeout=5)
    assert predict.status_code == 503
    assert predict.json()["detail"] == f"no model loaded: {detail}"


# --------------------------------------------------------------------------------------------
# A corrupted package at start


def _resign(package: Path, name: str) -> None:
    """Write the file's real sha256 and size into the MANIFEST, as a careless rebuild would."""
    manifest = json.loads((package / "MANIFEST.json").read_text())
    content = (package / name).read_bytes()
    manifest["files"][name].update(sha256=hashlib.sha256(content).hexdigest(), bytes=len(content))
    (package / "MANIFEST.json").write_text(json.dumps(manifest, indent=2))


def _missing_onnx(package: Path) -> None:
    (package / "model.onnx").unlink()


def _manifest_not_json(package: Path) -> None:
    (package / "MANIFEST.json").write_text('{"files": {"model.onnx": ')


def _smuggled_file(package: Path) -> None:
    (package / "extra_model.pkl").write_bytes(b"\x80\x04K\x01.")  # a pickle nobody listed


def _garbage_onnx_resigned(package: Path) -> None:
    (package / "model.onnx").write_bytes(b"not an ONNX graph at all")
    _resign(package, "model.onnx")


CORRUPTIONS = {
    # id: (corrupt(package), words the rejection reason must contain)
    "file missing": (_missing_onnx, ("model.onnx", "missing")),
    "manifest not json": (_manifest_not_json, ("MANIFEST.json", "not valid JSON")),
    "unlisted file": (_smuggled_file, ("extra_model.pkl", "not listed")),
    "garbage onnx re-signed": (_garbage_onnx_resigned, ("ONNX", "protobuf")),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_corrupted_package_at_start_is_refused_and_not_ready(
    built: Built, serve: Callable[..., Server], tmp_path: Path, corruption: str
) -> None:
    corrupt, words = CORRUPTIONS[corruption]
    package = tmp_path / built.v1.name
    shutil.copytree(built.v1, package)
    corrupt(package)
    server = serve(packages=(package,), HEARTML_SERVE_RELOAD_INTERVAL_S=str(POLL_S))
    line = wait_for_log(
        server,
        lambda entry: entry["message"].startswith("model package rejected"),
        what="'model package rejected' line",
    )
    time.sleep(4 * POLL_S)  # a few more polls of the same broken files
    assert line["level"] == "ERROR" and line["package"].endswith(package.name), line
    for word in words:
        assert word.lower() in line["reason"].lower(), (word, line)
    assert len(rejected_lines(server)) == 1, "said once, not at every poll"
    assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200
    ready = httpx.get(f"{server.url}/ready", timeout=5)
    assert ready.status_code == 503 and ready.json()["status"] == "not_ready", ready.text
    assert "rejected" in ready.json()["detail"], ready.text
    assert httpx.post(f"{server.url}/predict", json=SEED_BODY, timeout=5).status_code == 503
    assert httpx.get(f"{server.url}/model/info", timeout=5).status_code == 503
    assert "heartml_model_ready 0.0" in httpx.get(f"{server.url}/metrics", timeout=5).text


# --------------------------------------------------------------------------------------------
# A corrupted new package on reload


def test_corrupted_new_package_keeps_the_last_good_model_serving(
    built: Built, serve: Callable[..., Server], tmp_path: Path
) -> None:
    good, bad = built.version(built.v1), built.version(built.v2)
    server = serve(packages=(built.v1,), HEARTML_SERVE_RELOAD_INTERVAL_S=str(POLL_S))
    assert server.wait_ready()["model_version"] == good
    broken = tmp_path / built.v2.name
    shutil.copytree(built.v2, broken)
    onnx = bytearray((broken / "model.onnx").read_bytes())
    onnx[len(onnx) // 3] ^= 0xFF
    (broken / "model.onnx").write_bytes(bytes(onnx))

    with Load(server.url, threads=4) as load:
        time.sleep(1.0)
        dropped = time.monotonic()
        installed = install_package(broken, server.root / "packages")
        line = wait_for_log(
            server,
            lambda entry: entry["message"].startswith("model package rejected"),
            what="'model package rejected' line",
        )
        refused_after = time.monotonic() - dropped
        time.sleep(4 * POLL_S)
        during = model_info(server)
        ready = httpx.get(f"{server.url}/ready", timeout=5)
        # The repaired package (same name, rewritten) is picked up: the rejection is not sticky.
        shutil.rmtree(installed)
        install_package(built.v2, server.root / "packages")
        repaired = time.monotonic()
        switched = None
        while time.monotonic() - repaired < 15:
            if model_info(server)["version"] == bad:
                switched = time.monotonic() - repaired
                break
            time.sleep(0.05)
        time.sleep(0.5)

    report(
        "corrupted package on reload",
        requests=len(load.results),
        failed=len(load.errors) + sum(o.status != 200 for o in load.results),
        refused_after_s=round(refused_after, 2),
        repaired_package_served_after_s=None if switched is None else round(switched, 2),
    )
    assert line["level"] == "ERROR", line
    assert line["message"] == f"model package rejected; still serving version {good}", line
    assert "model.onnx" in line["reason"] and "sha256" in line["reason"], line
    assert line["package"].endswith(built.v2.name), line
    assert len(rejected_lines(server)) == 1, "said once, not at every poll"
    assert during["version"] == good and during["package"].endswith(built.v1.name), during
    assert ready.status_code == 200 and ready.json()["model_version"] == good
    assert not load.errors, load.errors[:5]
    assert {o.status for o in load.results} == {200}
    assert switched is not None, f"the repaired package was not loaded:\n{service_tail(server)}"
    assert {o.version for o in load.results} == {good, bad}
    first_bad = min(o.finished for o in load.results if o.version == bad)
    stale = [o for o in load.results if o.version == good and o.started > first_bad]
    assert not stale, f"{len(stale)} requests sent after the switch got version {good}"
