"""MLflow's scoring protocol and the Open Inference Protocol, against real servers and real
clients.

One project for the module (the session's trained template): `heartml track` registers the four
models in its embedded MLflow store, `heartml package` packages the champion and
`heartml package --model ... --version ...` the random forest (whose tree thresholds are float32
in ONNX: the least exact of the four). For each of the two registered versions, a real
`mlflow models serve -m models:/NAME/VERSION --env-manager local` and a real `heartml serve` of
its package run side by side on loopback, and:

- MLflow's own client (`ScoringServerClient`, which sends a DataFrame as `dataframe_split` with
  NaN for a missing value) and `requests` with MLflow's documented payloads (`dataframe_records`,
  `instances`, `inputs` as columns, CSV) give, for all 303 Cleveland rows (the 6 with a missing
  `ca` or `thal` included), the same numbers from both servers (<= 1e-6) and the same shape;
- a real Open Inference Protocol client (`tritonclient.http`) gets the probabilities and
  decisions of /predict for every row, in each tensor form, and its health and metadata calls
  succeed;
- bad input gets each protocol's envelope with this project's words, never a 500.

The rows come from the raw UCI file read with pandas alone (`?` = missing), not through heartml.
"""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import requests
from integration_helpers import (
    MLFLOW,
    REPO_ROOT,
    VENV_BIN,
    Project,
    Server,
    describe,
    free_port,
    kill_group,
    launch_server,
    subprocess_env,
    tail,
)

pytestmark = [pytest.mark.serving, pytest.mark.integration, pytest.mark.slow]

COLUMNS = ["age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalach", "exang",
           "oldpeak", "slope", "ca", "thal"]  # fmt: skip
TOLERANCE = 1e-6
MLFLOW_START_TIMEOUT_S = 180
RANDOM_FOREST = "heart_disease_random_forest"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """The 303 Cleveland rows, the UCI way: 14 headerless columns, `?` for missing."""
    raw = REPO_ROOT / "data" / "raw" / "processed.cleveland.data"
    data = pd.read_csv(raw, header=None, names=[*COLUMNS, "num"], na_values="?")
    assert len(data) == 303 and data[COLUMNS].isna().any(axis=1).sum() == 6
    return data[COLUMNS].astype("float64")


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {name: (None if pd.isna(value) else value) for name, value in row.items()}
        for row in frame.to_dict(orient="records")
    ]


@dataclass
class MlflowServe:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Pair:
    """One registered version: `mlflow models serve` of it, and `heartml serve` of its package."""

    name: str
    version: str
    mlflow: MlflowServe
    ours: Server


@pytest.fixture(scope="module")
def project(make_project: Callable[..., Project]) -> Project:
    project = make_project()
    for command in (
        ("heartml", "track"),
        ("heartml", "package"),
        ("heartml", "package", "--model", RANDOM_FOREST, "--version", "1"),
    ):
        result = project.run(*command)
        assert result.returncode == 0, describe(result)
    return project


def _package(project: Project, name: str) -> tuple[Path, str]:
    import json

    for folder in (project.root / "packages").iterdir():
        manifest = json.loads((folder / "MANIFEST.json").read_text())
        if manifest["model_name"] == name:
            return folder, str(manifest["version"])
    raise AssertionError(f"no package of {name} in {project.root / 'packages'}")


def _champion(project: Project) -> str:
    import json

    for folder in (project.root / "packages").iterdir():
        manifest = json.loads((folder / "MANIFEST.json").read_text())
        if manifest["model_uri"].endswith("@champion"):
            return str(manifest["model_name"])
    raise AssertionError("no champion package")


def start_mlflow_serve(project: Project, name: str, version: str) -> MlflowServe:
    port = free_port()
    env = subprocess_env(project.store_uri, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"  # it runs `uvicorn` by name
    log = project.root / f"mlflow-serve-{name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                *(MLFLOW, "models", "serve", "-m", f"models:/{name}/{version}"),
                *("--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)),
                *("--workers", "1"),
            ],
            cwd=project.root,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    served = MlflowServe(process, port, log)
    import time

    deadline = time.monotonic() + MLFLOW_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"mlflow models serve exited:\n{tail(log)}", pytrace=False)
        try:
            if httpx.get(f"{served.url}/ping", timeout=2).status_code == 200:
                return served
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    kill_group(process)
    pytest.fail(f"mlflow models serve not ready:\n{tail(log)}", pytrace=False)


