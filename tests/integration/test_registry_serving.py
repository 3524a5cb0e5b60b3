"""Every registered version carries its package, and registry-mode serving follows the champion
over MLflow's REST API, against a real `mlflow server` on PostgreSQL with proxied artifacts.

One project per module, on a server of its own (a test stops and restarts it):

    heartml track                       -> version 1 of the four models; the best is champion
    heartml track --force-champion      -> version 2; champion = best v2, champion_previous = v1
    heartml package                     -> champion v2, uploaded to its run's package/
    heartml package --model B --version 1      (B: the champion's model)
    heartml package --model C --version 2      (C: random forest or logistic regression,
                                                whichever the champion is not: the challenger)

The served model is checked against the packaged sklearn pipeline (model.joblib) of the same
version, and the registry against MLflow's own client: oracles outside heartml.serving.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pandas as pd
import pytest
from harness.mlflow_server import MlflowServer
from harness.processes import PYTHON
from harness.projects import Project, describe
from harness.registry import registry_client
from harness.serve import SEED_BODY, Load, Server, launch_server
from prometheus_client.parser import text_string_to_metric_families

from heartml.catalog import Catalog
from heartml.data.prepare import read_split
from heartml.spec import load_spec
from oracles import HEART_SPEC_FILE

pytestmark = [pytest.mark.serving, pytest.mark.integration, pytest.mark.slow]

POLL_S = 0.5  # the servers' HEARTML_SERVE_RELOAD_INTERVAL_S
RAW = load_spec(HEART_SPEC_FILE).raw_names
ALL_NAMES = tuple(f"heart_disease_{a}" for a in ("random_forest", "logistic_regression",
                                                  "gradient_boosting", "svm"))  # fmt: skip

# `heartml` with the modules it imported written out at exit (to show mlflow never is).
MODULES_WRAPPER = """import atexit, json, os, signal, sys


@atexit.register
def write_report():
    with open(os.environ["HEARTML_MODULES_REPORT"], "w") as out:
        json.dump(sorted(sys.modules), out)


def stop(signum, frame):
    write_report()
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)

from heartml.cli import app

app(prog_name="heartml")
"""


@dataclass
class Registered:
    server: MlflowServer
    project: Project
    champion: str  # the champion's registered model name (version 2 is the champion)
    challenger: str  # another model (version 2 is packaged too)
    packages: dict[tuple[str, str], Path]  # (name, version) -> local package folder

    def package(self, name: str, version: str) -> Path:
        return self.packages[(name, version)]


def manifest_of(directory: Path) -> dict[str, Any]:
    return dict(json.loads((directory / "MANIFEST.json").read_text()))


@pytest.fixture(scope="module")
def registered(
    make_project: Callable[..., Project], mlflow_server_factory: Callable[[], MlflowServer]
) -> Registered:
    server = mlflow_server_factory()
    project = make_project(server.url)
    project.track()
    project.track("--force-champion")
    client = registry_client(server.url)
    holders = [n for n in ALL_NAMES if "champion" in client.get_registered_model(n).aliases]
    assert len(holders) == 1, holders
    champion = holders[0]
    assert str(client.get_registered_model(champion).aliases["champion"]) == "2"
    challenger = (
        "heart_disease_logistic_regression"
        if champion == "heart_disease_random_forest"
        else "heart_disease_random_forest"
    )
    for command in (
        ("heartml", "package"),
        ("heartml", "package", "--model", champion, "--version", "1"),
        ("heartml", "package", "--model", challenger, "--version", "2"),
    ):
        result = project.run(*command, timeout=600)
        assert result.returncode == 0, describe(result)
    packages = {}
    for directory in (project.root / "packages").glob("heart_disease_model_*"):
        manifest = manifest_of(directory)
        packages[(manifest["model_name"], str(manifest["version"]))] = directory
    assert set(packages) == {(champion, "2"), (champion, "1"), (challenger, "2")}, packages
    return Registered(server, project, champion, challenger, packages)


@pytest.fixture
def serve_registry(
    registered: Registered, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Server]]:
    """A `heartml serve` in registry mode in an EMPTY folder: no packages/, no configs/ (as in
    the serving image), so the model can only come from the registry."""
    servers: list[Server] = []

    def start(command: tuple[str, ...] | None = None, **env: str) -> Server:
        root = tmp_path_factory.mktemp("registry-serve")
        settings = {
            "HEARTML_MODEL_SOURCE": "registry",
            "MLFLOW_TRACKING_URI": registered.server.url,
            "HEARTML_REGISTRY_MODELS": ",".join(ALL_NAMES),
            "HEARTML_REGISTRY_CACHE_DIR": str(root / "cache"),
            "HEARTML_SERVE_RELOAD_INTERVAL_S": str(POLL_S),
            "HEARTML_REGISTRY_TIMEOUT_S": "2",
            **env,
        }
        server = launch_server(root, (), (), settings, *(() if command is None else (command,)))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def rows_and_records(project: Project) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    train, test = read_split(Catalog.load(project.root, "uci_heart"))
    frame = pd.concat([train, test])[list(RAW)]
    values = frame.astype(object).where(frame.notna(), None)
    return frame, [dict(zip(RAW, row, strict=True)) for row in values.itertuples(index=False)]


def model_info(server: Server) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/model/info", timeout=5)
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_until(check: Callable[[], bool], timeout: float, what: str, server: Server) -> float:
    """Seconds until check() held; fails with the server's log tail after `timeout`."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            tail = "\n".join(server.log().splitlines()[-25:])
            pytest.fail(f"{what} not within {timeout} s:\n{tail}")
        time.sleep(0.05)
    return time.monotonic() - started


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------
# 1. Every registered version carries its package


