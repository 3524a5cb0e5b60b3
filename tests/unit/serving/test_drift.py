"""Drift statistics: PSI on the reference's bins and codes, KS against the stored quantiles."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from heartml.package.contents import reference_statistics as spec_reference_statistics
from heartml.serving.drift import (
    MIN_SAMPLES,
    DriftMonitor,
    kolmogorov_sf,
    ks_p_value,
    ks_statistic,
    psi,
    psi_status,
)
from serving_packages import heart_spec

pytestmark = pytest.mark.serving

SPEC = heart_spec()
RAW_FEATURES = SPEC.raw_names


def reference_statistics(frame: pd.DataFrame) -> dict[str, Any]:
    return spec_reference_statistics(frame, SPEC)


def rows_of(frame: pd.DataFrame) -> np.ndarray:
    return frame[list(RAW_FEATURES)].to_numpy(dtype=np.float64, copy=True)


@pytest.fixture
def monitor(cleveland: pd.DataFrame) -> DriftMonitor:
    monitor = DriftMonitor(capacity=500)
    monitor.set_reference(reference_statistics(cleveland), "1", RAW_FEATURES)
    return monitor


def test_psi_is_zero_for_equal_proportions_and_grows_with_the_shift() -> None:
    expected = np.array([0.25, 0.25, 0.25, 0.25])
    assert psi(expected, expected) == pytest.approx(0.0)
    small = psi(expected, np.array([0.3, 0.2, 0.25, 0.25]))
    large = psi(expected, np.array([0.7, 0.1, 0.1, 0.1]))
    # By hand, PSI = sum (a - e) ln(a / e):
    # small = 0.05 ln(0.30/0.25) + (-0.05) ln(0.20/0.25) = 0.05 (0.182322 + 0.223144) = 0.020273
    # large = 0.45 ln(2.8) + 3 (-0.15) ln(0.4) = 0.45 (1.029619 + 0.916291) = 0.875660
    assert small == pytest.approx(0.020273, abs=1e-6)
    assert large == pytest.approx(0.875660, abs=1e-6)
    assert 0 < small < 0.1 < 0.25 < large
    assert np.isfinite(psi(expected, np.array([1.0, 0.0, 0.0, 0.0])))  # empty bins: finite
    assert [psi_status(v) for v in (None, 0.05, 0.2, 0.3)] == [
        "insufficient_data",
        "stable",
        "moderate",
        "significant",
    ]


def test_ks_statistic_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 300), rng.normal(0.3, 1, 101)
    assert ks_statistic(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic)
    ties_a, ties_b = (
        rng.integers(30, 70, 200).astype(float),
        rng.integers(35, 75, 101).astype(float),
    )
    assert ks_statistic(ties_a, ties_b) == pytest.approx(stats.ks_2samp(ties_a, ties_b).statistic)


@pytest.mark.parametrize("lam", [0.3, 0.5, 0.8, 1.0, 1.36, 1.63, 2.5])
def test_kolmogorov_tail_matches_scipy(lam: float) -> None:
    assert kolmogorov_sf(lam) == pytest.approx(stats.kstwobign.sf(lam), abs=1e-6)


def test_ks_p_value_is_close_to_scipys_asymptotic_one() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 500), rng.normal(0.25, 1, 240)
    d = ks_statistic(a, b)
    expected = stats.ks_2samp(a, b, method="asymp").pvalue
    assert ks_p_value(d, len(a), len(b)) == pytest.approx(expected, rel=0.25, abs=1e-3)


def test_resampled_training_rows_do_not_drift(
    monitor: DriftMonitor, cleveland: pd.DataFrame
) -> None:
    monitor.observe(rows_of(cleveland.sample(500, replace=True, random_state=0)))
    report = monitor.report()
    assert report["window_size"] == 500
    for name, feature in report["features"].items():
        assert feature["psi"] < 0.1, (name, feature)
        assert feature["psi_status"] == "stable"
    assert report["features"]["age"]["ks_p_value"] > 0.05
    assert "ks_statistic" not in report["features"]["cp"]  # coded: PSI only


def test_shifted_inputs_drift(monitor: DriftMonitor, cleveland: pd.DataFrame) -> None:
    shifted = cleveland.sample(500, replace=True, random_state=0)
    shifted["age"] = (shifted["age"] + 25).clip(upper=100)
    shifted["chol"] = (shifted["chol"] * 1.5).clip(upper=700)
    monitor.observe(rows_of(shifted))
    features = monitor.report()["features"]
    for name in ("age", "chol"):
        assert features[name]["psi"] > 0.25, features[name]
        assert features[name]["psi_status"] == "significant"
        assert features[name]["ks_p_value"] < 0.001
    assert features["sex"]["psi"] < 0.1


def test_window_keeps_the_latest_rows_and_missing_values_are_counted(
    cleveland: pd.DataFrame,
) -> None:
    monitor = DriftMonitor(capacity=50)
    monitor.set_reference(reference_statistics(cleveland), "1", RAW_FEATURES)
    rows = rows_of(cleveland.head(80))
    rows[-10:, RAW_FEATURES.index("ca")] = np.nan
    monitor.observe(rows)
    report = monitor.report()
    assert report["window_size"] == len(monitor) == 50
    assert report["features"]["ca"]["missing_fraction"] == pytest.approx(10 / 50)
    assert report["features"]["ca"]["window_count"] == 40


def test_too_few_inputs_give_no_statistics(monitor: DriftMonitor, cleveland: pd.DataFrame) -> None:
    monitor.observe(rows_of(cleveland.head(MIN_SAMPLES - 1)))
    feature = monitor.report()["features"]["age"]
    assert feature["psi"] is None and feature["ks_statistic"] is None
    assert feature["psi_status"] == "insufficient_data"


def test_report_is_cached_until_new_inputs_arrive(
    monitor: DriftMonitor, cleveland: pd.DataFrame
) -> None:
    monitor.observe(rows_of(cleveland.head(100)))
    first = monitor.report()
    assert monitor.report() is first
    monitor.observe(rows_of(cleveland.head(1)))
    assert monitor.report() is not first
    monitor.set_reference(reference_statistics(cleveland.head(150)), "2", RAW_FEATURES)
    assert monitor.report()["model_version"] == "2"


def test_a_model_with_other_columns_starts_a_new_window(
    monitor: DriftMonitor, cleveland: pd.DataFrame
) -> None:
    monitor.observe(rows_of(cleveland.head(40)))
    reference = reference_statistics(cleveland)
    fewer = RAW_FEATURES[:-1]
    monitor.set_reference(
        {**reference, "features": {n: reference["features"][n] for n in fewer}}, "2", fewer
    )
    assert len(monitor) == 0  # rows of 13 columns cannot be compared with a 12-column model
    monitor.observe(rows_of(cleveland.head(40))[:, :-1])
    monitor.observe([[63.0] * len(RAW_FEATURES)])  # a request that started before the swap
    report = monitor.report()
    assert report["window_size"] == 40 and set(report["features"]) == set(fewer)