@pytest.fixture(scope="module", params=["champion", RANDOM_FOREST])
def pair(
    request: pytest.FixtureRequest,
    project: Project,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Pair]:
    name = _champion(project) if request.param == "champion" else request.param
    package, version = _package(project, name)
    theirs = start_mlflow_serve(project, name, version)
    ours = launch_server(tmp_path_factory.mktemp("serve"), args=("--package", str(package)))
    try:
        ours.wait_ready()
        yield Pair(name, version, theirs, ours)
    finally:
        ours.stop()
        kill_group(theirs.process)


def predictions(response: requests.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["predictions"], body
    return np.asarray(body["predictions"], dtype=np.float64)


def payloads(frame: pd.DataFrame) -> dict[str, tuple[dict[str, str], bytes | dict[str, Any]]]:
    """MLflow's documented inputs for the frame (headers, body): JSON nulls where unknown."""
    json_type = {"Content-Type": "application/json"}
    rows = records(frame)
    columns = {name: [row[name] for row in rows] for name in COLUMNS}
    return {
        "dataframe_records": (json_type, {"dataframe_records": rows}),
        "instances": (json_type, {"instances": rows}),
        "inputs (columns)": (json_type, {"inputs": columns}),
        "csv": ({"Content-Type": "text/csv"}, frame.to_csv(index=False).encode()),
    }


def test_mlflow_formats_give_the_numbers_of_mlflow_models_serve(
    pair: Pair, frame: pd.DataFrame
) -> None:
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    # MLflow's own client: a DataFrame goes out as dataframe_split, NaN for a missing value.
    clients = {
        "mlflow": ScoringServerClient("127.0.0.1", pair.mlflow.port),
        "ours": ScoringServerClient("127.0.0.1", pair.ours.port),
    }
    answers = {side: client.invoke(frame).get_predictions() for side, client in clients.items()}
    theirs = np.asarray(answers["mlflow"], dtype=np.float64)
    assert theirs.shape == (303, 2)
    ours = np.asarray(answers["ours"], dtype=np.float64)
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() <= TOLERANCE
    missing = frame.isna().any(axis=1).to_numpy()
    assert np.abs(ours[missing] - theirs[missing]).max() <= TOLERANCE  # the 6 imputed rows

    for label, (headers, body) in payloads(frame).items():
        sent = {"data": body} if isinstance(body, bytes) else {"json": body}
        mlflow_numbers = predictions(
            requests.post(f"{pair.mlflow.url}/invocations", headers=headers, timeout=60, **sent)
        )
        our_numbers = predictions(
            requests.post(f"{pair.ours.url}/invocations", headers=headers, timeout=60, **sent)
        )
        assert our_numbers.shape == mlflow_numbers.shape == (303, 2), label
        assert np.abs(our_numbers - mlflow_numbers).max() <= TOLERANCE, label
        assert np.abs(our_numbers - theirs).max() <= TOLERANCE, label

    # One record per request (our micro-batched path), the first 40 rows and every unknown one.
    chosen = sorted({*range(40), *np.flatnonzero(missing).tolist()})
    for index in chosen:
        single = clients["ours"].invoke(frame.iloc[[index]]).get_predictions()
        assert np.abs(np.asarray(single, dtype=np.float64) - theirs[index]).max() <= TOLERANCE


def test_ping_and_version_as_mlflow_has_them(pair: Pair) -> None:
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    from heartml import __version__

    for port in (pair.mlflow.port, pair.ours.port):
        ScoringServerClient("127.0.0.1", port).ping()  # raises unless 200
    ours = ScoringServerClient("127.0.0.1", pair.ours.port)
    assert ours.get_version() == __version__
    ping = requests.get(f"{pair.ours.url}/ping", timeout=10)
    theirs = requests.get(f"{pair.mlflow.url}/ping", timeout=10)
    assert (ping.text, ping.headers["content-type"]) == (
        theirs.text,
        theirs.headers["content-type"],
    )


JSON = {"Content-Type": "application/json"}
SEED = [63, 1, 1, 145, 233, 1, 2, 150, 0, 2.3, 3, 0, 6]
# (case, body, headers, what MLflow's real server answers, our error_code, words in our message)
BAD_MLFLOW: list[tuple[str, Any, dict[str, str], int, str, tuple[str, ...]]] = [
    ("missing column", {"dataframe_split": {"columns": COLUMNS[:-1], "data": [SEED[:-1]]}},
     JSON, 400, "INVALID_PARAMETER_VALUE", ("lacks thal",)),
    ("two formats", {"inputs": [dict(zip(COLUMNS, SEED, strict=True))], "instances": []},
     JSON, 400, "BAD_REQUEST", ("exactly one of",)),
    ("a list body", [dict(zip(COLUMNS, SEED, strict=True))], JSON, 400, "BAD_REQUEST", ("JSON object",)),
    ("malformed JSON", b'{"inputs": ', JSON, 400, "BAD_REQUEST", ("not valid JSON",)),
    ("ragged split", {"dataframe_split": {"columns": COLUMNS, "data": [SEED[:12]]}},
     JSON, 400, "BAD_REQUEST", ("data[0]", "13 values", "got 12")),
    ("empty records", {"dataframe_records": []}, JSON, 400, "BAD_REQUEST", ("non-empty",)),
    ("CSV marker MLflow cannot read", ",".join(COLUMNS) + "\n" + "63,1,1,145,233,1,2,150,0,"
     "2.3,3,?,abc\n", {"Content-Type": "text/csv"}, 400, "INVALID_PARAMETER_VALUE",
     ("CSV line 2, thal: 'abc' is not a number", "expected one of 3 (normal)")),
    # MLflow scores these (it coerces or extrapolates); the spec refuses them.
    ("out of range", {"dataframe_split": {"columns": COLUMNS, "data": [[*SEED[:4], 5000, *SEED[5:]]]}},
     JSON, 200, "INVALID_PARAMETER_VALUE",
     ("dataframe_split.data[0].chol: 5000 is not allowed; expected a number from 80 to 700",)),
    ("a string", {"dataframe_records": [{**dict(zip(COLUMNS, SEED, strict=True)), "age": "63"}]},
     JSON, 200, "INVALID_PARAMETER_VALUE", ("dataframe_records[0].age: '63' is not a number",)),
    ("required unknown", {"inputs": {**{c: [v] for c, v in zip(COLUMNS, SEED, strict=True)}, "age": [None]}},
     JSON, 200, "INVALID_PARAMETER_VALUE", ("row 0 of inputs, age: missing; required",)),
    ("text/plain", "x", {"Content-Type": "text/plain"}, 415, "BAD_REQUEST",
     ("application/json or text/csv",)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "body", "headers", "mlflow_status", "code", "words"),
    BAD_MLFLOW,
    ids=[case[0] for case in BAD_MLFLOW],
)
def test_bad_mlflow_input_gets_mlflow_envelopes_with_our_words(
    pair: Pair,
    case: str,
    body: Any,
    headers: dict[str, str],
    mlflow_status: int,
    code: str,
    words: tuple[str, ...],
) -> None:
    sent = {"data": body} if isinstance(body, bytes | str) else {"json": body}
    theirs = requests.post(f"{pair.mlflow.url}/invocations", headers=headers, timeout=30, **sent)
    assert theirs.status_code == mlflow_status, (case, theirs.text[:300])
    ours = requests.post(f"{pair.ours.url}/invocations", headers=headers, timeout=30, **sent)
    expected = 415 if mlflow_status == 415 else 400
    assert ours.status_code == expected, (case, ours.text)
    answer = ours.json()
    assert set(answer) == {"error_code", "message", "request_id"}, answer
    assert answer["error_code"] == code, answer
    for word in words:
        assert word in answer["message"], (case, answer["message"])
    if theirs.status_code >= 400 and theirs.headers["content-type"] == "application/json":
        assert {"error_code", "message"} <= set(theirs.json())  # the same envelope


def test_open_inference_client_gets_the_probabilities_of_predict(
    pair: Pair, frame: pd.DataFrame
) -> None:
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    with httpx.Client(base_url=pair.ours.url, timeout=30) as http:
        answers = [http.post("/predict", json=record).json() for record in records(frame)]
    expected = np.array([answer["probability"] for answer in answers])
    decisions = np.array([answer["prediction"] for answer in answers])

    client = triton.InferenceServerClient(f"127.0.0.1:{pair.ours.port}")
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(pair.name) and client.is_model_ready(pair.name, pair.version)
    assert not client.is_model_ready("another_model")
    server = client.get_server_metadata()
    assert server["name"] == "heartml" and "binary_tensor_data" in server["extensions"]
    metadata = client.get_model_metadata(pair.name, pair.version)
    assert metadata["name"] == pair.name and metadata["versions"] == [pair.version]
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 13]}]
    assert metadata["parameters"]["columns"].split(",") == COLUMNS
    assert {o["name"] for o in metadata["outputs"]} == {"probabilities", "label"}

    matrix = frame.to_numpy(dtype=np.float64)  # NaN where unknown
    for binary in (True, False):
        tensor = triton.InferInput("input", list(matrix.shape), "FP64")
        tensor.set_data_from_numpy(matrix, binary_data=binary)
        result = client.infer(pair.name, [tensor], request_id=f"all-{binary}")
        probabilities = result.as_numpy("probabilities")
        assert probabilities.shape == (303, 2)
        assert np.abs(probabilities[:, 1] - expected).max() <= 1e-9, binary
        assert np.abs(probabilities.sum(axis=1) - 1).max() <= 1e-12
        assert result.as_numpy("label").tolist() == decisions.tolist()
        assert result.get_response()["id"] == f"all-{binary}"

    # One tensor per column (binary and JSON mixed), any order, named outputs.
    columns = []
    for index in reversed(range(len(COLUMNS))):
        column = triton.InferInput(COLUMNS[index], [len(matrix)], "FP64")
        column.set_data_from_numpy(
            np.ascontiguousarray(matrix[:, index]), binary_data=index % 2 == 0
        )
        columns.append(column)
    wanted = [triton.InferRequestedOutput("probabilities", binary_data=False)]
    result = client.infer(pair.name, columns, outputs=wanted, model_version=pair.version)
    assert np.abs(result.as_numpy("probabilities")[:, 1] - expected).max() <= 1e-9
    assert result.as_numpy("label") is None  # not asked for

    # One row per request (the micro-batched path) for the first rows and every unknown one.
    missing = np.flatnonzero(frame.isna().any(axis=1).to_numpy()).tolist()
    for index in sorted({*range(20), *missing}):
        row = triton.InferInput("input", [1, 13], "FP64")
        row.set_data_from_numpy(matrix[index : index + 1])
        single = client.infer(pair.name, [row]).as_numpy("probabilities")
        assert abs(single[0, 1] - expected[index]) <= 1e-9

    with pytest.raises(InferenceServerException) as unknown:
        client.infer("another_model", [tensor])
    assert unknown.value.status() == "404" and "'another_model'" in unknown.value.message()
    bad = matrix[:2].copy()
    bad[1, COLUMNS.index("chol")] = 5000
    tensor = triton.InferInput("input", list(bad.shape), "FP64")
    tensor.set_data_from_numpy(bad)
    with pytest.raises(InferenceServerException) as refused:
        client.infer(pair.name, [tensor])
    assert refused.value.status() == "400"
    assert refused.value.message() == (
        "row 1, chol: 5000 is not allowed; expected a number from 80 to 700 mg/dl"
    )


