"""Real services for the integration and reliability tests: PostgreSQL, `mlflow server`, tmp
projects, `heartml serve` and a load of concurrent /predict requests.

PostgreSQL: `HEARTML_TEST_POSTGRES_URL` (what .ci/run exports) or a throwaway cluster made with
Debian's binaries. Every mlflow server gets a fresh database on it, runs in its own process
group (its job consumers outlive a plain kill) and is stopped by killing that group.

Projects are temporary folders laid out like the repository (data/raw, configs, and `src` linked
to the repository's), so the seed's commands run verbatim with the project as working directory.
Training is done once per session (`heartml data` + `heartml train`, the Task 1-2 user flow) and
copied into each project; `experiment_tracking.py` then reuses it as it does for a user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from heartml.spec import load_spec

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PYTHON = str(VENV_BIN / "python")
HEARTML = str(VENV_BIN / "heartml")
MLFLOW = str(VENV_BIN / "mlflow")
ALGORITHMS = ("random_forest", "logistic_regression", "gradient_boosting", "svm")
RAW_FEATURES = load_spec(REPO_ROOT / "configs" / "datasets" / "uci_heart.yaml").raw_names
MODEL_NAMES = tuple(f"heart_disease_{a}" for a in ALGORITHMS)
BACKENDS = ("embedded", "server")  # the embedded SQLite store; mlflow server on PostgreSQL
SERVER_START_TIMEOUT_S = 90
POSTGRES_URL_ENV = "HEARTML_TEST_POSTGRES_URL"


# --------------------------------------------------------------------------------------------
# Helpers


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


# --------------------------------------------------------------------------------------------
# PostgreSQL


def _postgres_bin() -> Path:
    versions = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").is_file()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not versions:
        pytest.fail(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): "
            "apt-get install postgresql, or set HEARTML_TEST_POSTGRES_URL to a running server",
            pytrace=False,
        )
    return versions[-1]


@dataclass
class Postgres:
    """A PostgreSQL server; `create_database()` returns the URL of a fresh, empty database."""

    admin_url: str
    created: list[str] = field(default_factory=list)

    def connect(self) -> Any:
        import psycopg2

        connection = psycopg2.connect(self.admin_url, connect_timeout=10)
        connection.autocommit = True
        return connection

    def create_database(self) -> str:
        name = f"heartml_test_{uuid.uuid4().hex[:10]}"
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        self.created.append(name)
        url = urllib.parse.urlsplit(self.admin_url)._replace(path=f"/{name}")
        if url.scheme in ("postgres", "postgresql"):
            # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; the project ships psycopg2.
            url = url._replace(scheme="postgresql+psycopg2")
        return url.geturl()

    def drop_created(self) -> None:
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                for name in self.created:
                    cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            connection.close()


def _as_postgres_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[Postgres]:
    """initdb + pg_ctl start on a free loopback port (trust auth, no fsync); removed afterwards."""
    bin_dir = _postgres_bin()
    base = Path(tempfile.mkdtemp(prefix="heartml-pg-"))
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(base, account.pw_uid, account.pw_gid)
    data, log = base / "data", base / "postgres.log"
    port = free_port()
    pg_ctl = str(bin_dir / "pg_ctl")
    try:
        made = subprocess.run(
            _as_postgres_user(
                [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-N"]
            ),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if made.returncode != 0:
            pytest.fail(f"initdb failed:\n{made.stdout}\n{made.stderr}", pytrace=False)
        started = subprocess.run(
            _as_postgres_user(
                [
                    *(pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "60"),
                    *("-o", f"-k {base} -h 127.0.0.1 -p {port} -F", "start"),
                ]
            ),
            capture_output=True,
            text=True,
            timeout=90,
        )
        if started.returncode != 0:
            pytest.fail(f"PostgreSQL did not start:\n{started.stderr}\n{tail(log)}", pytrace=False)
        yield Postgres(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                _as_postgres_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# mlflow server


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


# --------------------------------------------------------------------------------------------
# Projects


def small_config_text() -> str:
    """The shipped config, shrunk so the four models train in seconds (same keys, tiny grids)."""
    raw = yaml.safe_load((REPO_ROOT / "configs" / "pipeline.yaml").read_text())
    raw["evaluation"].update(cv_folds=3, cv_repeats=2, permutation_repeats=2)
    raw["tuning"].update(cv_folds=3, cv_repeats=1)
    models = raw["models"]
    models["logistic_regression"]["search_space"] = {"C": [0.1, 1.0]}
    models["random_forest"]["params"]["n_estimators"] = 30
    models["random_forest"]["search_space"] = {"max_depth": [3, None]}
    models["gradient_boosting"]["params"]["n_estimators"] = 30
    models["gradient_boosting"]["search_space"] = {"max_depth": [2, 3]}
    models["svm"]["search_space"] = {"C": [0.3, 1.0]}
    return yaml.safe_dump(raw, sort_keys=False)


def new_project(root: Path) -> Path:
    """data/raw, the dataset specs, the small config, and `src` linked to the repository's (for
    the seed scripts)."""
    root.mkdir(parents=True)
    shutil.copytree(REPO_ROOT / "data" / "raw", root / "data" / "raw")
    shutil.copytree(REPO_ROOT / "configs" / "datasets", root / "configs" / "datasets")
    (root / "configs" / "pipeline.yaml").write_text(small_config_text())
    (root / "src").symlink_to(REPO_ROOT / "src", target_is_directory=True)
    return root


@dataclass
class Project:
    """A project folder and the tracking store its commands use (None: the embedded store)."""

    root: Path
    tracking_uri: str | None = None

    @property
    def env(self) -> dict[str, str]:
        return subprocess_env(self.tracking_uri)

    @property
    def store_uri(self) -> str:
        return self.tracking_uri or f"sqlite:///{self.root / 'mlflow.db'}"

    def run(
        self, *command: str, timeout: float = 300, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """A command as a user types it in the project folder: `python src/...` or `heartml ...`."""
        argv = list(command)
        if argv[0] == "python":
            argv[0] = PYTHON
        elif argv[0] == "heartml":
            argv[0] = HEARTML
        return subprocess.run(
            argv,
            cwd=self.root,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def popen(self, *command: str) -> subprocess.Popen[str]:
        argv = [PYTHON if command[0] == "python" else command[0], *command[1:]]
        return subprocess.Popen(
            argv,
            cwd=self.root,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def track(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        result = self.run("python", "src/experiment_tracking.py", *args, timeout=timeout)
        assert result.returncode == 0, describe(result)
        return result


@dataclass
class TrackedTwice:
    """A project after two `python src/experiment_tracking.py` runs on the same data/config."""

    backend: str
    project: Project
    first: Any  # CompletedProcess of each run
    second: Any
    snapshot: dict[str, Any]  # the registry right after the second run


def describe(result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"{' '.join(map(str, result.args))} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
    )


TRAINED_OUTPUTS = ("data/processed", "models", "reports")  # what Task 1-2 leave behind


# --------------------------------------------------------------------------------------------
# Reading the registry (directly with MLflow's client, independent of heartml.tracking)


def registry_client(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def registry_snapshot(uri: str) -> dict[str, Any]:
    """Every version of the four models: number, run, tags, timestamps and aliases."""
    client = registry_client(uri)
    snapshot: dict[str, Any] = {}
    for model in client.search_registered_models():
        versions = client.search_model_versions(f"name='{model.name}'")
        snapshot[model.name] = {
            # str(): the SQLite store answers alias versions as int, the REST client as str.
            "aliases": {alias: str(number) for alias, number in model.aliases.items()},
            "versions": {
                str(v.version): {
                    "run_id": v.run_id,
                    "tags": dict(v.tags),
                    "last_updated": v.last_updated_timestamp,
                }
                for v in versions
            },
        }
    return snapshot


def champions(uri: str) -> list[tuple[str, str]]:
    """(model name, version) of every version holding the alias `champion`."""
    client = registry_client(uri)
    return [
        (model.name, str(model.aliases["champion"]))
        for model in client.search_registered_models()
        if "champion" in model.aliases
    ]


# --------------------------------------------------------------------------------------------
# `heartml serve` (shared by test_serving_http.py and tests/reliability/)

SEED_BODY: dict[str, Any] = {
    "age": 63,
    "sex": 1,
    "cp": 1,
    "trestbps": 145,
    "chol": 233,
    "fbs": 1,
    "restecg": 2,
    "thalach": 150,
    "exang": 0,
    "oldpeak": 2.3,
    "slope": 3,
    "ca": 0,
    "thal": 6,
}
SERVE_START_TIMEOUT_S = 60


@dataclass
class Server:
    """`heartml serve` in `root` (its packages/ folder), on a free port, own process group.

    `command` replaces the `heartml` executable (e.g. a Python wrapper that installs an audit
    hook first); `serve --port N` and `args` follow it.
    """

    root: Path
    env: dict[str, str]
    args: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    command: tuple[str, ...] = (HEARTML,)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self.root / "serve.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        import json

        return [json.loads(line) for line in self.log().splitlines() if line.startswith("{")]

    def start(self) -> Server:
        import httpx

        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*self.command, "serve", "--port", str(self.port), *self.args],
                cwd=self.root,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + SERVE_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"heartml serve exited:\n{tail(self.log_path)}", pytrace=False)
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"heartml serve not healthy:\n{tail(self.log_path)}", pytrace=False)

    def wait_ready(self, timeout: float = SERVE_START_TIMEOUT_S) -> dict[str, Any]:
        import httpx

        deadline = time.monotonic() + timeout
        while True:
            response = httpx.get(f"{self.url}/ready", timeout=2)
            if response.status_code == 200:
                return dict(response.json())
            if time.monotonic() > deadline:
                pytest.fail(f"not ready: {response.json()}\n{tail(self.log_path)}", pytrace=False)
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            kill_group(self.process)


def launch_server(
    root: Path,
    packages: tuple[Path, ...] = (),
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    command: tuple[str, ...] = (HEARTML,),
) -> Server:
    """Copy `packages` into root/packages and start `heartml serve` there, with `env` (HEARTML_*
    settings, MLFLOW_TRACKING_URI) on top of the clean subprocess environment."""
    (root / "packages").mkdir(parents=True, exist_ok=True)
    for package in packages:
        shutil.copytree(package, root / "packages" / package.name)
    return Server(root, subprocess_env(**(env or {})), args, command=command).start()


@dataclass(frozen=True)
class Outcome:
    """One request of a `Load`: status (0: no response), model, client-side times, and which
    body (row) was sent with the probability answered for it."""

    status: int
    version: str | None
    started: float  # time.monotonic()
    finished: float
    error: str | None = None
    row: int = 0  # index into Load.bodies
    probability: float | None = None
    model_name: str | None = None


@dataclass
class Load:
    """Threads sending POST /predict without pause, recording every outcome. Each thread walks
    through `bodies` (default: the seed's body alone) from its own starting point."""

    url: str
    threads: int = 4
    bodies: list[dict[str, Any]] = field(default_factory=lambda: [dict(SEED_BODY)])
    stop: threading.Event = field(default_factory=threading.Event)
    results: list[Outcome] = field(default_factory=list)
    _workers: list[threading.Thread] = field(default_factory=list)

    @property
    def errors(self) -> list[Outcome]:
        return [outcome for outcome in self.results if outcome.error is not None]

    def _run(self, offset: int) -> None:
        import httpx

        with httpx.Client(base_url=self.url, timeout=10) as http:
            sent = offset
            while not self.stop.is_set():
                row = sent % len(self.bodies)
                sent += 1
                started = time.monotonic()
                try:
                    response = http.post("/predict", json=self.bodies[row])
                    body = response.json()
                    outcome = Outcome(
                        response.status_code,
                        body.get("model_version"),
                        started,
                        time.monotonic(),
                        row=row,
                        probability=body.get("probability"),
                        model_name=body.get("model_name"),
                    )
                except Exception as exc:  # a failed request is what the tests look for
                    outcome = Outcome(0, None, started, time.monotonic(), repr(exc), row=row)
                self.results.append(outcome)

    def __enter__(self) -> Load:
        step = max(1, len(self.bodies) // self.threads)
        self._workers = [
            threading.Thread(target=self._run, args=(i * step,)) for i in range(self.threads)
        ]
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for worker in self._workers:
            worker.join(timeout=30)


def records_of(frame: Any) -> list[dict[str, Any]]:
    """DataFrame rows -> /predict bodies (the spec's raw columns; a missing value as null)."""
    values = frame[list(RAW_FEATURES)].astype(object).where(frame[list(RAW_FEATURES)].notna(), None)
    return [dict(zip(RAW_FEATURES, row, strict=True)) for row in values.itertuples(index=False)]


def offline_probabilities(package: Path, frame: Any) -> Any:
    """P(class=1) of every row by the package's sklearn pipeline (model.joblib, loaded only after
    its sha256 matched the MANIFEST): the oracle for what the service answers."""
    import hashlib
    import json

    import joblib

    manifest = json.loads((package / "MANIFEST.json").read_text())
    digest = hashlib.sha256((package / "model.joblib").read_bytes()).hexdigest()
    assert digest == manifest["files"]["model.joblib"]["sha256"], package
    return joblib.load(package / "model.joblib").predict_proba(frame[list(RAW_FEATURES)])[:, 1]


def check_answers_follow_the_model(
    outcomes: list[Outcome], expected: dict[tuple[str, str], Any], tolerance: float = 1e-5
) -> dict[tuple[str, str], int]:
    """Every answer's probability is the offline probability, for the row it was sent with, of
    the model (name, version) it says answered it; returns the answers per model."""
    counted: dict[tuple[str, str], int] = {}
    wrong = []
    for outcome in outcomes:
        key = (str(outcome.model_name), str(outcome.version))
        assert key in expected, f"answer from an unexpected model {key}"
        assert outcome.probability is not None
        if abs(outcome.probability - float(expected[key][outcome.row])) > tolerance:
            wrong.append((key, outcome.row, outcome.probability, float(expected[key][outcome.row])))
        counted[key] = counted.get(key, 0) + 1
    assert not wrong, f"{len(wrong)} answers are not their model's probability: {wrong[:5]}"
    return counted
