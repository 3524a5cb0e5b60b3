"""Site calibrations over real HTTP: `heartml serve` (uvicorn) on a free port with a real package
(tests/serving_packages.py), real calibration files beside it and the SQLite prediction store.

Oracles from outside the server: the calibrated value computed here with scipy from the
calibration's parameters and the raw probability the same record gets at a site without one;
scikit-learn's brier_score_loss / log_loss / roc_auc_score on the answers posted with outcomes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pandas as pd
import pytest
from harness.serve import Server, launch_server
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from heartml.sites import SITE_RULE
from heartml.spec import TARGET
from serving_packages import REPO_ROOT, fit, heart_spec, read_source, records_of, write_package
from site_calibrations import make_calibration, offline, tamper

pytestmark = [
    pytest.mark.serving,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.monitoring,
]

SPEC = heart_spec()
A = {"intercept": -1.0, "slope": 0.8}
P = {"intercept": 0.6, "slope": 1.3}
BAD_SITES = ["bad/site", "café", "-x", "x" * 65]
POLL_S = 0.2
ENV = {
    "HEARTML_SERVE_RELOAD_INTERVAL_S": str(POLL_S),
    "HEARTML_STORE_FLUSH_INTERVAL_S": "0.1",
    "HEARTML_SERVE_ACCESS_LOG": "false",
    # The checkout's own code (a worktree's), not whatever the venv's editable install points at.
    "PYTHONPATH": str(REPO_ROOT / "src"),
}


@pytest.fixture(scope="module")
def cleveland() -> pd.DataFrame:
    return read_source(SPEC)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, cleveland: pd.DataFrame) -> Iterator[Server]:
    built = tmp_path_factory.mktemp("packages")
    package = write_package(
        built, SPEC, fit(SPEC, cleveland, LogisticRegression(max_iter=2000)), cleveland
    )
    root = tmp_path_factory.mktemp("serve-root")
    calibrations = root / "calibrations"
    make_calibration(calibrations, "A", 1, **A)
    make_calibration(calibrations, "P", 1, **P)
    make_calibration(calibrations, "C", 1, **A)
    tamper(calibrations, "C", 1)
    started = launch_server(root, (package,), env=ENV)
    started.wait_ready()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def post(http: httpx.Client, path: str, body: Any) -> dict[str, Any]:
    response = http.post(path, json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_calibrated_site_gets_the_offline_value_and_other_sites_are_unchanged(
    http: httpx.Client, cleveland: pd.DataFrame
) -> None:
    records = records_of(cleveland, SPEC.raw_names)[:25]
    for record in records:
        plain = post(http, "/predict", record)
        at_b = post(http, "/predict", {**record, "site": "B"})
        at_a = post(http, "/predict", {**record, "site": "A"})
        assert plain["site"] is None and plain["calibration"] is None
        assert at_b["probability"] == plain["probability"]  # a site without one: unchanged
        assert at_b["calibration"] == {
            "site": "B",
            "version": None,
            "method": None,
            "model_probability": plain["probability"],
            "detail": "no calibration for site B: the model's own probability",
        }
        assert abs(at_a["probability"] - offline(at_b["probability"], **A)) <= 1e-9
        assert at_a["prediction"] == int(at_a["probability"] >= 0.5)
        assert at_a["calibration"]["version"] == 1 and at_a["calibration"]["method"] == "logistic"
        assert at_a["calibration"]["model_probability"] == plain["probability"]
        explained = post(http, "/predict/explain", {**record, "site": "A"})
        assert abs(explained["probability"] - at_a["probability"]) <= 1e-12
    batch = post(http, "/predict/batch", {"records": records, "site": "A"})
    assert batch["site"] == "A"
    assert len(batch["results"]) == len(records)
    for result in batch["results"]:
        raw = result["calibration"]["model_probability"]
        assert abs(result["probability"] - offline(raw, **A)) <= 1e-9


@pytest.mark.parametrize("site", BAD_SITES)
def test_a_bad_site_is_a_422_naming_the_field(http: httpx.Client, site: str) -> None:
    record = records_of(read_source(SPEC), SPEC.raw_names)[0]
    for path, body in [
        ("/predict", {**record, "site": site}),
        ("/predict/explain", {**record, "site": site}),
        ("/predict/batch", {"records": [record], "site": site}),
    ]:
        response = http.post(path, json=body)
        assert response.status_code == 422, (path, response.text)
        (error,) = response.json()["detail"]
        assert error["field"] == "site" and error["value"] == site
        assert error["message"] == f"site {site!r} is not allowed; expected {SITE_RULE}"


def test_model_info_lists_the_calibrations_and_a_refused_one_is_served_raw_logged_once(
    server: Server, http: httpx.Client
) -> None:
    info = http.get("/model/info").json()["calibrations"]
    assert info["directory"] == str(server.root / "calibrations")
    assert {(s["site"], s["version"], s["method"], s["outcomes"]) for s in info["sites"]} == {
        ("A", 1, "logistic", 120),
        ("P", 1, "logistic", 120),
    }
    assert list(info["problems"]) == ["C"] and "sha256" in info["problems"]["C"]
    record = records_of(read_source(SPEC), SPEC.raw_names)[0]
    at_c = post(http, "/predict", {**record, "site": "C"})
    assert at_c["probability"] == at_c["calibration"]["model_probability"]
    assert at_c["calibration"]["version"] is None and "refused" in at_c["calibration"]["detail"]
    # Several polls later (and a change elsewhere in the folder), still one line.
    make_calibration(server.root / "calibrations", "E", 1, **A)
    deadline = time.monotonic() + 10
    while not any(
        s["site"] == "E" for s in http.get("/model/info").json()["calibrations"]["sites"]
    ):
        assert time.monotonic() < deadline, "site E never served"
        time.sleep(POLL_S)
    refused = [line for line in server.log_lines() if "calibration refused" in line["message"]]
    assert len(refused) == 1 and refused[0]["site"] == "C"


def test_a_new_calibration_is_served_without_a_restart(server: Server, http: httpx.Client) -> None:
    record = {**records_of(read_source(SPEC), SPEC.raw_names)[1], "site": "D"}
    raw = post(http, "/predict", record)["probability"]
    make_calibration(server.root / "calibrations", "D", 1, **P)
    deadline = time.monotonic() + 10
    while (answer := post(http, "/predict", record))["calibration"]["version"] != 1:
        assert time.monotonic() < deadline, "the new calibration was not picked up"
        time.sleep(0.05)
    assert abs(answer["probability"] - offline(raw, **P)) <= 1e-9


def test_performance_per_site_before_and_after_calibration_equals_sklearn(
    http: httpx.Client, cleveland: pd.DataFrame
) -> None:
    records = records_of(cleveland, SPEC.raw_names)
    outcomes = cleveland[TARGET].astype(int).tolist()
    answers: dict[str, list[tuple[dict[str, Any], int]]] = {"P": [], "Q": []}
    for i, (record, outcome) in enumerate(zip(records, outcomes, strict=True)):
        site = "P" if i % 2 == 0 else "Q"
        answers[site].append((post(http, "/predict", {**record, "site": site}), outcome))
    sent = [
        {"request_id": answer["request_id"], "outcome": outcome}
        for pairs in answers.values()
        for answer, outcome in pairs
    ]
    assert post(http, "/feedback", sent)["recorded"] == len(records)
    whole = http.get("/monitoring/performance").json()
    (version,) = whole["versions"]
    assert {"P", "Q"} <= {figures["site"] for figures in version["by_site"]}
    for site, pairs in answers.items():
        report = http.get("/monitoring/performance", params={"site": site}).json()
        (version,) = report["versions"]
        (figures,) = version["by_site"]
        y = [outcome for _, outcome in pairs]
        served = [answer["probability"] for answer, _ in pairs]
        own = [answer["calibration"]["model_probability"] for answer, _ in pairs]
        assert figures["site"] == site and figures["count"] == len(pairs)
        assert figures["calibrated"] == (len(pairs) if site == "P" else 0)
        for key, probabilities in (("before", own), ("after", served)):
            scores = figures[key]
            assert abs(scores["brier"] - brier_score_loss(y, probabilities)) <= 1e-9
            assert abs(scores["log_loss"] - log_loss(y, probabilities)) <= 1e-9
            assert abs(scores["roc_auc"] - roc_auc_score(y, probabilities)) <= 1e-9
        if site == "P":
            assert figures["before"]["brier"] != figures["after"]["brier"]
        else:
            assert figures["before"] == figures["after"]
