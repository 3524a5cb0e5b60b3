"""Live performance per model version, from the prediction store's sliding window.

For each model version with predictions in the last `max_age_days`:
- labelled: its newest `max_rows` predictions that have an outcome -> realised ROC-AUC (with a
  bootstrap interval), Brier, calibration, precision/recall at the threshold the decisions were
  made with, accuracy;
- unlabelled: its newest `max_rows` predictions still waiting for an outcome -> CBPE's
  estimated ROC-AUC and accuracy with their intervals, recalibrated on the labelled window
  when it is large enough (heartml.monitoring.estimation), shown beside the realised figures.

Figures a window cannot define (AUC with one class, calibration of separable scores) are None.
Each version's bootstrap and draws use a fixed seed: the same window gives the same figures.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine

from heartml.monitoring.estimation import Estimated, estimate
from heartml.monitoring.performance import Realised, realised
from heartml.monitoring.sites import SiteFigures, site_figures
from heartml.store.query import Predictions, Selection, read, versions
from heartml.store.records import utc


@dataclass(frozen=True)
class Window:
    max_rows: int  # per model version, labelled and unlabelled each
    max_age_days: float


class EstimatedFigures(BaseModel):
    method: str = Field(
        default="CBPE: expected ROC-AUC and accuracy from the (recalibrated) probabilities; "
        "95% interval from outcomes sampled from them"
    )
    count: int = Field(description="Predictions without an outcome in the window")
    calibrated_on: int = Field(
        description="Labelled predictions the probabilities were recalibrated on (0: the "
        "package's probabilities taken as calibrated)"
    )
    roc_auc: float | None
    roc_auc_low: float | None
    roc_auc_high: float | None
    accuracy: float | None
    accuracy_low: float | None
    accuracy_high: float | None


class RealisedFigures(BaseModel):
    count: int = Field(description="Labelled predictions in the window")
    positives: int
    roc_auc: float | None
    roc_auc_low: float | None = Field(description="95% bootstrap interval, lower end")
    roc_auc_high: float | None
    brier: float | None
    calibration_intercept: float | None = Field(
        description="Calibration in the large: a in logit P(y) = a + logit(p); 0 is ideal"
    )
    calibration_slope: float | None = Field(
        description="b in logit P(y) = a' + b logit(p); 1 is ideal, < 1: too extreme"
    )
    recalibration_intercept: float | None = Field(description="a' of that fit")
    threshold: float | None
    precision: float | None
    recall: float | None
    accuracy: float | None


class VersionPerformance(BaseModel):
    model_name: str
    model_version: str
    site: str | None = Field(default=None, description="The site asked for; null: every site")
    window_max_rows: int
    window_max_age_days: float
    since: str = Field(description="Start of the window (UTC, ISO 8601)")
    predictions: int = Field(description="Predictions of this version in the window's time")
    labelled: RealisedFigures
    unlabelled: EstimatedFigures
    reference_cv_roc_auc: float | None = None
    reference_cv_roc_auc_low: float | None = Field(
        default=None, description="The package's CV ROC-AUC interval, lower end (the alert's)"
    )
    by_site: list[SiteFigures] = Field(
        default_factory=list,
        description="Per site among the window's labelled predictions (only the site asked "
        "for, with ?site=): Brier, log-loss and ROC-AUC before (the model's own probability) "
        "and after (the served one) the site's calibration",
    )


def cv_roc_auc_reference(metrics: Mapping[str, Any] | None) -> tuple[float | None, float | None]:
    """A package's CV ROC-AUC mean and interval lower end (model_config.yaml `metrics`): what
    live performance is held against (the Prometheus alert, `heartml monitor check`)."""
    cv = metrics.get("cv", {}) if isinstance(metrics, Mapping) else {}
    auc = cv.get("roc_auc", {}) if isinstance(cv, Mapping) else {}
    if not isinstance(auc, Mapping):
        return None, None
    mean, low = auc.get("mean"), auc.get("ci_low")
    return (
        float(mean) if isinstance(mean, int | float) else None,
        float(low) if isinstance(low, int | float) else None,
    )


def estimated_figures(figures: Estimated) -> EstimatedFigures:
    auc, accuracy = figures.roc_auc_interval, figures.accuracy_interval
    return EstimatedFigures(
        count=figures.count,
        roc_auc=figures.roc_auc,
        roc_auc_low=auc[0] if auc else None,
        roc_auc_high=auc[1] if auc else None,
        accuracy=figures.accuracy,
        accuracy_low=accuracy[0] if accuracy else None,
        accuracy_high=accuracy[1] if accuracy else None,
        calibrated_on=figures.calibrated_on,
    )


def realised_figures(figures: Realised, window: Predictions) -> RealisedFigures:
    interval = figures.roc_auc_interval
    return RealisedFigures(
        count=figures.count,
        positives=figures.positives,
        roc_auc=figures.roc_auc,
        roc_auc_low=interval[0] if interval else None,
        roc_auc_high=interval[1] if interval else None,
        brier=figures.brier,
        calibration_intercept=figures.calibration.intercept,
        calibration_slope=figures.calibration.slope,
        recalibration_intercept=figures.calibration.recalibration_intercept,
        threshold=float(window.threshold[-1]) if len(window) else None,
        precision=figures.precision,
        recall=figures.recall,
        accuracy=figures.accuracy,
    )


def version_performance(
    engine: Engine,
    model_name: str,
    model_version: str,
    window: Window,
    predictions: int,
    *,
    site: str | None = None,
    now: float | None = None,
) -> VersionPerformance:
    since = utc((time.time() if now is None else now) - window.max_age_days * 86400.0)
    base = Selection(since=since, model_name=model_name, model_version=model_version, site=site)
    labelled = read(engine, replace(base, labelled=True, limit=window.max_rows))
    unlabelled = read(engine, replace(base, labelled=False, limit=window.max_rows))
    outcomes = labelled.outcome.astype("float64")
    return VersionPerformance(
        model_name=model_name,
        model_version=model_version,
        site=site,
        window_max_rows=window.max_rows,
        window_max_age_days=window.max_age_days,
        since=since.isoformat(),
        predictions=predictions,
        labelled=realised_figures(
            realised(outcomes, labelled.probability, labelled.prediction), labelled
        ),
        unlabelled=estimated_figures(
            estimate(
                unlabelled.probability,
                unlabelled.prediction,
                reference_outcomes=outcomes,
                reference_probabilities=labelled.probability,
            )
        ),
        by_site=site_figures(labelled),
    )


def live_performance(
    engine: Engine,
    window: Window,
    *,
    model_version: str | None = None,
    site: str | None = None,
    now: float | None = None,
) -> list[VersionPerformance]:
    """Every model version with predictions in the window's time, most recently used first."""
    now = time.time() if now is None else now
    since = utc(now - window.max_age_days * 86400.0)
    found = versions(engine, Selection(since=since, model_version=model_version, site=site))
    return [
        version_performance(
            engine, v.model_name, v.model_version, window, v.predictions, site=site, now=now
        )
        for v in found
    ]
