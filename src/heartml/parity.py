"""The parity reference of a package: rows, and the probabilities the sklearn pipeline gave them.

`heartml package` records every dataset row with the fitted Pipeline's P(class=1) in
PARITY_FILE (checksummed like every other file). Whoever holds the package can then check that
its ONNX graph scores like the pipeline it claims to be, without unpickling anything: the
server does it at every load, `heartml package verify` additionally recomputes the expectations
from model.joblib and mlflow_model/. A checksum only proves the files were not changed after
packaging; this proves the graph is the right one.

numpy only (the prediction service imports it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from heartml.errors import PackagingError
from heartml.package.manifest import PARITY_FILE

# Largest |Δp| allowed between two formats of one model on any reference row. The graph is
# float64 end to end, so honest exports agree to ~1e-12; a wrong graph differs by ~1e-2 or more.
PARITY_TOLERANCE = 1e-5


class ParityError(PackagingError):
    """A format of the package does not score like the pipeline it was exported from."""


def reference_document(
    columns: Sequence[str], rows: np.ndarray, expected: np.ndarray, source: str
) -> dict[str, Any]:
    """The JSON body of PARITY_FILE; a missing value (NaN) is written as null."""
    if rows.ndim != 2 or rows.shape != (len(expected), len(columns)):
        raise ValueError(f"rows {rows.shape} do not match {len(expected)} x {len(columns)}")
    return {
        "columns": list(columns),
        "rows": [[None if np.isnan(v) else float(v) for v in row] for row in rows],
        "expected_probability": [float(p) for p in expected],
        "expected_from": source,
        "tolerance": PARITY_TOLERANCE,
    }


def read_reference(document: Any, columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray, float]:
    """(rows [n, len(columns)] float64 with NaN, expected [n], tolerance) of a PARITY_FILE body."""
    try:
        if list(document["columns"]) != list(columns):
            raise PackagingError(
                f"{PARITY_FILE}: columns {document['columns']} are not the model's {list(columns)}"
            )
        rows = np.array(
            [[np.nan if v is None else v for v in row] for row in document["rows"]],
            dtype=np.float64,
        )
        expected = np.asarray(document["expected_probability"], dtype=np.float64)
        tolerance = float(document["tolerance"])
    except PackagingError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise PackagingError(f"{PARITY_FILE}: not a parity reference ({exc!r})") from exc
    if len(rows) == 0 or rows.shape != (len(expected), len(columns)):
        raise PackagingError(
            f"{PARITY_FILE}: {rows.shape} rows for {len(expected)} probabilities and "
            f"{len(columns)} columns"
        )
    # Never looser than this code's own rule, whatever the file says.
    return rows, expected, min(tolerance, PARITY_TOLERANCE)


def max_difference(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |Δp|; infinite when a probability is not finite (a broken graph is not 'close')."""
    actual = np.asarray(actual, dtype=np.float64).reshape(-1)
    if actual.shape != expected.shape or not np.isfinite(actual).all():
        return float("inf")
    return float(np.max(np.abs(actual - expected)))


def check(
    what: str,
    score: Callable[[np.ndarray], np.ndarray],
    rows: np.ndarray,
    expected: np.ndarray,
    tolerance: float,
    against: str,
) -> float:
    """Score the reference rows with `score`; ParityError when any row is off by > tolerance."""
    delta = max_difference(score(rows), expected)
    if not delta <= tolerance:
        raise ParityError(
            f"parity: {what} disagrees with {against}: max |Δp| {delta:.2e} > {tolerance:.0e} "
            f"over {len(rows)} reference rows"
        )
    return delta
