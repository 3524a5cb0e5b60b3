"""Site calibrations served: applied per row in a mixed-site micro-batch, a refused file served
raw and logged once, a new or rolled-back version picked up by the model's poll.

Real packages (tests/serving_packages.py), real calibration files (heartml.calibration.files),
a real SQLite prediction store. Oracle: scipy's expit/logit on the model's own probability.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from heartml.calibration.files import set_active, site_dir
from heartml.serving.calibrations import ServedCalibrations
from heartml.serving.drift import DriftMonitor
from heartml.serving.loaded_model import LoadedModel, load_package
from heartml.serving.metrics import ServiceMetrics
from heartml.serving.model_store import ModelStore
from heartml.serving.service import Service
from heartml.settings import Settings
from heartml.store.engine import create_engine, upgrade
from heartml.store.query import Selection, read
from heartml.store.writer import PredictionWriter
from serving_packages import heart_spec
from site_calibrations import MODEL_NAME, make_calibration, offline, tamper

pytestmark = pytest.mark.serving

RAW_FEATURES = list(heart_spec().raw_names)
SEED_BODY = heart_spec().example_record()  # the seed's patient
PackageFactory = Callable[..., Path]
A = {"intercept": -3.0, "slope": 0.8}  # strong enough to flip decisions at 0.5
C = {"intercept": 1.5}  # recalibration in the large


@pytest.fixture
def model(tmp_path: Path, make_package: PackageFactory) -> LoadedModel:
    return load_package(make_package(tmp_path / "packages"), "test", "f", 1)


def service_for(model: LoadedModel, calibrations: Path, recorder: Any = None) -> Service:
    settings = Settings(serve_reload_interval_s=0)
    service = Service(
        settings=settings,
        store=ModelStore(settings),
        metrics=ServiceMetrics(),
        drift=DriftMonitor(100),
        recorder=recorder,
        calibrations=ServedCalibrations(calibrations, None),
    )
    service.model_changed(model)
    return service


def test_a_mixed_site_micro_batch_is_calibrated_per_row_and_stored_as_served(
    tmp_path: Path, model: LoadedModel, cleveland: pd.DataFrame
) -> None:
    calibrations = tmp_path / "calibrations"
    make_calibration(calibrations, "A", 1, **A)
    make_calibration(calibrations, "C", 2, method="in_the_large", **C)
    engine = create_engine(f"sqlite:///{tmp_path / 'predictions.db'}")
    upgrade(engine, create_parent=True)
    writer = PredictionWriter(engine, max_rows=1000, flush_interval_s=0.05)
    writer.start()
    service = service_for(model, calibrations, writer)
    rows = cleveland[RAW_FEATURES].head(10).to_numpy(dtype=np.float64)
    sites = ["A", "B", None, "C", "A", None, "A", "C", "B", "A"]

    async def score_all() -> Any:
        assert service.calibrations is not None
        await service.calibrations.prepare(model)
        return await asyncio.gather(
            *(
                service.score_one(model, row.tolist(), f"r{i}", site)
                for i, (row, site) in enumerate(zip(rows, sites, strict=True))
            )
        )

    results = asyncio.run(score_all())
    raw = model.probabilities(rows)
    expected = {
        "A": offline(raw, **A),
        "C": offline(raw, **C),
        "B": raw,
        None: raw,
    }
    flipped = 0
    for i, ((probability, prediction, own, entry), site) in enumerate(
        zip(results, sites, strict=True)
    ):
        assert abs(probability - expected[site][i]) <= 1e-12, (i, site)
        assert own == pytest.approx(raw[i], abs=1e-12)
        assert prediction == int(probability >= model.threshold)  # decided on the served one
        flipped += prediction != int(raw[i] >= model.threshold)
        assert (entry is None) == (site is None)
        if site is not None:
            assert entry.version == {"A": 1, "C": 2, "B": None}[site]
    assert flipped > 0  # the calibration changed decisions, not only the numbers
    assert writer.wait_written(10)
    writer.close()
    stored = read(engine, Selection())
    by_id = {rid: i for i, rid in enumerate(stored.request_id)}
    assert len(by_id) == 10
    for i, site in enumerate(sites):
        j = by_id[f"r{i}"]
        assert stored.site[j] == site
        assert stored.probability[j] == pytest.approx(results[i][0], abs=1e-12)
        assert stored.raw_probability[j] == pytest.approx(raw[i], abs=1e-12)
        assert stored.calibration_version[j] == {"A": 1, "C": 2}.get(site, -1)  # type: ignore[arg-type]


def test_a_calibration_with_a_wrong_checksum_is_served_raw_and_logged_once(
    tmp_path: Path, model: LoadedModel, caplog: pytest.LogCaptureFixture
) -> None:
    calibrations = tmp_path / "calibrations"
    make_calibration(calibrations, "A", 1, **A)
    make_calibration(calibrations, "OK", 1, **C)
    tamper(calibrations, "A", 1)
    service = service_for(model, calibrations)
    served = service.calibrations
    assert served is not None
    row = [float(v) for v in model.baseline]

    async def polls() -> Any:
        await served.prepare(model)
        for n in range(4):
            await served.check(model)
            if n == 1:  # another site changes: the folder is read again, A still refused
                make_calibration(calibrations, "OK", 2, **A)
        return await service.score_one(model, row, "r", "A")

    with caplog.at_level(logging.INFO, logger="heartml.serving"):
        probability, _, own, entry = asyncio.run(polls())
    assert probability == own == pytest.approx(model.probabilities(np.array([row]))[0], abs=0)
    assert entry is not None and entry.calibration is None and "refused" in entry.detail
    refused = [r for r in caplog.records if "calibration refused" in r.getMessage()]
    assert len(refused) == 1, [r.getMessage() for r in refused]
    assert "sha256" in refused[0].reason  # type: ignore[attr-defined]
    info = served.info(model)
    assert list(info["problems"]) == ["A"] and "sha256" in info["problems"]["A"]
    assert [(s["site"], s["version"]) for s in info["sites"]] == [("OK", 2)]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_the_models_poll_picks_up_a_new_version_and_a_rollback(
    tmp_path: Path,
    make_package: PackageFactory,
    settings_for: Callable[..., Settings],
    client_for: Callable[..., Any],
) -> None:
    make_package(tmp_path / "packages")
    calibrations = tmp_path / "calibrations"
    client = client_for(settings_for(serve_reload_interval_s=0.1, store_enabled=False))
    body = {**SEED_BODY, "site": "A"}

    def served() -> dict[str, Any]:
        answer = client.post("/predict", json=body)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    first = served()
    raw = first["calibration"]["model_probability"]
    assert first["calibration"]["version"] is None and first["probability"] == raw
    make_calibration(calibrations, "A", 1, **A)
    wait_for(lambda: served()["calibration"]["version"] == 1, "version 1 served")
    assert abs(served()["probability"] - offline(raw, **A)) <= 1e-12
    make_calibration(calibrations, "A", 2, **C)
    wait_for(lambda: served()["calibration"]["version"] == 2, "version 2 served")
    assert abs(served()["probability"] - offline(raw, **C)) <= 1e-12
    info = client.get("/model/info").json()["calibrations"]
    assert [(s["site"], s["version"], s["method"]) for s in info["sites"]] == [("A", 2, "logistic")]
    set_active(site_dir(calibrations, MODEL_NAME, "1", "A"), 1)  # rolled back
    wait_for(lambda: served()["calibration"]["version"] == 1, "the rollback to version 1")
    set_active(site_dir(calibrations, MODEL_NAME, "1", "A"), None)  # the raw model again
    wait_for(lambda: served()["calibration"]["version"] is None, "the raw model")
    assert served()["probability"] == raw


def test_a_request_without_a_site_takes_the_deployments(
    tmp_path: Path,
    make_package: PackageFactory,
    settings_for: Callable[..., Settings],
    client_for: Callable[..., Any],
) -> None:
    make_package(tmp_path / "packages")
    make_calibration(tmp_path / "calibrations", "A", 1, **A)
    client = client_for(settings_for(serve_site="A", store_enabled=False))
    body = dict(SEED_BODY)
    default = client.post("/predict", json=body).json()
    own = client.post("/predict", json={**body, "site": "B"}).json()
    assert default["site"] == "A" and default["calibration"]["version"] == 1
    assert abs(default["probability"] - offline(own["probability"], **A)) <= 1e-12
    assert own["site"] == "B" and own["calibration"]["version"] is None
    batch = client.post("/predict/batch", json={"records": [body]}).json()
    assert batch["site"] == "A" and batch["results"][0]["probability"] == default["probability"]
    assert client.get("/model/info").json()["calibrations"]["default_site"] == "A"
