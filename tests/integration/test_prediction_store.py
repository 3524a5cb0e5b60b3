"""The prediction store end to end: real `heartml serve` processes over real HTTP, the store on
SQLite and on a real PostgreSQL (tests/integration/conftest.py's), two replicas on one database,
the database deleted / read-only / dropped under load, and the command line (`heartml score
--record`, `heartml feedback`).

The served package is a real one (ONNX graph, dataset spec, checksummed MANIFEST) written by
tests/serving_packages.py from a logistic regression fitted on the Cleveland rows. Oracles:
scikit-learn's roc_auc_score on the probabilities the API answered, and the rows counted in the
database by its own driver (sqlite3, psycopg2).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from harness.postgres import Postgres
from harness.processes import HEARTML, subprocess_env
from harness.projects import describe
from harness.serve import SEED_BODY, Load, Server, launch_server
from prometheus_client.parser import text_string_to_metric_families
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from heartml.spec import TARGET
from serving_packages import fit, heart_spec, read_source, records_of, write_package
from stored_predictions import stored_count

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.monitoring]

SPEC = heart_spec()
STORE_ENV = {
    "HEARTML_STORE_FLUSH_INTERVAL_S": "0.1",
    "HEARTML_SERVE_ACCESS_LOG": "false",
    "HEARTML_SERVE_RELOAD_INTERVAL_S": "0",
    "HEARTML_MONITOR_REFRESH_S": "0.5",
}


@pytest.fixture(scope="module")
def cleveland() -> pd.DataFrame:
    return read_source(SPEC)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory, cleveland: pd.DataFrame) -> Path:
    out = tmp_path_factory.mktemp("store-packages")
    model = fit(SPEC, cleveland, LogisticRegression(max_iter=2000))
    return write_package(out, SPEC, model, cleveland)


@pytest.fixture
def serve(tmp_path: Path, package: Path) -> Iterator[Callable[..., Server]]:
    """serve(root=tmp_path, **env) -> a ready `heartml serve` with the package; all stopped."""
    servers: list[Server] = []

    def start(root: Path | None = None, **env: str) -> Server:
        root = root or tmp_path
        server = launch_server(
            root, () if (root / "packages" / package.name).exists() else (package,),
            env={**STORE_ENV, **env},
        )  # fmt: skip
        servers.append(server)
        server.wait_ready()
        return server

    yield start
    for server in servers:
        server.stop()


def metric(url: str, name: str, **labels: str) -> float:
    """One sample of the server's /metrics (NaN when absent)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return float("nan")


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


# ------------------------------------------------------------------------------------------
# End to end: 303 rows in, their outcomes back, the live AUC is sklearn's


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_live_auc_of_the_cleveland_rows_equals_sklearn(
    backend: str,
    serve: Callable[..., Server],
    postgres: Postgres,
    cleveland: pd.DataFrame,
    tmp_path: Path,
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'monitoring' / 'predictions.db'}"
        if backend == "sqlite"
        else postgres.create_database()
    )
    env = {} if backend == "sqlite" else {"HEARTML_STORE_URL": url}
    server = serve(**env)
    bodies = records_of(cleveland, SPEC.raw_names)
    outcomes = cleveland[TARGET].astype(int).tolist()
    assert len(bodies) == 303
    answers = []
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for body in bodies:
            response = http.post("/predict", json=body)
            assert response.status_code == 200, response.text
            answers.append(response.json())
        feedback = http.post(
            "/feedback",
            json=[{"request_id": a["request_id"], "outcome": y} for a, y in zip(answers, outcomes, strict=True)],
        )  # fmt: skip
        assert feedback.status_code == 200, feedback.text
        assert feedback.json()["recorded"] == 303
        report = http.get("/monitoring/performance").json()
    (version,) = report["versions"]
    probabilities = [a["probability"] for a in answers]
    assert version["labelled"]["count"] == 303 and version["unlabelled"]["count"] == 0
    assert abs(version["labelled"]["roc_auc"] - roc_auc_score(outcomes, probabilities)) <= 1e-9
    assert stored_count(url) == 303
    wait_until(
        lambda: metric(server.url, "heartml_live_labels", model_version="1") == 303,
        10,
        "the gauges' refresh",
    )
    assert metric(server.url, "heartml_live_roc_auc", model_version="1") == pytest.approx(
        roc_auc_score(outcomes, probabilities), abs=1e-9
    )


