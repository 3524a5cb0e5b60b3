"""MLflow's scoring protocol and the Open Inference Protocol in-process (TestClient): every
payload form against the fitted pipeline's own probabilities, the binary tensor extension
against numpy's bytes, and each protocol's error envelope. The real servers and clients (MLflow's
`mlflow models serve` and client, tritonclient) are in tests/integration/test_protocols_http.py.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from heartml.serving.loaded_model import load_package
from heartml.settings import Settings
from serving_packages import heart_spec, write_package

pytestmark = pytest.mark.serving

PackageFactory = Callable[..., Path]
SPEC = heart_spec()
COLUMNS = list(SPEC.raw_names)
SEED = [63, 1, 1, 145, 233, 1, 2, 150, 0, 2.3, 3, 0, 6]
MODEL = "heart_disease_logistic_regression"
INFER = f"/v2/models/{MODEL}/infer"


def rows_of(frame: pd.DataFrame) -> list[list[Any]]:
    values = frame[COLUMNS].astype(object).where(frame[COLUMNS].notna(), None)
    return [list(row) for row in values.itertuples(index=False)]


@pytest.fixture
def expected(fitted: dict[str, Any], cleveland: pd.DataFrame) -> np.ndarray:
    """The oracle: the fitted sklearn pipeline's P(class 1) on every Cleveland row."""
    return np.asarray(fitted["logistic_regression"][0].predict_proba(cleveland[COLUMNS])[:, 1])


def mlflow_payloads(cleveland: pd.DataFrame) -> dict[str, Any]:
    rows = rows_of(cleveland)
    records = [dict(zip(COLUMNS, row, strict=True)) for row in rows]
    order = COLUMNS[::-1]
    return {
        "dataframe_split": {"dataframe_split": {"columns": COLUMNS, "data": rows}},
        "dataframe_split, any order": {
            "dataframe_split": {
                "columns": order,
                "data": [[r[c] for c in order] for r in records],
                "index": list(range(len(rows))),
            }
        },
        "dataframe_records": {"dataframe_records": records, "params": {"ignored": 1}},
        "instances": {"instances": records},
        "inputs (records)": {"inputs": records},
        "inputs (columns)": {"inputs": {c: [r[c] for r in records] for c in COLUMNS}},
    }


def test_every_mlflow_format_scores_like_the_pipeline(
    packaged: TestClient, cleveland: pd.DataFrame, expected: np.ndarray
) -> None:
    for label, payload in mlflow_payloads(cleveland).items():
        response = packaged.post("/invocations", json=payload)
        assert response.status_code == 200, (label, response.text)
        got = np.asarray(response.json()["predictions"])
        assert got.shape == (len(cleveland), 2), label
        np.testing.assert_allclose(got[:, 1], expected, atol=1e-6, err_msg=label)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-12)
    csv = cleveland[COLUMNS].to_csv(index=False).replace(",,", ",?,")  # a spec marker too
    response = packaged.post("/invocations", content=csv, headers={"content-type": "text/csv"})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(
        np.asarray(response.json()["predictions"])[:, 1], expected, atol=1e-6
    )
    # MLflow's client writes NaN (json.dumps) for a missing value: unknown, like null.
    missing = int(np.flatnonzero(cleveland["ca"].isna())[0])
    row = [math.nan if v is None else v for v in rows_of(cleveland)[missing]]
    body = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [row]}})
    assert "NaN" in body
    one = packaged.post("/invocations", content=body, headers={"content-type": "application/json"})
    assert one.json()["predictions"][0][1] == pytest.approx(expected[missing], abs=1e-6)
    single = packaged.post(
        "/invocations", json={"instances": dict(zip(COLUMNS, SEED, strict=True))}
    )
    assert single.status_code == 200 and len(single.json()["predictions"]) == 1


