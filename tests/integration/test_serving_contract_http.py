"""The served contract over real HTTP: `heartml serve` (uvicorn) on a free port, in its own
process group, serving packages that carry their dataset spec (tests/serving_packages.py: the
pipeline fitted here from the spec, exported to ONNX, checksummed).

- Records with unknown fields (a whole exercise test, fbs) are scored, the imputed fields are
  named, and the probability is the offline sklearn pipeline's.
- The watcher's hot reload from a heart package to a package whose spec adds a required column
  switches /openapi.json, validation and /model/info together, with one log line.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from integration_helpers import Server, launch_server, tail
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from heartml.spec import DatasetSpec, rules
from serving_packages import fit, heart_spec, read_source, with_extra_column, write_package

pytestmark = [pytest.mark.serving, pytest.mark.integration, pytest.mark.slow]

POLL_S = 0.5
SPEC = heart_spec()
SEED = SPEC.example_record()
EXERCISE_TEST = ("slope", "oldpeak", "thalach", "exang")
SMOKER = {
    "kind": "binary",
    "label": "Current smoker",
    "description": "Smokes now (1 = yes)",
    "codes": {0: "no", 1: "yes"},
    "required": True,
    "example": 1,
    "group": "Patient",
}


def offline(pipeline: Any, spec: DatasetSpec, body: dict[str, Any]) -> float:
    row = {n: math.nan if body[n] is None else float(body[n]) for n in spec.raw_names}
    return float(pipeline.predict_proba(pd.DataFrame([row])[list(spec.raw_names)])[0, 1])


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return read_source(SPEC)


@pytest.fixture(scope="module")
def stash(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("contract-packages")


@pytest.fixture(scope="module")
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(packages: tuple[Path, ...] = (), **env: str) -> Server:
        settings = {"HEARTML_SERVE_RELOAD_INTERVAL_S": str(POLL_S), **env}
        server = launch_server(tmp_path_factory.mktemp("serve-root"), packages, (), settings)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.mark.parametrize(
    ("algorithm", "estimator", "tolerance"),
    [
        ("logistic_regression", LogisticRegression(max_iter=2000), 1e-9),
        ("random_forest", RandomForestClassifier(n_estimators=50, random_state=0), 1e-6),
    ],
)
def test_unknown_fields_over_http(
    algorithm: str,
    estimator: Any,
    tolerance: float,
    frame: pd.DataFrame,
    stash: Path,
    start_server: Callable[..., Server],
) -> None:
    pipeline = fit(SPEC, frame, estimator)
    package = write_package(stash / algorithm, SPEC, pipeline, frame, algorithm=algorithm)
    server = start_server((package,))
    server.wait_ready()
    bodies = {
        "no exercise test": {**SEED, **dict.fromkeys(EXERCISE_TEST)},
        "no fbs": {**SEED, "fbs": None},
    }
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for case, body in bodies.items():
            unknown = [name for name in SPEC.raw_names if body[name] is None]
            expected = offline(pipeline, SPEC, body)
            answer = http.post("/predict", json=body).json()
            assert answer["imputed_fields"] == unknown, (case, answer)
            assert "less certain" in answer["note"], (case, answer)
            assert abs(answer["probability"] - expected) <= tolerance, (case, answer, expected)
            batch = http.post("/predict/batch", json={"records": [SEED, body]}).json()
            assert [r["imputed_fields"] for r in batch["results"]] == [[], unknown]
            assert abs(batch["results"][1]["probability"] - expected) <= tolerance
        left_out = {k: v for k, v in SEED.items() if k != "fbs"}
        refused = http.post("/predict", json=left_out)
        assert refused.status_code == 422
        assert [(d["field"], d["type"]) for d in refused.json()["detail"]] == [("fbs", "missing")]
        bad = http.post("/predict", json={**SEED, "thalach": 20}).json()["detail"][0]
        assert bad["message"] == rules.problem_message(
            SPEC.columns["thalach"], rules.NOT_ALLOWED, 20
        )


def test_hot_reload_to_a_spec_with_a_new_column(
    frame: pd.DataFrame, stash: Path, start_server: Callable[..., Server]
) -> None:
    heart = write_package(
        stash / "heart",
        SPEC,
        fit(SPEC, frame, LogisticRegression(max_iter=2000)),
        frame,
        version="1",
    )
    extended = with_extra_column(SPEC, "smoker", SMOKER)
    rng = np.random.default_rng(1)
    smokers = frame.assign(
        smoker=np.where(rng.random(len(frame)) < 0.3 + 0.4 * frame["target"], 1.0, 0.0)
    )
    pipeline = fit(extended, smokers, LogisticRegression(max_iter=2000))
    smoker_package = write_package(stash / "smoker", extended, pipeline, smokers, version="2")

    server = start_server((heart,))
    server.wait_ready()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        schema = http.get("/openapi.json").json()["components"]["schemas"]["PatientRecord"]
        assert "smoker" not in schema["properties"]
        assert http.post("/predict", json=SEED).status_code == 200
        old_hash = http.get("/model/info").json()["spec_hash"]

        # As `heartml package` does: build beside, then one rename into packages/.
        staging = server.root / "packages" / f".staging-{smoker_package.name}"
        shutil.copytree(smoker_package, staging)
        staging.rename(server.root / "packages" / smoker_package.name)
        deadline = time.monotonic() + 10
        info = http.get("/model/info").json()
        while info["spec_hash"] == old_hash and time.monotonic() < deadline:
            time.sleep(0.05)
            info = http.get("/model/info").json()
        assert info["spec_hash"] == extended.spec_hash(), tail(server.log_path)
        assert info["version"] == "2"
        assert [field["name"] for field in info["fields"]] == [*SPEC.raw_names, "smoker"]

        schema = http.get("/openapi.json").json()["components"]["schemas"]["PatientRecord"]
        assert schema["properties"]["smoker"]["enum"] == [0, 1] and "smoker" in schema["required"]
        assert http.get("/docs").status_code == 200

        refused = http.post("/predict", json=SEED)
        assert refused.status_code == 422
        (item,) = refused.json()["detail"]
        assert (item["field"], item["type"]) == ("smoker", "missing")
        body = {**SEED, "smoker": 1}
        answer = http.post("/predict", json=body).json()
        assert abs(answer["probability"] - offline(pipeline, extended, body)) <= 1e-9

    # The log is written in blocks, flushed every FLUSH_INTERVAL_S: on a busy machine the line
    # may reach the file a little after the answers that followed the reload.
    deadline = time.monotonic() + 10
    while True:
        changed = [
            line
            for line in server.log_lines()
            if str(line["message"]).startswith("input contract changed")
        ]
        if changed or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(changed) == 1, server.log()
    assert changed[0]["added"] == ["smoker"] and changed[0]["removed"] == []
    assert changed[0]["message"].endswith("-> " + ", ".join([*SPEC.raw_names, "smoker"]))
