"""The arithmetic the server runs after the ONNX graph (heartml.calibration.document), against
scipy's expit/logit and scikit-learn's isotonic predictions; and the document's own rules."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit
from sklearn.isotonic import IsotonicRegression

from heartml.calibration.document import (
    PROBABILITY_FLOOR,
    SiteCalibration,
    apply,
    scalar_function,
)
from heartml.errors import DocumentError

pytestmark = pytest.mark.monitoring

RAW = np.array([0.0, 1e-9, 0.02, 0.3, 0.5, 0.77, 0.999, 1.0])


def calibration(method: str, **parameters: object) -> SiteCalibration:
    return SiteCalibration.from_json_dict(
        {
            "site": "north-1",
            "model_name": "heart_disease_random_forest",
            "model_version": "3",
            "version": 1,
            "method": method,
            **parameters,
            "window": {
                "first_prediction_at": "2026-01-01T00:00:00+00:00",
                "last_prediction_at": "2026-02-01T00:00:00+00:00",
                "outcomes": 120,
                "positives": 40,
            },
            "folds": 5,
            "cv": [{"method": method, "brier": 0.2, "log_loss": 0.6}],
            "created_at": "2026-02-02T00:00:00+00:00",
        },
        "test",
    )


def oracle_logit(p: np.ndarray) -> np.ndarray:
    return logit(np.clip(p, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR))


@pytest.mark.parametrize(
    ("method", "parameters", "expected"),
    [
        ("none", {}, lambda p: p),
        ("in_the_large", {"intercept": -1.3}, lambda p: expit(oracle_logit(p) - 1.3)),
        (
            "logistic",
            {"intercept": 0.4, "slope": 0.62},
            lambda p: expit(0.4 + 0.62 * oracle_logit(p)),
        ),
    ],
)
def test_parametric_methods_match_scipy(method, parameters, expected) -> None:
    fitted = calibration(method, **parameters)
    assert np.allclose(apply(fitted, RAW), expected(RAW), rtol=0, atol=1e-12)
    one = scalar_function(fitted)
    assert [one(float(p)) for p in RAW] == pytest.approx(expected(RAW).tolist(), abs=1e-12)


def test_isotonic_matches_scikit_learn_predictions() -> None:
    rng = np.random.default_rng(7)
    p = rng.uniform(0, 1, 400)
    y = (rng.uniform(0, 1, 400) < p**2).astype(int)
    model = IsotonicRegression(out_of_bounds="clip", increasing=True).fit(p, y)
    fitted = calibration(
        "isotonic",
        isotonic_x=model.X_thresholds_.tolist(),
        isotonic_y=model.y_thresholds_.tolist(),
    )
    grid = np.concatenate([RAW, rng.uniform(0, 1, 200)])
    assert np.allclose(apply(fitted, grid), model.predict(grid), rtol=0, atol=1e-12)
    one = scalar_function(fitted)
    assert [one(float(q)) for q in grid] == pytest.approx(model.predict(grid).tolist(), abs=1e-12)


def test_every_method_keeps_the_ranking() -> None:
    grid = np.linspace(0, 1, 1001)
    for fitted in (
        calibration("in_the_large", intercept=2.0),
        calibration("logistic", intercept=-0.5, slope=0.3),
        calibration("isotonic", isotonic_x=[0.1, 0.5, 0.9], isotonic_y=[0.0, 0.2, 0.95]),
    ):
        assert np.all(np.diff(apply(fitted, grid)) >= 0), fitted.method


@pytest.mark.parametrize(
    ("method", "parameters", "problem"),
    [
        ("logistic", {"slope": -0.2}, "slope must be > 0"),
        ("logistic", {"slope": 0.0}, "slope must be > 0"),
        ("isotonic", {"isotonic_x": [0.1, 0.5]}, "equal-length"),
        ("isotonic", {"isotonic_x": [0.5, 0.1], "isotonic_y": [0.1, 0.2]}, "non-decreasing"),
        ("platt", {}, "method"),
    ],
)
def test_a_calibration_that_would_break_the_ranking_is_not_read(method, parameters, problem):
    with pytest.raises(DocumentError, match=problem):
        calibration(method, **parameters)
