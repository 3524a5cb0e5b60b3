"""The site calibration document and the arithmetic that applies it.

Every method is monotone non-decreasing in the model's probability, so a site's ranking (its
AUC) is what the model gave it: only the probabilities a clinician reads change.

    none          p
    in_the_large  expit(logit(p) + intercept)             (slope fixed at 1)
    logistic      expit(intercept + slope * logit(p))
    isotonic      linear interpolation through (x, y), clipped at the ends (as scikit-learn's
                  IsotonicRegression with out_of_bounds="clip" predicts)

logit(p) is taken of p clipped to [PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR]: a model can answer
exactly 0 or 1 (a random forest whose trees all agree), whose logit is infinite. Fitting and
serving clip alike, so the served value is the fitted one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import pairwise
from typing import Literal, get_args

import numpy as np
from pydantic import Field, model_validator

from heartml.documents.base import Document, Part

CalibrationMethod = Literal["none", "in_the_large", "logistic", "isotonic"]
METHODS: tuple[CalibrationMethod, ...] = get_args(CalibrationMethod)
PROBABILITY_FLOOR = 1e-6
CALIBRATION_FORMAT = 1


class OutcomeWindow(Part):
    """The labelled predictions a calibration was fitted on."""

    first_prediction_at: str
    last_prediction_at: str
    outcomes: int = Field(ge=1)
    positives: int = Field(ge=0)


class CandidateFigures(Part):
    """One candidate method's cross-validated figures on the site's outcomes (lower is better)."""

    method: CalibrationMethod
    brier: float
    log_loss: float


class SiteCalibration(Document):
    format: int = CALIBRATION_FORMAT
    site: str
    model_name: str
    model_version: str
    version: int = Field(ge=1)  # per (model version, site), from 1
    method: CalibrationMethod
    intercept: float = 0.0
    slope: float = 1.0
    isotonic_x: list[float] | None = None
    isotonic_y: list[float] | None = None
    window: OutcomeWindow
    folds: int = Field(ge=2)
    cv: list[CandidateFigures]  # every candidate tried, the chosen one included
    created_at: str
    mlflow_run_id: str | None = None

    @model_validator(mode="after")
    def _parameters_fit_the_method(self) -> SiteCalibration:
        if self.method == "isotonic":
            x, y = self.isotonic_x, self.isotonic_y
            if not x or not y or len(x) != len(y):
                raise ValueError("isotonic: isotonic_x and isotonic_y must be equal-length lists")
            if any(b < a for a, b in pairwise(x)) or any(b < a for a, b in pairwise(y)):
                raise ValueError("isotonic: isotonic_x and isotonic_y must be non-decreasing")
        elif self.method == "logistic" and not self.slope > 0:
            # A slope <= 0 would reverse or erase the ranking: never a recalibration.
            raise ValueError(f"logistic: slope must be > 0 (found {self.slope})")
        return self

    @property
    def label(self) -> str:
        return f"{self.site} v{self.version} ({self.method})"


def clipped_logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)
    return np.log(q / (1.0 - q))


def expit(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def apply_method(
    method: CalibrationMethod,
    p: np.ndarray,
    intercept: float = 0.0,
    slope: float = 1.0,
    x: list[float] | None = None,
    y: list[float] | None = None,
) -> np.ndarray:
    """The calibrated probabilities of raw probabilities `p` (any shape), as float64."""
    p = np.asarray(p, dtype=np.float64)
    if method == "none":
        return p.copy()
    if method == "isotonic":
        assert x is not None and y is not None
        return np.interp(p, x, y)
    return expit(intercept + slope * clipped_logit(p))


def apply(calibration: SiteCalibration, p: np.ndarray) -> np.ndarray:
    return apply_method(
        calibration.method,
        p,
        calibration.intercept,
        calibration.slope,
        calibration.isotonic_x,
        calibration.isotonic_y,
    )


def scalar_function(calibration: SiteCalibration) -> Callable[[float], float]:
    """The same map for one Python float (the server's micro-batches are lists: no numpy)."""
    method, a, b = calibration.method, calibration.intercept, calibration.slope
    low, high = PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR
    if method == "none":
        return float
    if method == "isotonic":
        x, y = calibration.isotonic_x, calibration.isotonic_y
        return lambda p: float(np.interp(p, x, y))  # type: ignore[arg-type]

    def logistic(p: float) -> float:
        q = low if p < low else high if p > high else p
        return 1.0 / (1.0 + math.exp(-(a + b * math.log(q / (1.0 - q)))))

    return logistic
