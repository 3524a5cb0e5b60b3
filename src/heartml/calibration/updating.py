"""`heartml recalibrate` without its command line: fit, gate, record, write; and roll back.

The order of the writes keeps every failure harmless: MLflow first (a tracking server that
cannot be reached fails the command before any file is written), then the version folder,
then the active pointer, then the decision line. Every fitted candidate that reached the gate,
accepted or rejected, is written as the site's next version (never overwritten), so the
version named in a decision line, its MLflow run and its file agree; only active.json says what
is served. A declined run fits nothing: a decision line only.

Rollback undoes the latest accept not yet undone: the site is served again what it was served
before that accept (an earlier version or the raw model). Repeated, it walks back through the
accepts, down to the raw model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import numpy as np
from pydantic import JsonValue
from sqlalchemy.engine import Engine

from heartml.calibration.document import CandidateFigures, OutcomeWindow, SiteCalibration, apply
from heartml.calibration.files import (
    CalibrationFileError,
    Decision,
    DecisionAction,
    active_version,
    append_decision,
    decisions,
    next_version,
    now_text,
    read_calibration,
    set_active,
    site_dir,
    version_dir,
    write_calibration,
)
from heartml.calibration.fitting import SiteFit, decline_reason, fit_site
from heartml.calibration.gate import gate
from heartml.errors import HeartmlError
from heartml.store.query import Selection, count, read

RAW_MODEL_LABEL = "the raw model"


class RecalibrationError(HeartmlError, ValueError):
    """Recalibration cannot start (no predictions, nothing to roll back); one line says why."""


class Recorder(Protocol):
    """The MLflow side (heartml.tracking.calibration_runs.CalibrationRecorder)."""

    def record(self, calibration: SiteCalibration, decision: Decision) -> SiteCalibration: ...

    def tag_served(
        self, model_name: str, model_version: str, site: str, served: SiteCalibration | None
    ) -> None: ...


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name} version {self.version}"


@dataclass(frozen=True)
class SiteOutcomes:
    """A site's labelled predictions of one model version, oldest first."""

    raw_probability: np.ndarray  # the model's own probability, whatever was served
    outcome: np.ndarray  # 0/1
    created_at: np.ndarray  # POSIX seconds
    predictions: int  # all the site's predictions of the version, labelled or not

    def window(self) -> OutcomeWindow:
        def text(seconds: float) -> str:
            return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")

        return OutcomeWindow(
            first_prediction_at=text(float(self.created_at[0])),
            last_prediction_at=text(float(self.created_at[-1])),
            outcomes=len(self.outcome),
            positives=int(np.sum(self.outcome)),
        )


def site_outcomes(engine: Engine, site: str, model: ModelVersion) -> SiteOutcomes:
    selection = Selection(site=site, model_name=model.name, model_version=model.version)
    total = count(engine, selection)
    if total == 0:
        raise RecalibrationError(f"the prediction store has no predictions of {model} at {site!r}")
    rows = read(engine, replace(selection, labelled=True))
    return SiteOutcomes(
        rows.raw_probability, rows.outcome.astype(np.float64), rows.created_at, total
    )


@dataclass(frozen=True)
class Result:
    decision: Decision
    fit: SiteFit | None = None
    candidate: SiteCalibration | None = None  # the version written (accepted or rejected)
    served: SiteCalibration | None = None  # what the site is served now (None: the raw model)


def served_calibration(directory: Path) -> tuple[SiteCalibration | None, str]:
    """The active calibration and its label; a pointer whose file cannot be read is served as
    the raw model (as the server does), and the label says why."""
    version = active_version(directory)
    if version is None:
        return None, RAW_MODEL_LABEL
    try:
        calibration = read_calibration(version_dir(directory, version))
    except CalibrationFileError as exc:
        return None, f"{RAW_MODEL_LABEL} (active v{version} is not served: {exc})"
    return calibration, calibration.label


def _decision(
    action: DecisionAction, site: str, model: ModelVersion, reason: str, **fields: object
) -> Decision:
    return Decision.model_validate(
        {
            "at": now_text(),
            "action": action,
            "site": site,
            "model_name": model.name,
            "model_version": model.version,
            "reason": reason,
            **fields,
        }
    )


