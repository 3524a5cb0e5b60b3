"""The prediction store as the service sees it: the writer, the live-performance window and
their /metrics families.

Live performance is computed off the event loop (a worker thread): every HEARTML_MONITOR_REFRESH_S
for the /metrics gauges (a scrape only reads the last result), and on each GET
/monitoring/performance. One window of 1000 labelled and 1000 unlabelled predictions costs
~0.3 s of CPU (bootstrap and CBPE draws included).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from heartml.monitoring.live import VersionPerformance, Window, live_performance

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from heartml.serving.loaded_model import LoadedModel
    from heartml.serving.service import Service
    from heartml.settings import Settings
    from heartml.store.writer import PredictionWriter

log = logging.getLogger("heartml.serving")

FEEDBACK_RESULTS = ("recorded", "overwritten", "unchanged")
# gauge name -> (help, the figure of a VersionPerformance)
VERSION_GAUGES: dict[str, tuple[str, Any]] = {
    "heartml_live_labels": ("Labelled predictions in the window", lambda v: v.labelled.count),
    "heartml_live_roc_auc": ("Realised ROC-AUC over the window", lambda v: v.labelled.roc_auc),
    "heartml_live_roc_auc_low": (
        "Realised ROC-AUC, 95% bootstrap interval lower end",
        lambda v: v.labelled.roc_auc_low,
    ),
    "heartml_live_roc_auc_high": (
        "Realised ROC-AUC, 95% bootstrap interval upper end",
        lambda v: v.labelled.roc_auc_high,
    ),
    "heartml_live_brier": ("Realised Brier score", lambda v: v.labelled.brier),
    "heartml_live_calibration_intercept": (
        "Calibration in the large (0 is ideal)",
        lambda v: v.labelled.calibration_intercept,
    ),
    "heartml_live_calibration_slope": (
        "Calibration slope (1 is ideal)",
        lambda v: v.labelled.calibration_slope,
    ),
    "heartml_live_precision": ("Precision at the threshold", lambda v: v.labelled.precision),
    "heartml_live_recall": ("Recall at the threshold", lambda v: v.labelled.recall),
    "heartml_estimated_rows": (
        "Predictions without an outcome in the window",
        lambda v: v.unlabelled.count,
    ),
    "heartml_estimated_roc_auc": (
        "CBPE-estimated ROC-AUC of the predictions without an outcome",
        lambda v: v.unlabelled.roc_auc,
    ),
    "heartml_estimated_roc_auc_low": (
        "CBPE-estimated ROC-AUC, 95% interval lower end",
        lambda v: v.unlabelled.roc_auc_low,
    ),
    "heartml_estimated_roc_auc_high": (
        "CBPE-estimated ROC-AUC, 95% interval upper end",
        lambda v: v.unlabelled.roc_auc_high,
    ),
    "heartml_estimated_accuracy": (
        "CBPE-estimated accuracy of the predictions without an outcome",
        lambda v: v.unlabelled.accuracy,
    ),
}


def reference_auc(model: LoadedModel | None) -> tuple[float | None, float | None]:
    """The package's CV ROC-AUC mean and interval lower end (model_config.yaml metrics)."""
    if model is None:
        return None, None
    cv = model.metrics.get("cv", {}) if isinstance(model.metrics, dict) else {}
    auc = cv.get("roc_auc", {}) if isinstance(cv, dict) else {}
    if not isinstance(auc, dict):
        return None, None
    mean, low = auc.get("mean"), auc.get("ci_low")
    return (
        float(mean) if isinstance(mean, int | float) else None,
        float(low) if isinstance(low, int | float) else None,
    )


class LiveMonitor:
    def __init__(self, settings: Settings, writer: PredictionWriter) -> None:
        self.writer = writer
        self.engine: Engine = writer.engine
        self.window = Window(settings.monitor_window, settings.monitor_window_days)
        self.min_labels = settings.monitor_min_labels
        self.latest: list[VersionPerformance] = []
        self.feedback = dict.fromkeys(FEEDBACK_RESULTS, 0)

    def compute(
        self,
        served: LoadedModel | None,
        model_version: str | None = None,
        site: str | None = None,
    ) -> list[VersionPerformance]:
        """Blocking (database and numpy): call it in a worker thread."""
        found = live_performance(self.engine, self.window, model_version=model_version, site=site)
        mean, low = reference_auc(served)
        for version in found:
            if served is not None and (version.model_name, version.model_version) == (
                served.name,
                served.version,
            ):
                version.reference_cv_roc_auc = mean
                version.reference_cv_roc_auc_low = low
        if model_version is None and site is None:
            self.latest = found
        return found

    async def run(self, interval_s: float, served: Any) -> None:
        """Recompute the gauges every `interval_s` (0: only when asked)."""
        if interval_s <= 0:
            return
        while True:
            await asyncio.sleep(interval_s)
            try:
                await asyncio.to_thread(self.compute, served())
            except Exception as exc:  # the store away: the gauges keep their last values
                log.warning(f"live performance not computed: {type(exc).__name__}: {exc}")


def _number(value: float | int | None) -> float:
    return math.nan if value is None else float(value)


class StoreCollector(Collector):
    """The store's and the live window's series, rendered from plain numbers at scrape time
    (nothing before the lifespan has started the store)."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def describe(self) -> list[Metric]:
        return []  # families with labels known only at scrape time

    def collect(self) -> Iterator[Metric]:
        monitor = self.service.live
        if monitor is None:
            return
        writer = monitor.writer
        yield CounterMetricFamily(
            "heartml_store_written_rows",
            "Predictions written to the prediction store",
            value=writer.written_rows,
        )
        dropped = CounterMetricFamily(
            "heartml_store_dropped_rows",
            "Predictions not recorded: queue_full (database away or slow), rejected (refused "
            "by the database), shutdown (still queued at stop)",
            labels=["reason"],
        )
        for reason, count in writer.dropped.items():
            dropped.add_metric([reason], count)
        yield dropped
        yield GaugeMetricFamily(
            "heartml_store_queue_rows",
            "Predictions waiting for the writer",
            value=writer.pending_rows,
        )
        yield GaugeMetricFamily(
            "heartml_store_up",
            "1 when the last write to the prediction store succeeded, 0 when it failed",
            value=math.nan if writer.healthy is None else float(writer.healthy),
        )
        feedback = CounterMetricFamily(
            "heartml_feedback_outcomes", "Outcomes received by POST /feedback", labels=["result"]
        )
        for result, count in monitor.feedback.items():
            feedback.add_metric([result], count)
        yield feedback
        yield GaugeMetricFamily(
            "heartml_live_min_labels",
            "Labelled predictions needed before the live-AUC alert may fire",
            value=monitor.min_labels,
        )
        labels = ["model_name", "model_version"]
        latest = monitor.latest
        for name, (help_text, figure) in VERSION_GAUGES.items():
            family = GaugeMetricFamily(name, help_text, labels=labels)
            for version in latest:
                family.add_metric(
                    [version.model_name, version.model_version], _number(figure(version))
                )
            yield family
        reference = GaugeMetricFamily(
            "heartml_model_cv_roc_auc_low",
            "The served package's CV ROC-AUC interval, lower end (model_config.yaml)",
            labels=labels,
        )
        served = self.service.store.current
        _, low = reference_auc(served)
        if served is not None and low is not None:
            reference.add_metric([served.name, served.version], low)
        yield reference
