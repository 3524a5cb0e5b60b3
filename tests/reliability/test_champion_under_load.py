"""The champion moves while the service is under load.

A server in registry mode (HEARTML_MODEL_SOURCE=registry) on a copy of the session's project:
an `mlflow server` on the copy of its store (mlflow.db; registry mode reads the registry over
MLflow's REST API) names version 2 the champion, and packages/ already holds the packages of
both versions, as a team has them after `heartml package` for the next champion (a package
under packages/ that names the champion is served without a download). The two versions answer differently (see conftest.py). Eight clients POST every
dataset row in turn without pause while `heartml rollback` moves the alias back to version 1.
Passes when no request fails (every answer a 200, no connection error), every answer's
probability is the offline (sklearn) probability of the version it names for the row it was
sent with, version 1 is answered by /predict and /model/info within 30 s of the command, no
request sent after the first version-1 answer gets version 2 again, and the log says what
happened.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from harness.mlflow_server import MlflowServer
from harness.projects import Project, describe
from harness.serve import (
    Load,
    Server,
    check_answers_follow_the_model,
    offline_probabilities,
    records_of,
)
from reliability_helpers import (
    POLL_S,
    Built,
    manifest_of,
    model_info,
    report,
    service_tail,
    wait_for_log,
)

from serving_packages import heart_spec, read_source

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.slow]

SWITCH_LIMIT_S = 30.0
CLIENTS = 8


def registry_copy(built: Built, root: Path) -> Path:
    """The project's store and packages in a folder of this test's own (it moves the alias)."""
    root.mkdir()
    shutil.copy2(built.project.root / "mlflow.db", root / "mlflow.db")
    shutil.copytree(built.project.root / "configs", root / "configs")
    shutil.copytree(built.project.root / "packages", root / "packages")
    return root


@pytest.fixture
def tracking_server(built: Built, tmp_path: Path) -> Iterator[tuple[Project, MlflowServer]]:
    root = registry_copy(built, tmp_path / "project")
    (tmp_path / "mlflow").mkdir()
    server = MlflowServer(f"sqlite:///{root / 'mlflow.db'}", tmp_path / "mlflow").start()
    try:
        yield Project(root, server.url), server
    finally:
        server.stop()


def test_champion_moved_under_load_fails_no_request(
    built: Built, serve: Callable[..., Server], tracking_server: tuple[Project, MlflowServer]
) -> None:
    project, tracking = tracking_server
    old, new = built.version(built.v2), built.version(built.v1)
    rows = read_source(heart_spec())
    name = manifest_of(built.v1)["model_name"]
    assert manifest_of(built.v2)["model_name"] == name
    expected = {
        (name, old): offline_probabilities(built.v2, rows),
        (name, new): offline_probabilities(built.v1, rows),
    }
    assert np.max(np.abs(expected[(name, old)] - expected[(name, new)])) > 0.1, "must differ"
    server = serve(
        root=project.root,
        HEARTML_MODEL_SOURCE="registry",
        MLFLOW_TRACKING_URI=tracking.url,
        HEARTML_SERVE_RELOAD_INTERVAL_S=str(POLL_S),
    )
    assert server.wait_ready()["model_version"] == old
    assert model_info(server)["source"].startswith("registry:models:/")

    with Load(server.url, threads=CLIENTS, bodies=records_of(rows)) as load:
        time.sleep(2.0)
        command_started = time.monotonic()
        moved = project.run("heartml", "rollback", timeout=120)
        command_done = time.monotonic()
        assert moved.returncode == 0, describe(moved)
        info_switched = None
        while time.monotonic() - command_started < SWITCH_LIMIT_S + 5:
            if model_info(server)["version"] == new:
                info_switched = time.monotonic()
                break
            time.sleep(0.05)
        time.sleep(2.0)  # keep the load on after the swap
    load_s = max(o.finished for o in load.results) - min(o.started for o in load.results)

    assert info_switched is not None, f"/model/info never showed {new}:\n{service_tail(server)}"
    assert not load.errors, load.errors[:5]
    statuses = {outcome.status for outcome in load.results}
    assert statuses == {200}, statuses
    check_answers_follow_the_model(load.results, expected)
    answered_new = [o.finished for o in load.results if o.version == new]
    assert answered_new, "no /predict answer came from the new champion"
    first_new = min(answered_new)
    stale = [o for o in load.results if o.version == old and o.started > first_new]
    report(
        "champion moved under load",
        requests=len(load.results),
        req_per_s=round(len(load.results) / load_s),
        failed=len(load.errors) + sum(o.status != 200 for o in load.results),
        rollback_command_s=round(command_done - command_started, 2),
        predict_switch_after_command_start_s=round(first_new - command_started, 2),
        predict_switch_after_command_end_s=round(first_new - command_done, 2),
        model_info_switch_after_command_start_s=round(info_switched - command_started, 2),
        answers_old=sum(o.version == old for o in load.results),
        answers_new=len(answered_new),
        stale_after_switch=len(stale),
    )
    assert first_new - command_started <= SWITCH_LIMIT_S
    assert info_switched - command_started <= SWITCH_LIMIT_S
    assert not stale, f"{len(stale)} requests sent after the switch got version {old}"
    assert {o.version for o in load.results} == {old, new}

    info = model_info(server)
    assert info["source"].startswith("registry:models:/") and f"version {new}" in info["source"]
    assert info["package"].endswith(built.v1.name)
    loaded = wait_for_log(
        server,
        lambda line: line["message"] == "model loaded" and line.get("model_version") == new,
        what=f"'model loaded' line for version {new}",
    )
    assert loaded["previous_version"] == old
    assert httpx.get(f"{server.url}/ready", timeout=5).json()["model_version"] == new
