"""Prometheus metrics of one app instance, in its own CollectorRegistry.

An own registry (not prometheus_client's global one) so that several apps in one process (tests)
never share or collide on series. Label children are cached: `.labels()` takes a lock and a dict
look-up per call, and the request path should not pay that twice per request.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE_LATEST
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from heartml.coding import RAW_FEATURES

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
PROBABILITY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "heartml_http_requests",
            "HTTP requests by endpoint (route template), method and status",
            ["endpoint", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "heartml_http_request_duration_seconds",
            "HTTP request latency inside the app, by endpoint, method and status",
            ["endpoint", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "heartml_predictions", "Predictions by predicted class", ["prediction"], registry=r
        )
        self.probability = Histogram(
            "heartml_prediction_probability",
            "Predicted P(heart disease)",
            buckets=PROBABILITY_BUCKETS,
            registry=r,
        )
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
        self._by_class = (self.predictions.labels("0"), self.predictions.labels("1"))
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        key = (endpoint, method, status)
        children = self._request_children.get(key)
        if children is None:
            labels = (endpoint, method, str(status))
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_predictions(self, predictions: np.ndarray, probabilities: np.ndarray) -> None:
        for label, probability in zip(predictions.tolist(), probabilities.tolist(), strict=True):
            self._by_class[label].inc()
            self.probability.observe(probability)

    def set_model(self, name: str, algorithm: str, version: str, run_id: str) -> None:
        self.model_info.clear()  # exactly one series: the model serving now
        self.model_info.labels(name, algorithm, version, run_id).set(1)
        self.model_ready.set(1)
        self.reloads.labels("success").inc()

    def load_failed(self) -> None:
        self.reloads.labels("failure").inc()

    def set_drift(self, report: dict[str, Any]) -> None:
        self.drift_window.set(report["window_size"])
        for name in RAW_FEATURES:
            feature = report["features"].get(name)
            if feature is None:
                continue
            self.drift_psi.labels(name).set(_gauge_value(feature["psi"]))
            if "ks_statistic" in feature:
                self.drift_ks.labels(name).set(_gauge_value(feature["ks_statistic"]))
                self.drift_ks_p.labels(name).set(_gauge_value(feature["ks_p_value"]))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _gauge_value(value: float | None) -> float:
    # Too few inputs yet: NaN, which Prometheus stores as "no number", not as zero drift.
    return math.nan if value is None else value