def test_package_uploads_the_verified_package_to_the_versions_run(registered: Registered) -> None:
    client = registry_client(registered.server.url)
    for (name, version), directory in registered.packages.items():
        run_id = client.get_model_version(name, version).run_id
        assert manifest_of(directory)["run_id"] == run_id
        local = {
            p.relative_to(directory).as_posix(): sha256(p)
            for p in directory.rglob("*")
            if p.is_file()
        }
        fetched = Path(
            client.download_artifacts(
                run_id, "package", str(directory.parent.parent / f"dl-{name}-{version}")
            )
        )
        remote = {
            p.relative_to(fetched).as_posix(): sha256(p) for p in fetched.rglob("*") if p.is_file()
        }
        assert remote == local, (name, version, set(remote) ^ set(local))
        assert {"model.onnx", "MANIFEST.json", "dataset_spec.yaml", "reference_statistics.json",
                "model_card.md"} <= set(remote)  # fmt: skip
        # The proxied artifact store holds them (the server runs with --serve-artifacts).
        assert client.get_run(run_id).info.artifact_uri.startswith("mlflow-artifacts:")


def test_package_verify_straight_from_the_registry(registered: Registered) -> None:
    project, name = registered.project, registered.champion
    for uri in (f"models:/{name}/2", f"models:/{name}@champion", f"models:/{name}/1"):
        result = project.run("heartml", "package", "verify", uri, timeout=300)
        assert result.returncode == 0, describe(result)
        assert result.stdout.startswith(f"OK {uri}"), result.stdout
        assert "onnx max |Δp|" in result.stdout and "mlflow_pyfunc max |Δp|" in result.stdout

    # A version that was never packaged, an alias nobody holds, not a URI at all.
    for uri, words in (
        (f"models:/{name}/3", "no version 3"),
        (f"models:/{registered.challenger}/1", "has no package in the registry"),
        (f"models:/{name}@nobody", "holds the alias 'nobody'"),
        ("models:/just-a-name", "not a registry URI"),
    ):
        result = project.run("heartml", "package", "verify", uri, timeout=300)
        assert result.returncode == 2, describe(result)
        assert words in result.stderr and "Traceback" not in result.stderr, result.stderr

    # One byte changed in the server's artifact store: verification names the file.
    run_id = manifest_of(registered.package(name, "1"))["run_id"]
    stored = next(
        registered.server.directory.glob(f"artifacts/*/{run_id}/artifacts/package/model_card.md")
    )
    original = stored.read_bytes()
    try:
        stored.write_bytes(original.replace(b"Model card", b"Model cord", 1))
        result = project.run("heartml", "package", "verify", f"models:/{name}/1", timeout=300)
        assert result.returncode == 2, describe(result)
        assert "model_card.md: sha256" in result.stderr, result.stderr
    finally:
        stored.write_bytes(original)


# --------------------------------------------------------------------------------------------
# 2. Registry mode without MLflow in the server


