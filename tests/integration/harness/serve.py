"""`heartml serve` on a free port, a load of concurrent /predict requests, and the check that
answers follow the model (shared by the integration and reliability tests)."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.processes import HEARTML, free_port, kill_group, subprocess_env, tail
from harness.projects import RAW_FEATURES

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