def _fit_figures(fit: SiteFit, data: SiteOutcomes) -> dict[str, JsonValue]:
    return {
        "outcomes": len(data.outcome),
        "positives": int(np.sum(data.outcome)),
        "folds": fit.folds,
        "chosen": fit.chosen.method,
        "candidates": [
            {"method": c.method, "cv_brier": c.brier, "cv_log_loss": c.log_loss}
            for c in fit.candidates
        ],
        "dropped": dict(fit.dropped),
    }


def recalibrate(
    calibrations: Path,
    site: str,
    model: ModelVersion,
    data: SiteOutcomes,
    min_outcomes: int,
    recorder: Recorder,
) -> Result:
    """Fit the site's candidates, gate the chosen one against what is served, record it all."""
    directory = site_dir(calibrations, model.name, model.version, site)
    served, served_label = served_calibration(directory)
    before = served.version if served else None
    p, y = data.raw_probability, data.outcome
    declined = decline_reason(site, y, min_outcomes)
    if declined is not None:
        figures: dict[str, JsonValue] = {
            "outcomes": len(y),
            "positives": int(np.sum(y)),
            "min_outcomes": min_outcomes,
        }
        decision = _decision(
            "declined",
            site,
            model,
            declined,
            active_before=before,
            active_after=before,
            figures=figures,
        )
        append_decision(directory, decision)
        return Result(decision, served=served)
    fit = fit_site(p, y)
    chosen = fit.chosen.fitted
    verdict = gate(
        y,
        apply(served, p) if served else p,
        served_label,
        fit.chosen.brier,
        chosen(p),
        chosen.method,
    )
    version = next_version(directory)
    candidate = SiteCalibration(
        site=site,
        model_name=model.name,
        model_version=model.version,
        version=version,
        method=chosen.method,
        intercept=chosen.intercept,
        slope=chosen.slope,
        isotonic_x=chosen.isotonic_x,
        isotonic_y=chosen.isotonic_y,
        window=data.window(),
        folds=fit.folds,
        cv=[
            CandidateFigures(method=c.method, brier=c.brier, log_loss=c.log_loss)
            for c in fit.candidates
        ],
        created_at=now_text(),
    )
    action: DecisionAction = "accepted" if verdict.accept else "rejected"
    decision = _decision(
        action,
        site,
        model,
        f"{fit.choice}; {verdict.reason}",
        candidate_version=version,
        active_before=before,
        active_after=version if verdict.accept else before,
        figures={**_fit_figures(fit, data), **verdict.figures},
    )
    recorded = recorder.record(candidate, decision)
    if verdict.accept:
        recorder.tag_served(model.name, model.version, site, recorded)
    write_calibration(calibrations, recorded)
    if verdict.accept:
        set_active(directory, version)
        served = recorded
    append_decision(directory, decision)
    return Result(decision, fit, recorded, served)


def replaced_by_accepts(history: list[Decision]) -> list[int | None]:
    """What each accept not yet undone replaced (a version; None: the raw model), oldest
    first: a rollback serves the last of them again."""
    replaced: list[int | None] = []
    for decision in history:
        if decision.action == "accepted":
            replaced.append(decision.active_before)
        elif decision.action == "rollback" and replaced:
            replaced.pop()
    return replaced


def rollback(calibrations: Path, site: str, model: ModelVersion, recorder: Recorder) -> Result:
    directory = site_dir(calibrations, model.name, model.version, site)
    replaced = replaced_by_accepts(decisions(directory))
    current = active_version(directory)
    if not replaced:
        raise RecalibrationError(
            f"site {site!r} of {model}: no accepted calibration to roll back "
            f"(served: {f'v{current}' if current else RAW_MODEL_LABEL})"
        )
    target = replaced[-1]
    # The version rolled back to must still be intact: it is about to be served.
    restored = read_calibration(version_dir(directory, target)) if target else None
    label = restored.label if restored else RAW_MODEL_LABEL
    decision = _decision(
        "rollback",
        site,
        model,
        f"back to {label}, served before v{current} was accepted"
        if current
        else f"back to {label}",
        active_before=current,
        active_after=target,
    )
    recorder.tag_served(model.name, model.version, site, restored)
    set_active(directory, target)
    append_decision(directory, decision)
    return Result(decision, served=restored)