# ------------------------------------------------------------------------------------------
# Two replicas, one PostgreSQL


def _send(url: str, count: int, prefix: str, sent: list[str], errors: list[str]) -> None:
    with httpx.Client(base_url=url, timeout=10) as http:
        for i in range(count):
            request_id = f"{prefix}-{i}"
            try:
                response = http.post(
                    "/predict", json=SEED_BODY, headers={"X-Request-ID": request_id}
                )
                if response.status_code == 200:
                    sent.append(request_id)
                else:
                    errors.append(f"{response.status_code} {response.text}")
            except httpx.HTTPError as exc:
                errors.append(repr(exc))


def test_two_api_processes_on_one_postgresql_lose_no_prediction(
    serve: Callable[..., Server], postgres: Postgres, tmp_path: Path
) -> None:
    url = postgres.create_database()
    # A 5 s flush: the replicas' inserts interleave during the load, and the predictions of its
    # last seconds are still queued when the replicas stop (the graceful stop must write them).
    replicas = [
        serve(tmp_path / f"replica{i}", HEARTML_STORE_URL=url, HEARTML_STORE_FLUSH_INTERVAL_S="5")
        for i in range(2)
    ]
    sent: list[str] = []
    errors: list[str] = []
    threads = [
        threading.Thread(target=_send, args=(replica.url, 1000, f"r{n}t{t}", sent, errors))
        for n, replica in enumerate(replicas)
        for t in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(sent) == 6000
    queued = [metric(replica.url, "heartml_store_queue_rows") for replica in replicas]
    for replica in replicas:  # a graceful stop writes what is still queued
        replica.stop()
    import psycopg2

    with (
        contextlib.closing(psycopg2.connect(url.replace("+psycopg2", ""))) as db,
        db.cursor() as cursor,
    ):
        cursor.execute("SELECT request_id FROM predictions")
        stored = [row[0] for row in cursor.fetchall()]
    assert len(stored) == 6000 and set(stored) == set(sent)
    assert sum(queued) > 0  # the stop had rows to write (else the check above proves less)


# ------------------------------------------------------------------------------------------
# Faults under load: /predict never fails; drops are counted; the writer comes back


def make_read_only(path: Path) -> Callable[[], None]:
    """Make a file or folder read-only even for root (chattr +i), or by its mode; returns undo."""
    if os.geteuid() == 0 and shutil.which("chattr"):
        subprocess.run(["chattr", "+i", str(path)], check=True)
        return lambda: subprocess.run(["chattr", "-i", str(path)], check=True) and None
    mode = path.stat().st_mode
    path.chmod(0o555 if path.is_dir() else 0o444)
    return lambda: path.chmod(mode)


def under_load(server: Server, fault: Callable[[], None], repair: Callable[[], None]) -> None:
    """Load -> fault (until drops are counted and the store is down) -> repair (until the
    writer writes again); every /predict of the load answered 200."""
    written = lambda: metric(server.url, "heartml_store_written_rows_total")  # noqa: E731
    dropped = lambda: metric(server.url, "heartml_store_dropped_rows_total", reason="queue_full")  # noqa: E731
    with Load(server.url, threads=4) as load:
        wait_until(lambda: written() > 200, 30, "rows written before the fault")
        fault()
        wait_until(lambda: metric(server.url, "heartml_store_up") == 0, 30, "the store down")
        wait_until(lambda: dropped() > 0, 30, "dropped rows counted")
        # The outage does not slow the answers down (a writer that waited for room on the
        # request path would): 300 more answers come within 30 s, their rows dropped.
        answered = len(load.results)
        wait_until(lambda: len(load.results) > answered + 300, 30, "answers during the outage")
        lost = dropped()
        repair()
        wait_until(lambda: metric(server.url, "heartml_store_up") == 1, 30, "the store back")
        after_repair = written()
        wait_until(lambda: written() > after_repair + 200, 30, "rows written after the repair")
    assert load.errors == [], load.errors[:3]
    statuses = {outcome.status for outcome in load.results}
    assert statuses == {200}, statuses
    assert len(load.results) > 500
    assert lost > 300
    log = server.log()
    assert "prediction store unavailable" in log and "prediction store available again" in log


def test_sqlite_store_deleted_under_load(serve: Callable[..., Server], tmp_path: Path) -> None:
    server = serve(HEARTML_STORE_QUEUE_ROWS="200")
    folder = tmp_path / "monitoring"

    def delete() -> None:
        # Renamed away first: one atomic step, so the writer cannot recreate a file in the
        # folder while it is being emptied.
        gone = folder.rename(tmp_path / "deleted")
        shutil.rmtree(gone)

    under_load(server, delete, lambda: folder.mkdir())
    assert stored_count(f"sqlite:///{folder / 'predictions.db'}") > 200  # a new file, migrated


def test_sqlite_store_read_only_under_load(serve: Callable[..., Server], tmp_path: Path) -> None:
    server = serve(HEARTML_STORE_QUEUE_ROWS="200")
    database = tmp_path / "monitoring" / "predictions.db"
    undo: list[Callable[[], None]] = []
    counted: list[int] = []

    def fault() -> None:
        counted.append(stored_count(f"sqlite:///{database}"))
        undo.append(make_read_only(database))
        undo.append(make_read_only(database.parent))

    def repair() -> None:
        while undo:
            undo.pop()()

    try:
        under_load(server, fault, repair)
        assert stored_count(f"sqlite:///{database}") > counted[0]
    finally:
        repair()


def test_postgresql_store_read_only_then_dropped_under_load(
    serve: Callable[..., Server], postgres: Postgres
) -> None:
    url = postgres.create_database()
    name = url.rsplit("/", 1)[1]
    server = serve(HEARTML_STORE_URL=url, HEARTML_STORE_QUEUE_ROWS="200")

    def admin(*statements: str) -> None:
        connection = postgres.connect()
        try:
            with connection.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
        finally:
            connection.close()

    kick = f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    under_load(
        server,
        lambda: admin(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on', kick),
        lambda: admin(f'ALTER DATABASE "{name}" SET default_transaction_read_only = off', kick),
    )
    assert "read-only transaction" in server.log()  # the fault the writer met, named
    under_load(
        server,
        lambda: admin(f'DROP DATABASE "{name}" WITH (FORCE)'),
        lambda: admin(f'CREATE DATABASE "{name}"'),  # back empty: the writer migrates it
    )
    assert f'database \\"{name}\\" does not exist' in server.log()
    assert stored_count(url) > 200


# ------------------------------------------------------------------------------------------
# The command line: batch rows recorded, their outcomes from a CSV file


def test_score_record_and_feedback_from_the_command_line(
    tmp_path: Path, package: Path, cleveland: pd.DataFrame
) -> None:
    env = subprocess_env()

    def heartml(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [HEARTML, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )

    source = Path(SPEC.source.shipped_copy or "")
    scored = heartml(
        "score", "-i", str(Path(__file__).resolve().parents[2] / source), "-o", "scored.csv",
        "--package", str(package), "--record",
    )  # fmt: skip
    assert scored.returncode == 0, describe(scored)
    request_id = scored.stdout.split("as request_id ")[1].split()[0]
    output = pd.read_csv(tmp_path / "scored.csv")
    outcomes = pd.DataFrame(
        {
            "request_id": request_id,
            "row": output["row"],
            # the output's row is the input's 1-based data row: the same order as `cleveland`
            "outcome": cleveland[TARGET].astype(int).to_numpy()[output["row"] - 1],
        }
    )
    outcomes.to_csv(tmp_path / "outcomes.csv", index=False)
    recorded = heartml("feedback", "--input", "outcomes.csv")
    assert recorded.returncode == 0, describe(recorded)
    assert "303 outcomes: 303 recorded" in recorded.stdout
    flipped = outcomes.assign(outcome=1 - outcomes["outcome"]).head(2)
    flipped.to_csv(tmp_path / "flipped.csv", index=False)
    refused = heartml("feedback", "--input", "flipped.csv")
    assert (
        refused.returncode == 2 and "2 predictions already have the other outcome" in refused.stderr
    )
    assert "--overwrite" in refused.stderr
    status = heartml("store", "status")
    assert "303 predictions, 303 with an outcome" in status.stdout, describe(status)
    with contextlib.closing(sqlite3.connect(tmp_path / "monitoring" / "predictions.db")) as db:
        stored = db.execute(
            "SELECT row, probability, outcome, source FROM predictions ORDER BY row"
        ).fetchall()
    assert [r[0] for r in stored] == output["row"].tolist()
    assert np.allclose([r[1] for r in stored], output["probability"], rtol=0, atol=1e-15)
    assert [r[2] for r in stored] == outcomes["outcome"].tolist()
    assert {r[3] for r in stored} == {"batch"}
