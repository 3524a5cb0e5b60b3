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

import numpy as np

from heartml.documents.package import CodedReference, NumericReference, ReferenceStatistics
from heartml.monitoring.thresholds import PSI_MODERATE, PSI_SIGNIFICANT
from heartml.serving.schemas import DriftReport, FeatureDrift

EPSILON = 1e-4
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


def window_proportions(entry: CodedReference | NumericReference, present: np.ndarray) -> np.ndarray:
    """The share of `present` (non-missing) values in each of the reference's bins, in the order
    of entry.proportions: numeric, the interior edges with open ends (len(bin_edges) + 1 bins);
    coded, one share per reference code (values outside the codes count in none)."""
    if isinstance(entry, NumericReference):
        edges = np.asarray(entry.bin_edges, dtype=np.float64)
        bins = np.searchsorted(edges, present, side="right")
        return np.bincount(bins, minlength=len(edges) + 1) / len(present)
    return np.array([np.mean(present == code) for code in entry.codes])


def feature_drift(
    entry: CodedReference | NumericReference, values: np.ndarray, reference_rows: int
) -> FeatureDrift:
    """PSI (and KS for numeric features) of one feature's window values against its reference.
    A coded feature's result has no KS fields set (it has no KS series in /metrics)."""
    present = values[~np.isnan(values)]
    base = {
        "kind": entry.kind,
        "window_count": len(present),
        "missing_fraction": float(1 - len(present) / len(values)) if len(values) else None,
        "reference_missing_fraction": entry.missing_fraction,
        "psi": None,
        "psi_status": "insufficient_data",
    }
    numeric = isinstance(entry, NumericReference)
    if numeric:
        base.update(ks_statistic=None, ks_p_value=None)
    if len(present) < MIN_SAMPLES:
        return FeatureDrift.model_validate(base)
    actual = window_proportions(entry, present)
    if isinstance(entry, NumericReference):
        statistic = ks_statistic(present, np.asarray(entry.quantiles, dtype=np.float64))
        reference_count = max(1, round(reference_rows * (1 - entry.missing_fraction)))
        base["ks_statistic"] = statistic
        base["ks_p_value"] = ks_p_value(statistic, len(present), reference_count)
    value = psi(np.asarray(entry.proportions), actual)
    base["psi"] = value
    base["psi_status"] = psi_status(value)
    return FeatureDrift.model_validate(base)


class DriftMonitor:
    """The rolling window of recent raw inputs and the drift of each feature against a reference."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._window: deque[np.ndarray | list[float]] = deque(maxlen=capacity)
        self._reference: ReferenceStatistics | None = None
        self._columns: tuple[str, ...] = ()
        self._model_version: str | None = None
        self._observed = 0
        self._cache: tuple[int, DriftReport] | None = None

    def set_reference(
        self, reference: ReferenceStatistics, model_version: str, columns: tuple[str, ...]
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

    def report(self) -> DriftReport:
        """Every feature's drift, recomputed only after new inputs."""
        if self._cache is not None and self._cache[0] == self._observed:
            return self._cache[1]
        reference = self._reference
        width = len(self._columns)
        # A request that started before a swap to another contract may still add an old row.
        window = [row for row in self._window if len(row) == width]
        rows = np.array(window, dtype=np.float64).reshape(len(window), width)
        reference_rows = reference.rows if reference else 0
        features = {}
        if reference is not None:
            for index, name in enumerate(self._columns):
                features[name] = feature_drift(
                    reference.features[name], rows[:, index], reference_rows
                )
        report = DriftReport(
            model_version=self._model_version,
            window_size=len(rows),
            window_capacity=self.capacity,
            reference_rows=reference_rows,
            min_samples=MIN_SAMPLES,
            thresholds={"psi_moderate": PSI_MODERATE, "psi_significant": PSI_SIGNIFICANT},
            features=features,
        )
        self._cache = (self._observed, report)
        return report