# (payload or raw body, content type, status, error_code, words in the message)
MLFLOW_ERRORS: list[tuple[Any, str, int, str, str]] = [
    ({"dataframe_split": {"columns": COLUMNS, "data": [[*SEED[:4], 5000, *SEED[5:]]]}},
     "application/json", 400, "INVALID_PARAMETER_VALUE",
     "dataframe_split.data[0].chol: 5000 is not allowed; expected a number from 80 to 700 mg/dl"),
    ({"dataframe_records": [{**dict(zip(COLUMNS, SEED, strict=True)), "extra": 1}]}, "application/json",
     400, "INVALID_PARAMETER_VALUE", "dataframe_records[0].extra is not an accepted field"),
    ({"dataframe_records": [{k: v for k, v in zip(COLUMNS, SEED, strict=True) if k != "ca"}]},
     "application/json", 400, "INVALID_PARAMETER_VALUE", "dataframe_records[0].ca is missing"),
    ({"dataframe_split": {"columns": [*COLUMNS[:-1], "age"], "data": [SEED]}},
     "application/json", 400, "INVALID_PARAMETER_VALUE", "'age' appears twice"),
    ({"instances": [SEED]}, "application/json", 400, "INVALID_PARAMETER_VALUE",
     "instances[0]: must be a JSON object with the fields age, sex"),
    ({"inputs": {"age": [63, 64], "sex": [1]}}, "application/json", 400, "BAD_REQUEST",
     "same number of values (got age: 2, sex: 1)"),
    ({"inputs": {"age": [63], "sex": 1}}, "application/json", 400, "BAD_REQUEST", "mixes arrays"),
    ({"dataframe_split": {"columns": COLUMNS, "data": [SEED]}, "foo": 1}, "application/json",
     400, "BAD_REQUEST", "'foo' is not an input field"),
    ({"inputs": [{}], "params": 3}, "application/json", 400, "BAD_REQUEST", "params must be"),
    (b"", "application/json", 400, "BAD_REQUEST", "empty"),
    (b"\xff\xfe", "text/csv", 400, "BAD_REQUEST", "not UTF-8"),
    ("age,sex\n", "text/csv", 400, "INVALID_PARAMETER_VALUE", "lacks cp, trestbps"),
    (",".join(COLUMNS) + "\n", "text/csv", 400, "BAD_REQUEST", "no records"),
    (",".join(COLUMNS) + "\n1,2\n", "text/csv", 400, "BAD_REQUEST", "line 2 has 2 fields"),
    ({"inputs": [{}]}, "application/json; format=pandas-split", 415, "BAD_REQUEST",
     "unrecognized Content-Type parameter 'format'"),
    ({"inputs": [{}]}, "application/json; charset=latin-1", 415, "BAD_REQUEST", "UTF-8"),
    ({"inputs": [{}]}, "", 415, "BAD_REQUEST", "no Content-Type"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "content_type", "status", "code", "words"),
    MLFLOW_ERRORS,
    ids=[f"{i}-{case[3]}" for i, case in enumerate(MLFLOW_ERRORS)],
)
def test_mlflow_errors_are_mlflow_envelopes_with_our_words(
    packaged: TestClient, payload: Any, content_type: str, status: int, code: str, words: str
) -> None:
    raw = payload if isinstance(payload, bytes | str) else json.dumps(payload)
    headers = {"content-type": content_type} if content_type else {}
    response = packaged.post("/invocations", content=raw, headers=headers)
    assert response.status_code == status, response.text
    body = response.json()
    assert body == {
        "error_code": code,
        "message": body["message"],
        "request_id": response.headers["x-request-id"],
    }
    assert words in body["message"], body["message"]


def test_many_problems_are_listed_then_counted(packaged: TestClient) -> None:
    bad = [*SEED[:4], 5000, *SEED[5:]]
    response = packaged.post(
        "/invocations", json={"dataframe_split": {"columns": COLUMNS, "data": [bad] * 12}}
    )
    message = response.json()["message"]
    assert message.count("5000 is not allowed") == 10 and message.endswith("(and 2 more)")


