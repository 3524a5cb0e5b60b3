"""Site calibrations in MLflow: one run per fitted calibration, and a tag on the model version.

Each calibration that reached the gate (accepted or rejected) is a run in its own experiment,
"<spec experiment>-site-calibration", with the site, the model version, the method, the outcomes
and every candidate's CV figures, the decision and its reason, and calibration.json (the very
document written beside the packages, run id included) as its artifact. When a calibration is
accepted or rolled back, the calibrated model version gets the tag `heartml.calibration.<site>`
naming what the site is served now ("v3 logistic", or "raw model"). Nothing here registers a
model version: only `heartml track` does.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from heartml.calibration.document import SiteCalibration
from heartml.calibration.files import CALIBRATION_FILE, Decision
from heartml.tracking.connection import mlflow_module
from heartml.tracking.registry import MAX_TAG_LENGTH, Registry

EXPERIMENT_SUFFIX = "-site-calibration"
VERSION_TAG_PREFIX = "heartml.calibration."
RUN_TYPE = "site_calibration"
RAW_MODEL = "raw model"


def version_tag_key(site: str) -> str:
    return VERSION_TAG_PREFIX + site


def served_text(calibration: SiteCalibration | None) -> str:
    """What the model version's tag says a site is served."""
    return RAW_MODEL if calibration is None else f"v{calibration.version} {calibration.method}"


def _numbers(figures: dict[str, Any]) -> dict[str, float]:
    return {
        key: float(value)
        for key, value in figures.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


class CalibrationRecorder:
    """Writes the MLflow side of `heartml recalibrate` through a connected Registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    @property
    def experiment(self) -> str:
        return self.registry.settings.mlflow_experiment + EXPERIMENT_SUFFIX

    def record(self, calibration: SiteCalibration, decision: Decision) -> SiteCalibration:
        """Log the run; return the calibration with its run id (the document to write)."""
        entities = mlflow_module().entities
        client = self.registry.client
        experiment_id = self.registry.ensure_experiment(self.experiment)
        window = calibration.window
        params = {
            "site": calibration.site,
            "model_name": calibration.model_name,
            "model_version": calibration.model_version,
            "calibration_version": calibration.version,
            "method": calibration.method,
            "intercept": calibration.intercept,
            "slope": calibration.slope,
            "outcomes": window.outcomes,
            "positives": window.positives,
            "first_prediction_at": window.first_prediction_at,
            "last_prediction_at": window.last_prediction_at,
            "folds": calibration.folds,
        }
        metrics = {"outcomes": float(window.outcomes), **_numbers(decision.figures)}
        for figures in calibration.cv:
            metrics[f"cv_brier.{figures.method}"] = figures.brier
            metrics[f"cv_log_loss.{figures.method}"] = figures.log_loss
        tags = {
            "heartml.run_type": RUN_TYPE,
            "heartml.site": calibration.site,
            "heartml.model_name": calibration.model_name,
            "heartml.model_version": calibration.model_version,
            "heartml.calibration.decision": decision.action,
            "heartml.calibration.reason": decision.reason[:MAX_TAG_LENGTH],
        }
        now = int(time.time() * 1000)
        with self.registry.errors("recording the site calibration"):
            run = client.create_run(
                experiment_id, run_name=f"{calibration.site}-v{calibration.version}", tags=tags
            )
            run_id = run.info.run_id
            try:
                recorded = calibration.model_copy(update={"mlflow_run_id": run_id})
                client.log_batch(
                    run_id,
                    metrics=[entities.Metric(k, v, now, 0) for k, v in metrics.items()],
                    params=[entities.Param(k, str(v)) for k, v in params.items()],
                )
                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / CALIBRATION_FILE
                    recorded.write(path)
                    client.log_artifact(run_id, str(path))
                client.set_terminated(run_id, "FINISHED")
            except Exception:
                client.set_terminated(run_id, "FAILED")
                raise
        return recorded

    def tag_served(
        self, model_name: str, model_version: str, site: str, served: SiteCalibration | None
    ) -> None:
        with self.registry.errors(f"tagging {model_name} version {model_version}"):
            self.registry.client.set_model_version_tag(
                model_name, model_version, version_tag_key(site), served_text(served)
            )