V2_BAD: list[tuple[str, Any, int, str]] = [
    ("wrong shape", {"inputs": [{"name": "input", "shape": [1, 12], "datatype": "FP64",
                                 "data": SEED[:12]}]}, 400, "must have the shape [n, 13]"),
    ("data vs shape", {"inputs": [{"name": "input", "shape": [2, 13], "datatype": "FP64",
                                   "data": SEED}]}, 400, "13 values for its shape [2, 13]"),
    ("unknown input", {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64",
                                   "data": [1]}]}, 400, "(x) is not an input of this model"),
    ("BYTES", {"inputs": [{"name": "input", "shape": [1, 13], "datatype": "BYTES",
                           "data": SEED}]}, 400, "datatype 'BYTES'"),
    ("a boolean", {"inputs": [{"name": "input", "shape": [1, 13], "datatype": "FP64",
                               "data": [63, True, *SEED[2:]]}]}, 400, "row 0, sex: True is not a number"),
    ("unknown output", {"inputs": [{"name": "input", "shape": [1, 13], "datatype": "FP64",
                                    "data": SEED}], "outputs": [{"name": "p"}]}, 400, "'p'"),
    ("not JSON", b"{", 400, "not valid JSON"),
    ("too many rows", {"inputs": [{"name": "input", "shape": [1001, 13], "datatype": "FP64",
                                   "data": SEED * 1001}]}, 413, "limit is 1000"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body", "status", "words"), V2_BAD, ids=[c[0] for c in V2_BAD])
def test_bad_inference_requests_get_the_protocols_error(
    pair: Pair, case: str, body: Any, status: int, words: str
) -> None:
    url = f"{pair.ours.url}/v2/models/{pair.name}/infer"
    sent = {"content": body} if isinstance(body, bytes) else {"json": body}
    response = httpx.post(url, timeout=30, **sent)
    assert response.status_code == status, (case, response.text)
    answer = response.json()
    assert set(answer) == {"error", "request_id"} and words in answer["error"], (case, answer)


def test_csv_written_by_pandas_with_its_index_is_refused_with_a_hint(
    pair: Pair, frame: pd.DataFrame
) -> None:
    buffer = io.StringIO()
    frame.head(3).to_csv(buffer)  # the index as a first, unnamed column
    response = requests.post(
        f"{pair.ours.url}/invocations",
        data=buffer.getvalue(),
        headers={"Content-Type": "text/csv"},
        timeout=30,
    )
    assert response.status_code == 400
    assert "index=False" in response.json()["message"]
