"""Per-site recalibration end to end, through the product's own doors: a real `heartml serve`
with the prediction store (SQLite), real HTTP, a real embedded MLflow registry, and the
`heartml recalibrate` command.

Two simulated sites (tests/simulated_sites.py: the served model never saw their patients; north
has a prevalence of 0.85, south 0.15) post predictions with their `site`, send the outcomes back
through /feedback, then `heartml recalibrate --site north` fits north's calibration from the
store for the registry's champion. The running server picks it up on its poll, and the next
/predict for north answers the calibration of the model's own probability — computed here with
scipy from the parameters in the file the command wrote and the probability the model gives the
same record at south, which has no calibration and gets the model as is.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from harness.processes import HEARTML, subprocess_env
from harness.projects import describe, new_project
from harness.serve import launch_server
from scipy.special import expit, logit

from heartml.calibration.document import PROBABILITY_FLOOR
from heartml.spec import TARGET
from serving_packages import records_of, write_package
from simulated_sites import draw_site, site_model

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.monitoring]

PATIENTS = 150  # per site: above recalibration's minimum of 100 outcomes
RELOAD_S = 0.5


def offline_value(calibration: dict, raw: float) -> float:
    """The calibration's value for the model's own probability, from the file's parameters."""
    if calibration["method"] == "isotonic":
        return float(np.interp(raw, calibration["isotonic_x"], calibration["isotonic_y"]))
    q = np.clip(raw, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    return float(expit(calibration["intercept"] + calibration["slope"] * logit(q)))


def test_a_recalibrated_site_is_served_its_calibration_and_another_site_is_not(
    tmp_path: Path,
) -> None:
    from mlflow import MlflowClient

    model = site_model()
    spec = model.spec
    package = write_package(tmp_path / "built", spec, model.pipeline, model.pool)
    root = new_project(tmp_path / "project")
    # The champion, registered as `heartml track` would have (this test is about what follows).
    # Both URIs: a registry URI set process-wide by an earlier test must not be used here.
    store_uri = f"sqlite:///{root / 'mlflow.db'}"
    registry = MlflowClient(tracking_uri=store_uri, registry_uri=store_uri)
    model_name = f"{spec.model_name_prefix}_logistic_regression"
    registry.create_registered_model(model_name)
    version = str(registry.create_model_version(model_name, source=package.as_uri()).version)
    registry.set_registered_model_alias(model_name, "champion", version)
    assert version == "1"  # the package's version

    server = launch_server(
        root,
        (package,),
        env={
            "HEARTML_STORE_FLUSH_INTERVAL_S": "0.1",
            "HEARTML_SERVE_RELOAD_INTERVAL_S": str(RELOAD_S),
            "HEARTML_SERVE_ACCESS_LOG": "false",
        },
    )
    try:
        server.wait_ready()
        client = httpx.Client(base_url=server.url, timeout=10)
        feedback = []
        for site, prevalence, seed in (("north", 0.85, 1), ("south", 0.15, 2)):
            drawn = draw_site(model, prevalence, PATIENTS, seed)
            outcomes = drawn.frame[TARGET].astype(int).tolist()
            for body, outcome in zip(
                records_of(drawn.frame, spec.raw_names), outcomes, strict=True
            ):
                answer = client.post("/predict", json={**body, "site": site})
                assert answer.status_code == 200, answer.text
                assert answer.json()["calibration"]["version"] is None  # nothing fitted yet
                feedback.append({"request_id": answer.json()["request_id"], "outcome": outcome})
        sent = client.post("/feedback", json=feedback)
        assert sent.status_code == 200 and sent.json()["recorded"] == len(feedback), sent.text

        recalibrated = subprocess.run(
            [HEARTML, "recalibrate", "--site", "north"],
            cwd=root, env=subprocess_env(), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert recalibrated.returncode == 0, describe(recalibrated)
        north_dir = root / "calibrations" / model_name / version / "north"
        active = json.loads((north_dir / "active.json").read_text())["version"]
        written = json.loads((north_dir / f"v{active}" / "calibration.json").read_text())
        assert written["method"] != "none" and written["window"]["outcomes"] == PATIENTS
        assert not (root / "calibrations" / model_name / version / "south").exists()

        record = records_of(model.pool.head(8), spec.raw_names)
        deadline = time.monotonic() + 20 * RELOAD_S
        while True:  # the server's poll picks the new calibration up, no restart
            served = client.post("/predict", json={**record[0], "site": "north"}).json()
            if served["calibration"]["version"] == active or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert served["calibration"]["version"] == active, served
        for body in record:
            north = client.post("/predict", json={**body, "site": "north"}).json()
            south = client.post("/predict", json={**body, "site": "south"}).json()
            no_site = client.post("/predict", json=body).json()
            raw = south["probability"]
            assert south["calibration"]["version"] is None and no_site["calibration"] is None
            assert no_site["probability"] == raw
            assert north["calibration"]["model_probability"] == raw
            assert abs(north["probability"] - offline_value(written, raw)) <= 1e-9
            assert north["probability"] != pytest.approx(raw, abs=1e-3)  # it did change
        listed = {
            entry["site"]: entry
            for entry in client.get("/model/info").json()["calibrations"]["sites"]
        }
        assert listed["north"]["version"] == active and "south" not in listed
    finally:
        server.stop()