def tensor(rows: list[list[Any]]) -> dict[str, Any]:
    flat = [value for row in rows for value in row]
    return {"name": "input", "shape": [len(rows), 13], "datatype": "FP64", "data": flat}


def test_open_inference_json_forms_score_like_the_pipeline(
    packaged: TestClient, cleveland: pd.DataFrame, expected: np.ndarray
) -> None:
    rows = rows_of(cleveland)
    by_tensor = packaged.post(INFER, json={"id": "a1", "inputs": [tensor(rows)]})
    assert by_tensor.status_code == 200, by_tensor.text
    body = by_tensor.json()
    assert (body["model_name"], body["model_version"], body["id"]) == (MODEL, "1", "a1")
    probabilities, label = body["outputs"]
    assert (probabilities["name"], probabilities["datatype"]) == ("probabilities", "FP64")
    assert probabilities["shape"] == [len(rows), 2] and label["shape"] == [len(rows)]
    got = np.asarray(probabilities["data"]).reshape(-1, 2)
    np.testing.assert_allclose(got[:, 1], expected, atol=1e-6)
    assert label["data"] == (got[:, 1] >= 0.5).astype(int).tolist()
    nested = {**tensor(rows), "data": rows}  # nested data is row-major too
    columns = [
        {"name": name, "shape": [len(rows), 1], "datatype": "FP64", "data": [r[i] for r in rows]}
        for i, name in reversed(list(enumerate(COLUMNS)))
    ]
    for inputs in ([nested], columns):
        response = packaged.post(
            INFER, json={"inputs": inputs, "outputs": [{"name": "probabilities"}]}
        )
        (only,) = response.json()["outputs"]
        np.testing.assert_allclose(np.asarray(only["data"])[1::2], expected, atol=1e-6)
    ints = {
        "name": "input",
        "shape": [1, 13],
        "datatype": "INT64",
        "data": [*SEED[:9], 2, *SEED[10:]],
    }
    assert packaged.post(INFER, json={"inputs": [ints]}).status_code == 200
    halves = {**ints, "data": SEED}  # 2.3 in an INT64 tensor
    refused = packaged.post(INFER, json={"inputs": [halves]})
    assert refused.status_code == 400 and "INT64 data must be integers; got 2.3" in refused.text


def test_nested_tensor_data_is_flattened_before_it_is_counted(packaged: TestClient) -> None:
    # 13 items for the shape [1, 13], one of them an array: the single-tensor fast path must
    # leave it to the general reader, which flattens the data (14 values) and says so.
    nested = {**tensor([SEED]), "data": [[SEED[0], 1], *SEED[1:]]}
    response = packaged.post(INFER, json={"inputs": [nested]})
    assert response.status_code == 400, response.text
    assert "has 14 values for its shape [1, 13] (13 values)" in response.json()["error"]


