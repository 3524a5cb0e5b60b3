"""Registry mode against an `mlflow server` that demands credentials: MLflow's own basic-auth
app (`mlflow server --app-name basic-auth`, on PostgreSQL, proxied artifacts), reached with the
variables MLflow documents (MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD).

The registry is filled with MLflow's own client (authenticated as the admin): one run carrying a
logistic-regression package under `package/` (as `heartml package` uploads it), registered as
version 1 of heart_disease_logistic_regression and given the champion alias. The served
probabilities are checked against the fitted sklearn pipeline the package was exported from.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pandas as pd
import pytest
from harness.mlflow_server import MlflowServer
from harness.postgres import Postgres
from harness.serve import Server, launch_server
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from serving_packages import fit, heart_spec, read_source, records_of, write_package

pytestmark = [pytest.mark.serving, pytest.mark.integration, pytest.mark.slow]

ADMIN, PASSWORD = "admin", "test-only-admin-pw-1"  # a throwaway server's, not a secret
MODEL = "heart_disease_logistic_regression"


@dataclass
class AuthRegistry:
    server: MlflowServer
    pipeline: Pipeline
    rows: list[dict[str, object]]


@pytest.fixture(scope="module")
def auth_registry(
    postgres: Postgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuthRegistry]:
    directory = tmp_path_factory.mktemp("mlflow-auth")
    config = directory / "basic_auth.ini"
    config.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{directory / 'basic_auth.db'}\n"
        f"admin_username = {ADMIN}\nadmin_password = {PASSWORD}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    server = MlflowServer(
        postgres.create_database(),
        directory,
        extra_args=("--app-name", "basic-auth"),
        extra_env={
            "MLFLOW_AUTH_CONFIG_PATH": str(config),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only-csrf-key",
        },
    ).start()
    try:
        spec = heart_spec()
        frame = read_source(spec)
        pipeline = fit(spec, frame, LogisticRegression(max_iter=2000))
        package = write_package(directory / "packages", spec, pipeline, frame)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
            patch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
            from mlflow import MlflowClient

            client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
            experiment = client.create_experiment("auth")
            run_id = client.create_run(experiment).info.run_id
            client.log_artifacts(run_id, str(package), "package")
            client.create_registered_model(MODEL)
            version = client.create_model_version(MODEL, f"runs:/{run_id}/package", run_id)
            assert str(version.version) == "1"
            client.set_registered_model_alias(MODEL, "champion", "1")
        yield AuthRegistry(server, pipeline, records_of(frame, spec.raw_names))
    finally:
        server.stop()


@pytest.fixture
def serve(
    auth_registry: AuthRegistry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(**env: str) -> Server:
        root = tmp_path_factory.mktemp("auth-serve")
        settings = {
            "HEARTML_MODEL_SOURCE": "registry",
            "MLFLOW_TRACKING_URI": auth_registry.server.url,
            "HEARTML_REGISTRY_MODELS": MODEL,
            "HEARTML_REGISTRY_CACHE_DIR": str(root / "cache"),
            "HEARTML_SERVE_RELOAD_INTERVAL_S": "0.5",
            "HEARTML_REGISTRY_TIMEOUT_S": "2",
            **env,
        }
        server = launch_server(root, (), (), settings)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def test_basic_auth_credentials_reach_the_champion(
    auth_registry: AuthRegistry, serve: Callable[..., Server]
) -> None:
    server = serve(MLFLOW_TRACKING_USERNAME=ADMIN, MLFLOW_TRACKING_PASSWORD=PASSWORD)
    assert server.wait_ready()["model_version"] == "1"
    info = httpx.get(f"{server.url}/model/info", timeout=5).json()
    assert (info["name"], info["version"], info["registry"]["state"]) == (MODEL, "1", "ok")
    records = auth_registry.rows
    batch = httpx.post(f"{server.url}/predict/batch", json={"records": records}, timeout=30)
    assert batch.status_code == 200, batch.text
    served = [r["probability"] for r in batch.json()["results"]]
    expected = auth_registry.pipeline.predict_proba(pd.DataFrame(records))[:, 1]
    assert served == pytest.approx(list(expected), abs=1e-6)
    assert PASSWORD not in server.log()


@pytest.mark.parametrize(
    "credentials",
    [{}, {"MLFLOW_TRACKING_USERNAME": ADMIN, "MLFLOW_TRACKING_PASSWORD": "not-the-password"}],
    ids=["none", "wrong-password"],
)
def test_refused_credentials_are_reported_not_retried_forever(
    auth_registry: AuthRegistry, serve: Callable[..., Server], credentials: dict[str, str]
) -> None:
    server = serve(**credentials)

    def refusals() -> int:
        return auth_registry.server.log_path.read_text(errors="replace").count("401 Unauthorized")

    time.sleep(2.0)  # started, a few polls made
    before = refusals()
    time.sleep(3.0)  # six polls at 0.5 s
    asked = refusals() - before
    # A refusal is an answer, not an outage: asked again at each poll (once for the champion
    # alias, once for the challenger's), never retried: at most 2 x 7 requests in 3 s, where
    # retries (HEARTML_REGISTRY_RETRIES=2) would make it three times as many.
    assert 1 <= asked <= 14, asked
    ready = httpx.get(f"{server.url}/ready", timeout=5)
    assert ready.status_code == 503
    assert ready.json()["detail"].startswith("model registry error"), ready.json()
    log = server.log()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    said = [line for line in lines if "refused the credentials" in line.get("reason", "")]
    assert len(said) == 1, lines[-10:]  # once, not once per poll
    assert said[0]["message"] == "model registry error" and "HTTP 401" in said[0]["reason"]
    assert "MLFLOW_TRACKING_USERNAME" in said[0]["reason"] and "Traceback" not in log
    assert "not-the-password" not in log
