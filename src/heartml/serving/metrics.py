"""Prometheus metrics of one app instance, in its own CollectorRegistry.

An own registry (not prometheus_client's global one) so that several apps in one process (tests)
never share or collide on series.

The series every request touches (request count and latency, predictions by class, the
probability histogram) are plain numbers in `LoopHistogram`s, turned into Prometheus families
only when /metrics is scraped: prometheus_client's Counter.inc and Histogram.observe take a lock
and check their state on every call, about 1 µs each, several times per request. The event loop
is the only writer of these numbers (requests, the micro-batch, the scrape), so they need no lock.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE_LATEST
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

if TYPE_CHECKING:
    from heartml.serving.schemas import DriftReport
    from heartml.serving.sources import SourceStatusBody

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
PROBABILITY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


class LoopHistogram:
    """Counts per bucket (`value <= bound`, the last bucket +Inf) and a sum: one bisect and two
    additions per observation. Not thread-safe by design: one writer, the event loop."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = (*bounds, math.inf)
        self.counts = [0] * len(self.bounds)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, float]]:
        total = 0
        buckets = []
        for bound, count in zip(self.bounds, self.counts, strict=True):
            total += count
            buckets.append((floatToGoString(bound), float(total)))
        return buckets


class _HotSeries(Collector):
    """The per-request series, rendered from the plain numbers on each scrape."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Metric]:
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        return self._families()

    def _families(self) -> Iterator[Metric]:
        m = self.metrics
        labels = ["endpoint", "method", "status"]
        requests = CounterMetricFamily(
            "heartml_http_requests",
            "HTTP requests by endpoint (route template), method and status",
            labels=labels,
        )
        latency = HistogramMetricFamily(
            "heartml_http_request_duration_seconds",
            "HTTP request latency inside the app, by endpoint, method and status",
            labels=labels,
        )
        for (endpoint, method, status), histogram in list(m.request_latency.items()):
            values = [endpoint, method, str(status)]
            requests.add_metric(values, float(histogram.count))
            latency.add_metric(values, histogram.cumulative(), histogram.sum)
        yield requests
        yield latency
        predictions = CounterMetricFamily(
            "heartml_predictions", "Predictions by predicted class", labels=["prediction"]
        )
        for label, count in enumerate(m.predictions_by_class):
            predictions.add_metric([str(label)], float(count))
        yield predictions
        probability = HistogramMetricFamily(
            "heartml_prediction_probability", "Predicted P(heart disease)"
        )
        probability.add_metric([], m.probability.cumulative(), m.probability.sum)
        yield probability


class _ShadowSeries(Collector):
    """The shadow comparison (heartml.serving.shadow), read when /metrics is scraped; no series
    while no challenger is set. The counters start again when either model changes."""

    def __init__(self, shadow: Any) -> None:
        self.shadow = shadow

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        challenger = self.shadow.challenger
        if challenger is None:
            return
        stats = self.shadow.snapshot()
        info = GaugeMetricFamily(
            "heartml_shadow_info",
            "The challenger scored in shadow and the champion it is compared with (value 1)",
            labels=["challenger_name", "challenger_version", "champion_name", "champion_version"],
        )
        champion = stats.champion
        info.add_metric(
            [
                challenger.name,
                challenger.version,
                champion.name if champion else "",
                champion.version if champion else "",
            ],
            1.0,
        )
        yield info
        predictions = CounterMetricFamily(
            "heartml_shadow_predictions",
            "Rows scored by each model since the pair started (champion: answered while a "
            "challenger was set; challenger: scored in shadow)",
            labels=["model"],
        )
        predictions.add_metric(["champion"], float(stats.champion_rows))
        predictions.add_metric(["challenger"], float(stats.challenger_rows))
        yield predictions
        for name, help_text, value in (
            ("compared", "Rows scored by both models", stats.compared),
            ("agreements", "Rows with the same 0/1 decision from both models", stats.agreements),
            ("abs_difference", "Sum of |P(champion) - P(challenger)| over the compared rows",
             stats.abs_difference_sum),
            ("dropped", "Rows not scored in shadow: the challenger was too far behind",
             stats.dropped),
            ("errors", "Rows the challenger failed to score", stats.errors),
        ):  # fmt: skip
            family = CounterMetricFamily(f"heartml_shadow_{name}", help_text)
            family.add_metric([], float(value))
            yield family
        for name, help_text, ratio in (
            ("agreement_ratio", "Share of compared rows with the same 0/1 decision",
             stats.agreement_rate),
            ("abs_difference_mean", "Mean |P(champion) - P(challenger)| over the compared rows",
             stats.mean_abs_difference),
        ):  # fmt: skip
            gauge = GaugeMetricFamily(f"heartml_shadow_{name}", help_text)
            gauge.add_metric([], math.nan if ratio is None else ratio)
            yield gauge


class _RegistrySeries(Collector):
    """Registry mode: whether the registry answered at the last look-up (no series otherwise)."""

    def __init__(self, status: Callable[[], SourceStatusBody | None]) -> None:
        self.status = status

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        status = self.status()
        if status is None:
            return
        up = GaugeMetricFamily(
            "heartml_registry_up",
            "1 when the model registry answered the last look-up; 0 while it is unreachable or "
            "answers with errors (the last good model keeps serving)",
        )
        up.add_metric([], 1.0 if status["state"] == "ok" else 0.0)
        yield up


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        # (endpoint, method, status) -> latency histogram; its count is the request counter.
        self.request_latency: dict[tuple[str, str, int], LoopHistogram] = {}
        self.predictions_by_class = [0, 0]
        self.probability = LoopHistogram(PROBABILITY_BUCKETS)
        r.register(_HotSeries(self))
        self.batch_size = Histogram(
            "heartml_batch_records",
            "Records per /predict/batch request",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 5000),
            registry=r,
        )
        self.model_info = Gauge(
            "heartml_model_info",
            "The model being served (value 1)",
            ["name", "algorithm", "version", "run_id"],
            registry=r,
        )
        self.model_ready = Gauge("heartml_model_ready", "1 when a model is loaded", registry=r)
        self.reloads = Counter(
            "heartml_model_reloads", "Model loads by result", ["result"], registry=r
        )
        self.drift_psi = Gauge(
            "heartml_drift_psi",
            "Population stability index per raw feature",
            ["feature"],
            registry=r,
        )
        self.drift_ks = Gauge(
            "heartml_drift_ks_statistic",
            "Two-sample KS statistic per numeric feature",
            ["feature"],
            registry=r,
        )
        self.drift_ks_p = Gauge(
            "heartml_drift_ks_p_value", "KS p-value per numeric feature", ["feature"], registry=r
        )
        self.drift_window = Gauge(
            "heartml_drift_window_size", "Recent inputs in the drift window", registry=r
        )

    def attach_source(self, status: Callable[[], SourceStatusBody | None]) -> None:
        """Export the model source's state (heartml_registry_up in registry mode)."""
        self.registry.register(_RegistrySeries(status))

    def attach_shadow(self, shadow: Any) -> None:
        """Export the shadow comparison of this app (heartml.serving.shadow.Shadow)."""
        self.registry.register(_ShadowSeries(shadow))

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        key = (endpoint, method, status)
        histogram = self.request_latency.get(key)
        if histogram is None:  # label values are bounded: route templates, methods, statuses
            histogram = self.request_latency[key] = LoopHistogram(LATENCY_BUCKETS)
        histogram.observe(seconds)

    def observe_predictions(self, predictions: list[int], probabilities: list[float]) -> None:
        by_class = self.predictions_by_class
        observe = self.probability.observe
        for label, probability in zip(predictions, probabilities, strict=True):
            by_class[label] += 1
            observe(probability)

    def set_model(self, name: str, algorithm: str, version: str, run_id: str) -> None:
        self.model_info.clear()  # exactly one series: the model serving now
        self.model_info.labels(name, algorithm, version, run_id).set(1)
        self.model_ready.set(1)
        self.reloads.labels("success").inc()

    def load_failed(self) -> None:
        self.reloads.labels("failure").inc()

    def set_drift(self, report: DriftReport) -> None:
        self.drift_window.set(report.window_size)
        # Only the served model's columns: a column the previous model had is no series now.
        for gauge in (self.drift_psi, self.drift_ks, self.drift_ks_p):
            gauge.clear()
        for name, feature in report.features.items():
            self.drift_psi.labels(name).set(_gauge_value(feature.psi))
            if "ks_statistic" in feature.model_fields_set:  # numeric features only
                self.drift_ks.labels(name).set(_gauge_value(feature.ks_statistic))
                self.drift_ks_p.labels(name).set(_gauge_value(feature.ks_p_value))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _gauge_value(value: float | None) -> float:
    # Too few inputs yet: NaN, which Prometheus stores as "no number", not as zero drift.
    return math.nan if value is None else value