def test_binary_tensor_data_in_and_out(
    packaged: TestClient, cleveland: pd.DataFrame, expected: np.ndarray
) -> None:
    matrix = cleveland[COLUMNS].to_numpy(dtype="<f8")  # NaN where unknown
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": list(matrix.shape),
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": matrix.nbytes},
                }
            ],
            "outputs": [
                {"name": "label", "parameters": {"binary_data": True}},
                {"name": "probabilities", "parameters": {"binary_data": True}},
            ],
        }
    )
    response = packaged.post(
        INFER,
        content=header + matrix.tobytes(),
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    length = int(response.headers["inference-header-content-length"])
    meta = json.loads(response.content[:length])
    label, probabilities = meta["outputs"]
    n = len(matrix)
    assert label["parameters"] == {"binary_data_size": 8 * n} and "data" not in label
    assert probabilities["parameters"] == {"binary_data_size": 16 * n}
    rest = response.content[length:]
    labels = np.frombuffer(rest[: 8 * n], "<i8")
    got = np.frombuffer(rest[8 * n :], "<f8").reshape(n, 2)
    np.testing.assert_allclose(got[:, 1], expected, atol=1e-6)
    assert labels.tolist() == (got[:, 1] >= 0.5).astype(int).tolist()
    short = packaged.post(
        INFER,
        content=header + matrix.tobytes()[:-8],
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert short.status_code == 400 and "binary_data_size" in short.json()["error"]


def test_open_inference_metadata_health_and_errors(packaged: TestClient) -> None:
    assert packaged.get("/v2").json()["extensions"] == ["binary_tensor_data"]
    assert packaged.get("/v2/health/live").json() == {"live": True}
    assert packaged.get("/v2/health/ready").json() == {"ready": True}
    metadata = packaged.get(f"/v2/models/{MODEL}/versions/1").json()
    assert metadata["parameters"]["columns"] == ",".join(COLUMNS)
    assert packaged.get(f"/v2/models/{MODEL}/ready").json() == {"name": MODEL, "ready": True}
    for path in ("/v2/models/other", f"/v2/models/{MODEL}/versions/9/ready"):
        missing = packaged.get(path)
        assert missing.status_code == 404 and set(missing.json()) == {"error", "request_id"}
    other = packaged.post("/v2/models/other/infer", json={"inputs": [tensor([SEED])]})
    assert other.status_code == 404 and "'other' is not served here" in other.json()["error"]
    # Found by schemathesis: a JSON null where an object is documented, a datatype that is an
    # object (was a 500: unhashable).
    for odd in (
        {"inputs": [tensor([SEED])], "outputs": [{"name": "label", "parameters": None}]},
        {"inputs": [{**tensor([SEED]), "datatype": {"FP64": 1}}]},
        {"inputs": [tensor([SEED])], "id": None},
    ):
        refused = packaged.post(INFER, json=odd)
        assert refused.status_code == 400 and set(refused.json()) == {"error", "request_id"}
    form = packaged.post(INFER, content=b"{}", headers={"content-type": "text/plain"})
    assert form.status_code == 415 and "application/json" in form.json()["error"]
    unknown = packaged.get("/v2/nowhere")
    assert unknown.status_code == 404 and "error" in unknown.json()


def test_no_model_is_a_503_in_each_protocols_envelope(
    settings_for: Callable[..., Settings], client_for: Callable[..., TestClient]
) -> None:
    client = client_for(settings_for(), ready=False)
    invocation = client.post(
        "/invocations", json={"inputs": [dict(zip(COLUMNS, SEED, strict=True))]}
    )
    assert invocation.status_code == 503 and invocation.headers["retry-after"] == "5"
    assert invocation.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert "no package" in invocation.json()["message"]
    assert client.get("/ping").status_code == 503
    assert client.get("/version").status_code == 200
    for path in ("/v2/health/ready", f"/v2/models/{MODEL}", INFER):
        response = client.request("POST" if path == INFER else "GET", path, json={})
        assert response.status_code == 503, path
        assert "no model loaded" in response.json()["error"]
    assert client.get("/v2/health/live").status_code == 200


def test_limits_and_internal_errors_keep_the_envelopes(
    tmp_path: Path,
    make_package: PackageFactory,
    settings_for: Callable[..., Settings],
    client_for: Callable[..., TestClient],
) -> None:
    from test_app import BrokenScorer, BrokenStore

    package = make_package(tmp_path / "packages")
    client = client_for(settings_for(serve_batch_limit=5, serve_max_body_bytes=4096))
    records = {"dataframe_records": [dict(zip(COLUMNS, SEED, strict=True))] * 6}
    over = client.post("/invocations", json=records)
    assert over.status_code == 413 and over.json()["error_code"] == "BAD_REQUEST"
    assert "limit is 5" in over.json()["message"]
    big = client.post(INFER, content=b" " * 5000)
    assert big.status_code == 413 and "4096 bytes" in big.json()["error"]
    settings = settings_for()
    good = load_package(package, "test", "f", 1)
    broken = client_for(settings, store=BrokenStore(settings, replace(good, scorer=BrokenScorer())))
    failed = broken.post("/invocations", json={"inputs": [dict(zip(COLUMNS, SEED, strict=True))]})
    assert failed.status_code == 500
    assert failed.json() == {
        "error_code": "INTERNAL_ERROR",
        "message": "internal error",
        "request_id": failed.headers["x-request-id"],
    }
    assert "secret" not in failed.text


def test_openapi_documents_both_protocols(packaged: TestClient) -> None:
    schema = packaged.get("/openapi.json").json()
    for path in (
        "/invocations",
        "/ping",
        "/version",
        "/v2",
        "/v2/health/ready",
        INFER.replace(MODEL, "{name}"),
    ):
        assert any(path == documented for documented in schema["paths"]), path
    components = schema["components"]["schemas"]
    split = components["MlflowScoringRequest"]["oneOf"][0]["properties"]["dataframe_split"]
    assert split["properties"]["columns"]["const"] == COLUMNS
    name = schema["paths"]["/v2/models/{name}/infer"]["post"]["parameters"][0]
    assert name["schema"]["enum"] == [MODEL]
    assert "MLflow's scoring protocol" in schema["info"]["description"]


def test_both_protocols_follow_the_served_spec_not_the_heart_columns(
    tmp_path: Path,
    smoker_model: tuple[Any, Any, pd.DataFrame],
    settings_for: Callable[..., Settings],
    client_for: Callable[..., TestClient],
) -> None:
    """A package whose spec has 14 raw columns (`smoker` last): the v2 tensor is [n, 14] in the
    spec's order, its metadata says so, and every form of both protocols scores like the
    pipeline fitted on that spec (the oracle). The request with `inputs` alone takes the one-pass
    path, with an `id` the general one: both are checked on every row."""
    extended, pipeline, frame = smoker_model
    write_package(tmp_path / "packages", extended, pipeline, frame)
    client = client_for(settings_for())
    names = list(extended.raw_names)
    assert len(names) == 14 and names[-1] == "smoker"
    oracle = pipeline.predict_proba(frame[names])[:, 1]
    values = frame[names].astype(object).where(frame[names].notna(), None)
    rows = [list(row) for row in values.itertuples(index=False)]
    flat = [value for row in rows for value in row]
    metadata = client.get(f"/v2/models/{MODEL}").json()
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 14]}]
    assert metadata["parameters"]["columns"] == ",".join(names)

    big = {"name": "input", "shape": [len(rows), 14], "datatype": "FP64", "data": flat}
    for body in ({"inputs": [big]}, {"id": "general", "inputs": [big]}):
        response = client.post(INFER, json=body)
        assert response.status_code == 200, response.text
        got = np.asarray(response.json()["outputs"][0]["data"]).reshape(-1, 2)[:, 1]
        np.testing.assert_allclose(got, oracle, atol=1e-9, err_msg=str(list(body)))
    one = {"inputs": [{**big, "shape": [1, 14], "data": rows[5]}]}
    single = client.post(INFER, json=one).json()["outputs"][0]["data"][1]
    assert single == pytest.approx(oracle[5], abs=1e-9)
    narrow = {"inputs": [{**big, "shape": [1, 13], "data": rows[0][:13]}]}
    refused = client.post(INFER, json=narrow)
    assert refused.status_code == 400 and "must have the shape [n, 14]" in refused.json()["error"]

    split = {"dataframe_split": {"columns": names, "data": rows}}
    response = client.post("/invocations", json=split)
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(np.asarray(response.json()["predictions"])[:, 1], oracle, atol=1e-9)
    lacking = {"dataframe_split": {"columns": names[:13], "data": [r[:13] for r in rows[:1]]}}
    refused = client.post("/invocations", json=lacking)
    assert refused.status_code == 400 and "lacks smoker" in refused.json()["message"]
