"""The serving IMAGE following the registry: a container in registry mode against a real
`mlflow server` on PostgreSQL with proxied artifacts, and no package folder mounted.

A small project (one logistic regression, so it trains in seconds) against the server:

    heartml data; heartml train
    heartml track                    -> version 1, champion
    heartml track --force-champion   -> version 2, champion (version 1: champion_previous)
    heartml package; heartml package --model NAME --version 1   (both uploaded to their runs)

Then the image (scripts/build-image.sh, the debootstrap base; layers shared with
scripts/container-test.sh) runs read-only with `--network host` (the test's mlflow server
listens on loopback), HEARTML_MODEL_SOURCE=registry, a 1 s reload interval:

1. ready with the champion (version 2) within 5 s of `docker run`;
2. `heartml rollback` under a concurrent /predict load: version 1 within two reload intervals
   of the command's end, no failed request;
3. the mlflow server killed: the container keeps answering with version 1, /model/info says the
   registry is unreachable, its log says it once, without a traceback;
4. the server back: /model/info says ok, and a second `heartml rollback` is followed again.

Printed (and measured again in benchmarks/bench_registry.py): time to ready, the switch time,
the container's RSS. Fails, not skips, when the engine cannot be started; set
HEARTML_SKIP_CONTAINER=1 to skip it on purpose.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
for folder in ("integration", "e2e"):
    sys.path.insert(0, str(REPO_ROOT / "tests" / folder))

from container_engine import (  # noqa: E402
    IMAGE,
    container_rss_mb,
    docker_engine,
    ensure_serving_image,
    run_registry_container,
)
from harness.mlflow_server import MlflowServer  # noqa: E402
from harness.postgres import POSTGRES_URL_ENV, Postgres, throwaway_postgres  # noqa: E402
from harness.processes import free_port  # noqa: E402
from harness.projects import Project, describe, new_project, small_config_text  # noqa: E402
from harness.serve import SEED_BODY, Load  # noqa: E402

pytestmark = [pytest.mark.deploy, pytest.mark.e2e, pytest.mark.slow, pytest.mark.integration]

POLL_S = 1.0
READY_LIMIT_S = 5.0
MODEL = "heart_disease_logistic_regression"


def one_model_config() -> str:
    raw = yaml.safe_load(small_config_text())
    raw["models"] = {"logistic_regression": raw["models"]["logistic_regression"]}
    raw["evaluation"].update(cv_repeats=1, permutation_repeats=1)
    return yaml.safe_dump(raw, sort_keys=False)


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        with throwaway_postgres() as server:
            yield server
        return
    server = Postgres(url)
    try:
        yield server
    finally:
        server.drop_created()


@pytest.fixture(scope="module")
def registry(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """The project, tracked twice and packaged twice against its own mlflow server."""
    server = MlflowServer(postgres.create_database(), tmp_path_factory.mktemp("mlflow")).start()
    try:
        root = new_project(tmp_path_factory.mktemp("container-registry") / "project")
        (root / "configs" / "pipeline.yaml").write_text(one_model_config())
        project = Project(root, server.url)
        for command in (
            ("heartml", "data"),
            ("heartml", "train"),
            ("heartml", "track"),
            ("heartml", "track", "--force-champion"),
            ("heartml", "package"),
            ("heartml", "package", "--model", MODEL, "--version", "1"),
        ):
            result = project.run(*command, timeout=600)
            assert result.returncode == 0, describe(result)
        project.server = server  # type: ignore[attr-defined]
        yield project
    finally:
        server.stop()


def get_json(url: str) -> dict[str, Any]:
    response = httpx.get(url, timeout=5)
    response.raise_for_status()
    return dict(response.json())


def wait_for(check: Any, timeout: float, what: str, logs: Any) -> float:
    started = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        if time.monotonic() - started > timeout:
            pytest.fail(f"{what}: not within {timeout} s\n{logs()[-4000:]}")
        time.sleep(0.05)


@pytest.mark.timeout(1800)
def test_the_image_follows_the_registry_champion(registry: Project, tmp_path: Path) -> None:
    if os.environ.get("HEARTML_SKIP_CONTAINER") == "1":
        pytest.skip("HEARTML_SKIP_CONTAINER=1: container test skipped on request")
    server: MlflowServer = registry.server  # type: ignore[attr-defined]
    with docker_engine(tmp_path) as docker:
        ensure_serving_image(docker, tmp_path)
        port = free_port()
        env = {
            "HEARTML_MODEL_SOURCE": "registry",
            "MLFLOW_TRACKING_URI": server.url,
            "HEARTML_REGISTRY_MODELS": MODEL,
            "HEARTML_SERVE_RELOAD_INTERVAL_S": str(POLL_S),
            "HEARTML_REGISTRY_TIMEOUT_S": "2",
            "UVICORN_PORT": str(port),
        }
        with run_registry_container(docker, env) as container:
            url = f"http://127.0.0.1:{port}"
            wait_for(
                lambda: httpx.get(f"{url}/ready", timeout=2).status_code == 200,
                60,
                "/ready",
                container.logs,
            )
            ready_s = time.monotonic() - container.started
            info = get_json(f"{url}/model/info")
            assert (info["name"], info["version"]) == (MODEL, "2"), info
            assert info["source"] == f"registry:models:/{MODEL}@champion (version 2)"
            assert info["registry"]["state"] == "ok"
            assert container.mounts() == [], "no package folder may be mounted"

            # 2. rollback under load
            with Load(url, threads=8) as load:
                time.sleep(1.0)
                moved = registry.run("heartml", "rollback", timeout=120)
                moved_at = time.monotonic()
                assert moved.returncode == 0, describe(moved)
                wait_for(
                    lambda: get_json(f"{url}/model/info")["version"] == "1",
                    2 * POLL_S + 10,
                    "version 1 after the rollback",
                    container.logs,
                )
                switch_s = time.monotonic() - moved_at
                time.sleep(1.0)
            assert not load.errors, load.errors[:3]
            assert {o.status for o in load.results} == {200}, {o.status for o in load.results}
            assert {o.version for o in load.results} == {"1", "2"}
            assert switch_s <= 2 * POLL_S, f"switched {switch_s:.2f} s after the rollback"

            # 3. the registry goes away
            server.stop()
            try:
                wait_for(
                    lambda: get_json(f"{url}/model/info")["registry"]["state"] == "unreachable",
                    15,
                    "/model/info: registry unreachable",
                    container.logs,
                )
                for _ in range(int(3 * POLL_S / 0.25)):  # three polls while it is down
                    answer = httpx.post(f"{url}/predict", json=SEED_BODY, timeout=5)
                    assert answer.status_code == 200 and answer.json()["model_version"] == "1"
                    time.sleep(0.25)
            finally:
                server.start()
            logs = container.logs()
            said = [
                json.loads(line)
                for line in logs.splitlines()
                if line.startswith("{") and '"model registry unreachable' in line
            ]
            assert len(said) == 1, said
            assert "Traceback" not in logs and "exception" not in said[0]

            # 4. back: it follows again
            wait_for(
                lambda: get_json(f"{url}/model/info")["registry"]["state"] == "ok",
                20,
                "/model/info: registry ok again",
                container.logs,
            )
            moved = registry.run("heartml", "rollback", timeout=120)
            moved_at = time.monotonic()
            assert moved.returncode == 0, describe(moved)
            wait_for(
                lambda: get_json(f"{url}/model/info")["version"] == "2",
                2 * POLL_S + 10,
                "version 2 after the second rollback",
                container.logs,
            )
            back_s = time.monotonic() - moved_at
            rss = container_rss_mb(docker, container.name)
            print(
                f"container-registry: image {IMAGE}, ready {ready_s:.2f} s, rollback followed in "
                f"{switch_s:.2f} s under load ({len(load.results)} requests, 0 failed), "
                f"followed again after the outage in {back_s:.2f} s, RSS {rss:.0f} MB"
            )
            assert ready_s <= READY_LIMIT_S, f"ready {ready_s:.2f} s after `docker run`"
            assert back_s <= 2 * POLL_S, f"followed {back_s:.2f} s after the second rollback"
