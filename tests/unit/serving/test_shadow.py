"""A challenger scored in shadow (heartml.serving.shadow), through the real app.

The champion is a logistic regression, the challenger a random forest (real packages, real ONNX
graphs). The oracle is the two fitted sklearn pipelines themselves, on the same rows: the share
of rows where their 0/1 decisions agree and the mean |Δp|, computed here with numpy.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from heartml.serving.loaded_model import load_package
from serving_packages import heart_spec, records_of

pytestmark = pytest.mark.serving

RAW = heart_spec().raw_names


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def shadow_series(client: Any) -> dict[str, float]:
    samples = metric_samples(client.get("/metrics").text)
    return {
        name + "".join(f"{{{k}={v}}}" for k, v in labels if k == "model"): value
        for (name, labels), value in samples.items()
        if name.startswith("heartml_shadow_")
    }


def wait_compared(client: Any, rows: int, timeout: float = 20.0) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        series = shadow_series(client)
        done = sum(series.get(f"heartml_shadow_{k}_total", 0) for k in ("compared", "errors"))
        if done >= rows or time.monotonic() > deadline:
            return series
        time.sleep(0.05)


def test_agreement_and_mean_difference_equal_the_offline_figures(
    tmp_path: Path,
    make_package: Callable[..., Path],
    settings_for: Callable[..., Any],
    client_for: Callable[..., Any],
    fitted: dict[str, Any],
    heart_frame: pd.DataFrame,
) -> None:
    make_package(tmp_path / "packages", version="1", algorithm="logistic_regression")
    challenger = make_package(tmp_path / "shadow", version="7", algorithm="random_forest")
    client = client_for(settings_for(shadow_package=challenger))
    deadline = time.monotonic() + 10
    while client.get("/model/info").json().get("shadow") is None:
        assert time.monotonic() < deadline, "the challenger was never loaded"
        time.sleep(0.02)

    records = records_of(heart_frame, RAW)
    half = len(records) // 2
    single = [client.post("/predict", json=record) for record in records[:half]]
    batch = client.post("/predict/batch", json={"records": records[half:]})
    assert all(r.status_code == 200 for r in single) and batch.status_code == 200
    series = wait_compared(client, len(records))

    # The oracle: the fitted sklearn pipelines on the same rows, each at its threshold (0.5).
    frame = heart_frame[list(RAW)]
    p_champion = fitted["logistic_regression"][0].predict_proba(frame)[:, 1]
    p_challenger = fitted["random_forest"][0].predict_proba(frame)[:, 1]
    agreement = float(np.mean((p_champion >= 0.5) == (p_challenger >= 0.5)))
    mean_difference = float(np.mean(np.abs(p_champion - p_challenger)))
    # No row sits so close to the threshold that ONNX's float rounding could flip it.
    assert np.min(np.abs(np.r_[p_champion, p_challenger] - 0.5)) > 1e-5
    assert 0.5 < agreement < 1.0 and mean_difference > 0.01  # the two models do differ

    n = float(len(records))
    assert series["heartml_shadow_compared_total"] == n
    assert series["heartml_shadow_predictions_total{model=champion}"] == n
    assert series["heartml_shadow_predictions_total{model=challenger}"] == n
    assert (
        series["heartml_shadow_dropped_total"] == 0 and series["heartml_shadow_errors_total"] == 0
    )
    assert series["heartml_shadow_agreements_total"] == round(agreement * n)
    assert series["heartml_shadow_agreement_ratio"] == pytest.approx(agreement, abs=1e-12)
    assert series["heartml_shadow_abs_difference_mean"] == pytest.approx(mean_difference, abs=1e-6)

    info = client.get("/model/info").json()
    shadow = info["shadow"]
    assert (info["version"], shadow["challenger"]["version"]) == ("1", "7")
    assert shadow["challenger"]["algorithm"] == "random_forest"
    assert shadow["predictions"] == {"champion": len(records), "challenger": len(records)}
    assert shadow["agreement_rate"] == pytest.approx(agreement, abs=1e-12)
    assert shadow["mean_abs_difference"] == pytest.approx(mean_difference, abs=1e-6)
    # Never returned: the answers are the champion's alone.
    np.testing.assert_allclose(
        [r.json()["probability"] for r in single], p_champion[:half], atol=1e-6
    )
    assert all(r.json()["model_version"] == "1" for r in single)


class Raising:
    """A model that fails on every row it is given."""

    def predict_proba(self, data: Any) -> np.ndarray:
        raise RuntimeError("challenger exploded")


class Slow:
    """A model far slower than the champion (scores correctly, after a pause)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def predict_proba(self, data: Any) -> np.ndarray:
        time.sleep(0.2)
        return np.asarray(self.inner(data))  # P(class 1), as the Scorer protocol says


