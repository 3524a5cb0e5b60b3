"""Input drift: the package's training reference statistics vs a rolling window of recent inputs.

- PSI per feature, sum((a - e) * ln(a / e)): numeric features on the reference's decile bins
  (interior edges, open ends, the same `searchsorted(side="right")` as
  heartml.package.contents.reference_statistics), coded features on their codes; proportions are floored
  at EPSILON so that an empty bin costs a large but finite amount. Read as < 0.1 stable,
  0.1-0.25 moderate, > 0.25 significant (the usual credit-scoring convention).
- KS for numeric features: the two-sample statistic D between the window and the reference, whose
  distribution is represented by the 101 stored quantiles (an ECDF at 1% resolution); the p-value
  is the asymptotic Kolmogorov distribution at the effective size n*m/(n+m), m = reference rows,
  with Stephens' small-sample correction. A few lines of numpy instead of scipy.stats, whose
  import alone would cost the service about a second of cold start. Ties (integer ages, coded
  clinical values) make the p-value conservative.

The features are the served model's raw input columns (its dataset spec), each against the
package's reference statistics for that column. Missing values (null inputs) are left out of
both statistics and reported as a fraction.
Nothing is computed per request: a request appends its rows to a deque; the statistics are
computed when /metrics or /monitoring/drift asks, and cached until new inputs arrive.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

EPSILON = 1e-4
PSI_MODERATE = 0.1
PSI_SIGNIFICANT = 0.25
MIN_SAMPLES = 30  # fewer values than this in the window: no statistics, only noise


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of `actual` proportions against `expected` ones."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), EPSILON)
    a = np.maximum(np.asarray(actual, dtype=np.float64), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_status(value: float | None) -> str:
    if value is None:
        return "insufficient_data"
    if value < PSI_MODERATE:
        return "stable"
    return "moderate" if value < PSI_SIGNIFICANT else "significant"


def ks_statistic(sample: np.ndarray, reference: np.ndarray) -> float:
    """sup |F_sample - F_reference| over both ECDFs (attained at one of their jump points)."""
    sample = np.sort(sample)
    reference = np.sort(reference)
    points = np.concatenate([sample, reference])
    f_sample = np.searchsorted(sample, points, side="right") / len(sample)
    f_reference = np.searchsorted(reference, points, side="right") / len(reference)
    return float(np.max(np.abs(f_sample - f_reference)))


def kolmogorov_sf(lam: float) -> float:
    """P(K > lam) for the Kolmogorov distribution: 2 * sum (-1)^(k-1) exp(-2 k^2 lam^2)."""
    if lam < 0.27:  # the series converges slowly here, and the value is 1 to 6 decimals
        return 1.0
    total = 0.0
    for k in range(1, 101):
        term = (-1) ** (k - 1) * math.exp(-2.0 * k * k * lam * lam)
        total += term
        if abs(term) < 1e-12:
            break
    return min(1.0, max(0.0, 2.0 * total))


def ks_p_value(statistic: float, n: int, m: int) -> float:
    effective = n * m / (n + m)
    root = math.sqrt(effective)
    return kolmogorov_sf((root + 0.12 + 0.11 / root) * statistic)


def feature_drift(entry: dict[str, Any], values: np.ndarray, reference_rows: int) -> dict[str, Any]:
    """PSI (and KS for numeric features) of one feature's window values against its reference."""
    present = values[~np.isnan(values)]
    result: dict[str, Any] = {
        "kind": entry["kind"],
        "window_count": len(present),
        "missing_fraction": float(1 - len(present) / len(values)) if len(values) else None,
        "reference_missing_fraction": float(entry.get("missing_fraction", 0.0)),
        "psi": None,
        "psi_status": "insufficient_data",
    }
    if "codes" not in entry:
        result.update(ks_statistic=None, ks_p_value=None)
    if len(present) < MIN_SAMPLES:
        return result
    if "codes" in entry:
        actual = np.array([np.mean(present == code) for code in entry["codes"]])
    else:
        edges = np.asarray(entry["bin_edges"], dtype=np.float64)
        bins = np.searchsorted(edges, present, side="right")
        actual = np.bincount(bins, minlength=len(edges) + 1) / len(present)
        statistic = ks_statistic(present, np.asarray(entry["quantiles"], dtype=np.float64))
        reference_count = max(1, round(reference_rows * (1 - result["reference_missing_fraction"])))
        result["ks_statistic"] = statistic
        result["ks_p_value"] = ks_p_value(statistic, len(present), reference_count)
    value = psi(np.asarray(entry["proportions"]), actual)
    result["psi"] = value
    result["psi_status"] = psi_status(value)
    return result


class DriftMonitor:
    """The rolling window of recent raw inputs and the drift of each feature against a reference."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._window: deque[np.ndarray | list[float]] = deque(maxlen=capacity)
        self._reference: dict[str, Any] | None = None
        self._columns: tuple[str, ...] = ()
        self._model_version: str | None = None
        self._observed = 0
        self._cache: tuple[int, dict[str, Any]] | None = None

    def set_reference(
        self, reference: dict[str, Any], model_version: str, columns: tuple[str, ...]
    ) -> None:
        """A new model brings its own training reference; the window of inputs stays, unless
        the new model takes other columns (rows of another contract cannot be compared)."""
        if columns != self._columns:
            self._window.clear()
        self._reference = reference
        self._columns = columns
        self._model_version = model_version
        self._cache = None

    def observe(self, rows: np.ndarray | list[list[float]]) -> None:
        """Append [n, k] raw rows (NaN = missing), an array or lists of k floats. Cheap: the
        request path calls it; the statistics are computed when asked."""
        self._window.extend(rows)
        self._observed += len(rows)

    def __len__(self) -> int:
        return len(self._window)

    def report(self) -> dict[str, Any]:
        """Every feature's drift (the DriftReport shape), recomputed only after new inputs."""
        if self._cache is not None and self._cache[0] == self._observed:
            return self._cache[1]
        reference = self._reference
        width = len(self._columns)
        # A request that started before a swap to another contract may still add an old row.
        window = [row for row in self._window if len(row) == width]
        rows = np.array(window, dtype=np.float64).reshape(len(window), width)
        reference_rows = int(reference["rows"]) if reference else 0
        features = {}
        if reference is not None:
            for index, name in enumerate(self._columns):
                features[name] = feature_drift(
                    reference["features"][name], rows[:, index], reference_rows
                )
        report = {
            "model_version": self._model_version,
            "window_size": len(rows),
            "window_capacity": self.capacity,
            "reference_rows": reference_rows,
            "min_samples": MIN_SAMPLES,
            "thresholds": {"psi_moderate": PSI_MODERATE, "psi_significant": PSI_SIGNIFICANT},
            "features": features,
        }
        self._cache = (self._observed, report)
        return report
