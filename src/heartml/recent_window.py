"""The promotion gate's models scored on the recent labelled window of the prediction store.

When outcomes have come back for recent predictions, how the candidate and the champion (as
registered, and retrained on the candidate's data when the data changed) would have scored
those patients is what a reviewer asks first. The rows are the labelled predictions of the
monitoring window (HEARTML_MONITOR_WINDOW newest, no older than HEARTML_MONITOR_WINDOW_DAYS),
their stored raw inputs read as the dataset's rows exactly as `heartml data --with-feedback`
reads them (heartml.data.feedback), and each model's probabilities are scored with the live
monitoring's own ROC-AUC and Brier score (heartml.monitoring.performance). Information for the
decision record only: the gate still decides on the folds. A missing or unreadable store, or
no labelled rows, is "no labelled window", never a failure of `heartml track`.

Note: when the new data was built with feedback, the window's rows may be among the rows the
candidate and the retrained champion were fitted on (not the registered champion's).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from heartml.data.feedback import feedback_rows
from heartml.errors import HeartmlError
from heartml.monitoring.performance import brier, roc_auc
from heartml.settings import Settings
from heartml.spec import TARGET, DatasetSpec
from heartml.store.engine import create_engine, error_text, normalized_url, shown, sqlite_path
from heartml.store.query import Selection
from heartml.store.records import utc
from heartml.tracking.promotion import WindowEvidence

if TYPE_CHECKING:
    from heartml.config import PipelineConfig
    from heartml.tracking.registry import Registry
    from heartml.tracking.versions import ChampionInfo

Progress = Callable[[str], None]
ModelLoader = Callable[[], Any]  # a fitted pipeline (predict_proba), loaded only when needed


def labelled_window(
    settings: Settings, report: Progress, now: float | None = None
) -> pd.DataFrame | None:
    """The window's labelled predictions as dataset rows (raw columns and the target), oldest
    first; None when there is no store to read (said through `report`)."""
    url = settings.resolved_store_url
    try:
        path = sqlite_path(normalized_url(url))
        if path is not None and not path.is_file():  # reading must not create a store
            report(f"no prediction store at {path}: no labelled window")
            return None
        since = utc((time.time() if now is None else now) - settings.monitor_window_days * 86400)
        selection = Selection(since=since, labelled=True, limit=settings.monitor_window)
        engine = create_engine(url)
        try:
            return feedback_rows(engine, settings.catalog.spec, selection).frame
        finally:
            engine.dispose()
    except (sa.exc.SQLAlchemyError, HeartmlError) as exc:
        report(f"the prediction store {shown(url)} cannot be read ({error_text(exc)})")
        return None


def score_window(
    rows: pd.DataFrame, spec: DatasetSpec, models: Mapping[str, ModelLoader], report: Progress
) -> WindowEvidence:
    """ROC-AUC and Brier score of each model (by WINDOW_MODELS key) on the rows; a model that
    cannot be loaded is left out (said through `report`)."""
    if rows.empty:
        return WindowEvidence()
    X, y = rows.loc[:, list(spec.raw_names)], rows[TARGET].to_numpy(dtype=np.float64)
    aucs: dict[str, float | None] = {}
    briers: dict[str, float] = {}
    for model, load in models.items():
        try:
            pipeline = load()
        except HeartmlError as exc:
            report(f"the {model} cannot be scored on the labelled window: {exc}")
            continue
        classes = list(pipeline.classes_)
        probabilities = pipeline.predict_proba(X)[:, classes.index(1)]
        auc = roc_auc(y, probabilities)
        aucs[model] = None if np.isnan(auc) else auc
        briers[model] = brier(y, probabilities)
    return WindowEvidence(rows=len(rows), roc_auc=aucs, brier=briers)


def window_evidence(
    settings: Settings, models: Mapping[str, ModelLoader], report: Progress
) -> WindowEvidence:
    rows = labelled_window(settings, report)
    if rows is None:
        return WindowEvidence()
    report(f"scoring the gate's models on {len(rows)} labelled predictions of the recent window")
    return score_window(rows, settings.catalog.spec, models, report)


def gate_window(
    registry: Registry,
    current: ChampionInfo,
    candidate: Any,
    retrained: bool,
    train: pd.DataFrame,
    settings: Settings,
    config: PipelineConfig,
    report: Progress,
) -> WindowEvidence:
    """`heartml track`'s window evidence: the candidate's fitted pipeline, the registered
    champion, and (`retrained`: the gate compares with it) the champion's configuration fitted
    on the candidate's training rows. Models are loaded or fitted only when there are rows."""
    from heartml.retrain import fitted_configuration

    def refit() -> Any:
        params = registry.run_params(current.run_id)
        return fitted_configuration(current.algorithm, params, train, settings.catalog.spec, config)

    models: dict[str, ModelLoader] = {
        "candidate": lambda: candidate,
        "champion": lambda: registry.load_pipeline(current.model_uri),
    }
    if retrained:
        models["champion_retrained"] = refit
    return window_evidence(settings, models, report)
