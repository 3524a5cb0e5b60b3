"""Per site, the labelled predictions scored before and after the site's calibration.

"Before" is the model's own probability (the store's `raw_probability`, which is the served
probability where no calibration was applied); "after" is the probability served. On the same
outcomes: Brier score, log-loss and ROC-AUC, so the gain a calibration brought is read off one
window. The AUC is the same before and after while one monotone calibration served the site; it
differs when the window spans two calibration versions, or rows served raw and calibrated.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from heartml.monitoring.performance import roc_auc
from heartml.store.query import Predictions

LOG_LOSS_EPS = 1e-15  # probabilities clipped to [eps, 1 - eps]: a 0 or 1 answer that is wrong


class Scores(BaseModel):
    brier: float | None = Field(description="Mean squared error of the probability (lower: better)")
    log_loss: float | None = Field(description="Mean negative log-likelihood (lower: better)")
    roc_auc: float | None = Field(description="None with one class only")


class SiteFigures(BaseModel):
    site: str
    count: int = Field(description="Labelled predictions of this site in the window")
    positives: int
    calibrated: int = Field(description="Of them, served with a site calibration")
    calibration_versions: list[int] = Field(
        description="The calibration versions they were served with"
    )
    before: Scores = Field(description="The model's own probabilities")
    after: Scores = Field(description="The probabilities served (calibrated where one applied)")


def scores(outcomes: np.ndarray, probabilities: np.ndarray) -> Scores:
    if len(outcomes) == 0:
        return Scores(brier=None, log_loss=None, roc_auc=None)
    y = outcomes.astype(np.float64)
    p = np.clip(probabilities, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    auc = roc_auc(y, probabilities)
    return Scores(
        brier=float(np.mean((probabilities - y) ** 2)),
        log_loss=float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p))),
        roc_auc=None if np.isnan(auc) else auc,
    )


def site_figures(labelled: Predictions) -> list[SiteFigures]:
    """Per site among labelled predictions (rows without a site left out), by site name."""
    sites = np.array([s if s is not None else "" for s in labelled.site], dtype=object)
    found = []
    for site in sorted({s for s in labelled.site if s is not None}):
        mask = sites == site
        outcomes = labelled.outcome[mask]
        versions = labelled.calibration_version[mask]
        found.append(
            SiteFigures(
                site=site,
                count=int(mask.sum()),
                positives=int(outcomes.sum()),
                calibrated=int((versions >= 0).sum()),
                calibration_versions=sorted({int(v) for v in versions if v >= 0}),
                before=scores(outcomes, labelled.raw_probability[mask]),
                after=scores(outcomes, labelled.probability[mask]),
            )
        )
    return found