def test_registry_mode_follows_the_champion_over_rest(
    registered: Registered, serve_registry: Callable[..., Server], tmp_path: Path
) -> None:
    wrapper = tmp_path / "modules_heartml.py"
    wrapper.write_text(MODULES_WRAPPER)
    modules_report = tmp_path / "modules.json"
    server = serve_registry(
        command=(PYTHON, str(wrapper)), HEARTML_MODULES_REPORT=str(modules_report)
    )
    champion = registered.champion
    assert server.wait_ready()["model_version"] == "2"
    info = model_info(server)
    assert (info["name"], info["version"]) == (champion, "2")
    assert info["source"] == f"registry:models:/{champion}@champion (version 2)"
    assert info["registry"]["state"] == "ok"
    assert not (server.root / "packages").exists() or not any((server.root / "packages").iterdir())

    # The served numbers are the registered version's: its packaged sklearn pipeline on every row.
    frame, records = rows_and_records(registered.project)
    pipeline = joblib.load(registered.package(champion, "2") / "model.joblib")
    expected = pipeline.predict_proba(frame)[:, 1]
    batch = httpx.post(f"{server.url}/predict/batch", json={"records": records}, timeout=30)
    assert batch.status_code == 200, batch.text
    served = [r["probability"] for r in batch.json()["results"]]
    np.testing.assert_allclose(served, expected, atol=1e-6)

    # Rollback under load: the other version within two poll intervals, no failed request.
    with Load(server.url, threads=8) as load:
        time.sleep(1.0)
        moved = registered.project.run("heartml", "rollback", timeout=120)
        assert moved.returncode == 0, describe(moved)
        switched = wait_until(
            lambda: model_info(server)["version"] == "1", 2 * POLL_S + 3, "version 1", server
        )
        time.sleep(1.0)
    assert not load.errors and {o.status for o in load.results} == {200}, load.errors[:3]
    assert {o.version for o in load.results} == {"1", "2"}
    print(f"rollback: served version 1 {switched:.2f} s after `heartml rollback` returned")

    # The registry goes away: the last good model keeps serving and /model/info says so.
    registered.server.stop()
    try:
        wait_until(
            lambda: model_info(server)["registry"]["state"] == "unreachable",
            10,
            "registry unreachable in /model/info",
            server,
        )
        for _ in range(3 * int(1 / POLL_S)):  # several polls while it is down
            answer = httpx.post(f"{server.url}/predict", json=SEED_BODY, timeout=5)
            assert answer.status_code == 200 and answer.json()["model_version"] == "1"
            time.sleep(POLL_S / 2)
        assert httpx.get(f"{server.url}/ready").status_code == 200
        down = model_info(server)["registry"]
        assert "model registry unreachable" in down["detail"] and down["last_ok_at"]
        assert "\nheartml_registry_up 0.0\n" in httpx.get(f"{server.url}/metrics").text
    finally:
        registered.server.start()
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    said = [line for line in lines if line["message"].startswith("model registry unreachable")]
    assert len(said) == 1, [line.get("reason") for line in said]  # once, not once per poll
    assert said[0]["level"] == "WARNING" and "exception" not in said[0]
    assert "still serving version 1" in said[0]["message"]

    # Back: it follows again.
    wait_until(lambda: model_info(server)["registry"]["state"] == "ok", 15, "registry ok", server)
    assert "\nheartml_registry_up 1.0\n" in httpx.get(f"{server.url}/metrics").text
    moved = registered.project.run("heartml", "rollback", timeout=120)
    assert moved.returncode == 0, describe(moved)
    wait_until(lambda: model_info(server)["version"] == "2", 2 * POLL_S + 3, "version 2", server)

    server.stop()
    imported = {name.split(".")[0] for name in json.loads(modules_report.read_text())}
    assert "httpx" in imported and "onnxruntime" in imported
    assert not imported & {"mlflow", "sklearn", "pandas"}, sorted(
        imported & {"mlflow", "sklearn", "pandas"}
    )


def test_champion_without_a_package_is_reported(
    registered: Registered, serve_registry: Callable[..., Server]
) -> None:
    """A champion nobody packaged: not ready, and /ready says which version lacks a package."""
    client = registry_client(registered.server.url)
    challenger = registered.challenger
    client.set_registered_model_alias(challenger, "unpackaged", "1")
    server = serve_registry(HEARTML_REGISTRY_MODELS=challenger, HEARTML_CHAMPION_ALIAS="unpackaged")
    try:
        wait_until(
            lambda: "has no package" in str(httpx.get(f"{server.url}/ready").json()["detail"]),
            15,
            "the missing package in /ready",
            server,
        )
        ready = httpx.get(f"{server.url}/ready")
        assert ready.status_code == 503
        assert f"{challenger} version 1 has no package yet" in ready.json()["detail"]
    finally:
        client.delete_registered_model_alias(challenger, "unpackaged")


