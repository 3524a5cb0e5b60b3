"""Site calibrations for the tests, written with heartml.calibration.files (the real layout:
version folder, manifest with sha256, active pointer), and the offline oracle of their value."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.special import expit, logit

from heartml.calibration.document import (
    PROBABILITY_FLOOR,
    CalibrationMethod,
    OutcomeWindow,
    SiteCalibration,
)
from heartml.calibration.files import set_active, site_dir, write_calibration

MODEL_NAME = "heart_disease_logistic_regression"


def make_calibration(
    calibrations: Path,
    site: str,
    version: int,
    *,
    intercept: float,
    slope: float = 1.0,
    method: CalibrationMethod = "logistic",
    model_name: str = MODEL_NAME,
    model_version: str = "1",
    activate: bool = True,
) -> SiteCalibration:
    calibration = SiteCalibration(
        site=site,
        model_name=model_name,
        model_version=model_version,
        version=version,
        method=method,
        intercept=intercept,
        slope=slope,
        window=OutcomeWindow(
            first_prediction_at="2026-11-01T00:00:00+00:00",
            last_prediction_at="2026-11-30T00:00:00+00:00",
            outcomes=120,
            positives=50,
        ),
        folds=5,
        cv=[],
        created_at="2026-12-01T00:00:00+00:00",
    )
    write_calibration(calibrations, calibration)
    if activate:
        set_active(site_dir(calibrations, model_name, model_version, site), version)
    return calibration


def offline(raw: float | np.ndarray, intercept: float, slope: float = 1.0) -> np.ndarray:
    """expit(a + b logit(p)) with scipy, p clipped as the calibration documents."""
    p = np.clip(np.asarray(raw, dtype=np.float64), PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    return np.asarray(expit(intercept + slope * logit(p)))


def tamper(calibrations: Path, site: str, version: int, model_version: str = "1") -> Path:
    """Change the file's bytes (still a valid document: 121 outcomes for 120), so that only its
    sha256 gives it away."""
    directory = site_dir(calibrations, MODEL_NAME, model_version, site)
    path = directory / f"v{version}" / "calibration.json"
    text = path.read_text()
    assert "120" in text
    path.write_text(text.replace("120", "121", 1))
    return path
