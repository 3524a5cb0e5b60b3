"""`heartml monitor check`: has anything crossed a configured threshold since a given time?

Two kinds of reasons, each one line naming what crossed which limit:
- input drift: a feature of the served package's reference statistics whose stored inputs since
  then have a PSI (or, numeric features, a KS statistic) above the settings' limit, computed by
  the service's own drift code (heartml.serving.drift.feature_drift: same bins, same floor);
- live performance: the served model version's realised ROC-AUC over its labelled predictions
  in that time (heartml.monitoring.live, the window /monitoring/performance uses) below the lower
  end of the package's CV interval, once at least `min_labels` outcomes are in — the condition
  of the HeartmlLiveAucBelowReference alert.
A feature with fewer inputs than the drift code's minimum, or a window with too few outcomes or
one class, gives no reason: not enough evidence is not an alarm.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy.engine import Engine

from heartml.documents.package import ReferenceStatistics
from heartml.monitoring.live import (
    VersionPerformance,
    Window,
    cv_roc_auc_reference,
    live_performance,
)
from heartml.package.manifest import VerifiedPackage
from heartml.serving.drift import feature_drift
from heartml.serving.schemas import FeatureDrift
from heartml.settings import Settings
from heartml.store.query import Predictions, Selection, iter_read
from heartml.store.records import utc


@dataclass(frozen=True)
class Limits:
    psi_max: float
    ks_max: float
    min_labels: int
    window_rows: int  # newest labelled predictions of the version (HEARTML_MONITOR_WINDOW)

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            psi_max=settings.monitor_psi_max,
            ks_max=settings.monitor_ks_max,
            min_labels=settings.monitor_min_labels,
            window_rows=settings.monitor_window,
        )


@dataclass
class CheckResult:
    since: float  # POSIX seconds
    inputs: int  # stored predictions since then (every model version)
    drift: dict[str, FeatureDrift]
    performance: VersionPerformance | None  # the served version's, if it has predictions
    reasons: list[str] = field(default_factory=list)

    @property
    def alarm(self) -> bool:
        return bool(self.reasons)


def input_matrix(chunks: Iterable[Predictions], names: list[str]) -> np.ndarray:
    """The stored raw inputs as an [n, k] float matrix in `names` order (NaN: unknown)."""
    blocks = []
    for chunk in chunks:
        assert chunk.inputs is not None
        blocks.append(
            np.array(
                [
                    [np.nan if (v := row.get(n)) is None else v for n in names]
                    for row in chunk.inputs
                ],
                dtype=np.float64,
            ).reshape(len(chunk.inputs), len(names))
        )
    return np.concatenate(blocks) if blocks else np.empty((0, len(names)))


def drift_of(
    reference: ReferenceStatistics, rows: np.ndarray, names: list[str]
) -> dict[str, FeatureDrift]:
    return {
        name: feature_drift(reference.features[name], rows[:, index], reference.rows)
        for index, name in enumerate(names)
    }


def drift_reasons(drift: dict[str, FeatureDrift], limits: Limits) -> list[str]:
    reasons = []
    for name, figures in drift.items():
        over = []
        if figures.psi is not None and figures.psi > limits.psi_max:
            over.append(f"PSI {figures.psi:.3f} > {limits.psi_max:g}")
        ks = getattr(figures, "ks_statistic", None)
        if ks is not None and ks > limits.ks_max:
            over.append(f"KS {ks:.3f} > {limits.ks_max:g}")
        if over:
            reasons.append(f"drift: {name}: {', '.join(over)} ({figures.window_count:,} inputs)")
    return reasons


def performance_reason(
    version: VersionPerformance, reference_low: float | None, limits: Limits
) -> str | None:
    auc, labels = version.labelled.roc_auc, version.labelled.count
    if reference_low is None or auc is None or labels < limits.min_labels or auc >= reference_low:
        return None
    return (
        f"performance: {version.model_name} v{version.model_version}: live ROC-AUC {auc:.3f} < "
        f"{reference_low:.3f}, the lower end of its CV interval ({labels:,} outcomes, at least "
        f"{limits.min_labels} needed)"
    )


def check(
    engine: Engine,
    package: VerifiedPackage,
    since_s: float,
    limits: Limits,
    now: float | None = None,
) -> CheckResult:
    """Drift and performance of the store's predictions in the last `since_s` seconds against
    the served package."""
    now = time.time() if now is None else now
    since = now - since_s
    reference = package.reference
    names = list(reference.features)
    rows = input_matrix(iter_read(engine, Selection(since=utc(since)), with_inputs=True), names)
    drift = drift_of(reference, rows, names)
    model = package.model_config.model
    window = Window(max_rows=limits.window_rows, max_age_days=since_s / 86400.0)
    found = [
        v
        for v in live_performance(engine, window, model_version=model.version, now=now)
        if v.model_name == model.name
    ]
    version = found[0] if found else None
    result = CheckResult(since, len(rows), drift, version, drift_reasons(drift, limits))
    if version is not None:
        mean, low = cv_roc_auc_reference(package.model_config.metrics)
        version.reference_cv_roc_auc, version.reference_cv_roc_auc_low = mean, low
        reason = performance_reason(version, low, limits)
        if reason is not None:
            result.reasons.append(reason)
    return result