# --------------------------------------------------------------------------------------------
# 3. A challenger in shadow, and its promotion through the gate


def metric_values(server: Server) -> dict[str, float]:
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("heartml_shadow_"):
                label = sample.labels.get("model")
                out[sample.name + (f":{label}" if label else "")] = sample.value
    return out


def test_the_challenger_alias_is_scored_in_shadow(
    registered: Registered, serve_registry: Callable[..., Server]
) -> None:
    client = registry_client(registered.server.url)
    champion, challenger = registered.champion, registered.challenger
    server = serve_registry()
    assert server.wait_ready()["model_version"] == "2"
    assert model_info(server)["shadow"] is None
    client.set_registered_model_alias(challenger, "challenger", "2")
    try:
        wait_until(lambda: model_info(server)["shadow"] is not None, 15, "the challenger", server)
        frame, records = rows_and_records(registered.project)
        for record in records:  # one request per row, as clients send them
            assert httpx.post(f"{server.url}/predict", json=record).status_code == 200
        wait_until(
            lambda: metric_values(server).get("heartml_shadow_compared_total") == len(records),
            15,
            "every row compared",
            server,
        )
        values = metric_values(server)

        # Offline, on the same rows: the two registered versions' packaged pipelines.
        def decided(name: str) -> tuple[np.ndarray, float]:
            package = registered.package(name, "2")
            pipeline = joblib.load(package / "model.joblib")
            return pipeline.predict_proba(frame)[:, 1], float(manifest_of(package)["threshold"])

        (p_a, t_a), (p_b, t_b) = decided(champion), decided(challenger)
        agreement = float(np.mean((p_a >= t_a) == (p_b >= t_b)))
        mean_difference = float(np.mean(np.abs(p_a - p_b)))
        assert values["heartml_shadow_agreement_ratio"] == pytest.approx(agreement, abs=1e-12)
        assert values["heartml_shadow_abs_difference_mean"] == pytest.approx(
            mean_difference, abs=1e-6
        )
        assert values["heartml_shadow_predictions_total:champion"] == len(records)
        assert values["heartml_shadow_predictions_total:challenger"] == len(records)
        assert values["heartml_shadow_errors_total"] == values["heartml_shadow_dropped_total"] == 0
        shadow = model_info(server)["shadow"]
        assert (shadow["challenger"]["name"], shadow["challenger"]["version"]) == (challenger, "2")
        assert shadow["agreement_rate"] == pytest.approx(agreement, abs=1e-12)
        print(f"shadow: agreement {agreement:.4f}, mean |Δp| {mean_difference:.4f}")
    finally:
        client.delete_registered_model_alias(challenger, "challenger")
    wait_until(lambda: model_info(server)["shadow"] is None, 15, "the shadow removed", server)
    assert httpx.post(f"{server.url}/predict", json=SEED_BODY).status_code == 200


def test_promote_challenger_goes_through_the_gate(registered: Registered) -> None:
    """Last in the module: it moves the champion alias."""
    client = registry_client(registered.server.url)
    champion, challenger = registered.champion, registered.challenger
    project = registered.project
    client.set_registered_model_alias(challenger, "challenger", "2")

    # The challenger is a model the same run ranked below the champion: the gate keeps it.
    kept = project.run("heartml", "champion", "--promote-challenger", timeout=120)
    assert kept.returncode == 1, describe(kept)
    assert f"challenger {challenger} version 2: kept the champion" in kept.stdout, kept.stdout
    assert str(client.get_registered_model(champion).aliases["champion"]) == "2"
    assert str(client.get_registered_model(challenger).aliases["challenger"]) == "2"
    run = client.get_run(client.get_model_version(challenger, "2").run_id)
    assert run.data.tags["promotion.decision"] == "kept"

    # With no champion the gate has nothing to compare with: the challenger is promoted, and
    # the alias it held is given up.
    client.delete_registered_model_alias(champion, "champion")
    promoted = project.run("heartml", "champion", "--promote-challenger", timeout=120)
    assert promoted.returncode == 0, describe(promoted)
    assert "promoted: no champion yet" in promoted.stdout, promoted.stdout
    aliases = client.get_registered_model(challenger).aliases
    assert str(aliases["champion"]) == "2" and "challenger" not in aliases
    nobody = project.run("heartml", "champion", "--promote-challenger", timeout=120)
    assert nobody.returncode == 2 and "no version holds the alias 'challenger'" in nobody.stderr