def test_a_challenger_that_throws_on_every_row_fails_no_request(
    tmp_path: Path,
    make_package: Callable[..., Path],
    settings_for: Callable[..., Any],
    client_for: Callable[..., Any],
    heart_frame: pd.DataFrame,
    caplog: pytest.LogCaptureFixture,
) -> None:
    make_package(tmp_path / "packages", version="1")
    other = make_package(tmp_path / "other", version="2", algorithm="random_forest")
    client = client_for(settings_for())
    expected = [client.post("/predict", json=r).json() for r in records_of(heart_frame, RAW)[:50]]

    service = client.app.state.service
    loaded = load_package(other, "package:test", "f", 1)
    service.shadow.set_challenger(dataclasses.replace(loaded, scorer=Raising()))
    records = records_of(heart_frame, RAW)
    with caplog.at_level(logging.WARNING, logger="heartml.serving.shadow"):
        answers = [client.post("/predict", json=record) for record in records]
        batch = client.post("/predict/batch", json={"records": records[:20]})
        series = wait_compared(client, len(records) + 20)
    assert [r.status_code for r in answers] == [200] * len(records)
    assert batch.status_code == 200
    for got, before in zip(answers, expected, strict=False):  # the same answers as without it
        assert got.json()["probability"] == before["probability"]
    assert series["heartml_shadow_errors_total"] == len(records) + 20
    assert series["heartml_shadow_compared_total"] == 0
    assert series["heartml_shadow_predictions_total{model=challenger}"] == 0
    warnings = [r for r in caplog.records if "challenger failed to score" in r.getMessage()]
    assert len(warnings) == 1, "one log line per kind of failure, not one per batch"
    assert client.get("/model/info").json()["shadow"]["errors"] == len(records) + 20


def test_a_challenger_too_slow_to_keep_up_is_dropped_and_counted(
    tmp_path: Path,
    make_package: Callable[..., Path],
    settings_for: Callable[..., Any],
    client_for: Callable[..., Any],
    heart_frame: pd.DataFrame,
) -> None:
    make_package(tmp_path / "packages", version="1")
    other = make_package(tmp_path / "other", version="2", algorithm="random_forest")
    client = client_for(settings_for(shadow_queue_rows=16))
    loaded = load_package(other, "package:test", "f", 1)
    slow = dataclasses.replace(loaded, scorer=Slow(loaded.probabilities))
    client.app.state.service.shadow.set_challenger(slow)
    records = records_of(heart_frame, RAW)[:120]
    answers = [client.post("/predict", json=record) for record in records]
    assert {r.status_code for r in answers} == {200}
    deadline = time.monotonic() + 20
    while True:
        shadow = client.get("/model/info").json()["shadow"]
        settled = shadow["predictions"]["challenger"] + shadow["dropped"]
        if settled == len(records) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert shadow["predictions"]["champion"] == len(records)
    assert shadow["dropped"] > 0, shadow  # the queue holds 16 rows; the challenger sleeps
    assert shadow["errors"] == 0, shadow
    assert settled == len(records), shadow  # every row either compared or counted as dropped
