"""`heartml package verify`: every checksum, then every format scored against the sklearn
pipeline on the package's reference rows. A pickle is loaded only after its sha256 matched."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from heartml.package.build import check_contract
from heartml.package.manifest import (
    JOBLIB_FILE,
    MLFLOW_DIR,
    ONNX_FILE,
    PARITY_FILE,
    SPEC_FILE,
    PackagingError,
    verify_checksums,
)
from heartml.parity import check, read_reference
from heartml.provenance import read_json
from heartml.spec import spec_from_text


@dataclass(frozen=True)
class Verification:
    directory: Path
    manifest: dict[str, Any]
    formats: dict[str, float]  # format -> max |Δp| against the joblib pipeline on every row
    rows: int


def verify_package(directory: Path) -> Verification:
    """Checksums; then, on the package's reference rows, the expectations recomputed from
    model.joblib (sklearn) and from mlflow_model/ (mlflow.pyfunc), and the ONNX graph and the
    recorded probabilities compared against both. Any disagreement is a ParityError. The
    pipeline must compute exactly the features of the dataset spec the package carries."""
    import joblib

    from heartml.onnx_runtime import OnnxModel

    manifest = verify_checksums(directory)
    for required in (SPEC_FILE, PARITY_FILE):
        if required not in manifest["files"]:
            raise PackagingError(
                f"{directory.name}: no {required} (built by an older heartml)",
                hint="rebuild it with `heartml package`",
            )
    spec = spec_from_text((directory / SPEC_FILE).read_text(encoding="utf-8"), SPEC_FILE)
    columns = spec.raw_names
    rows, recorded, tolerance = read_reference(read_json(directory / PARITY_FILE), columns)
    frame = pd.DataFrame(rows, columns=list(columns))
    reference_pipeline = joblib.load(directory / JOBLIB_FILE)  # sha256 verified just above
    check_contract(reference_pipeline, spec)
    from_joblib = reference_pipeline.predict_proba(frame)[:, 1]
    from heartml.tracking.model_format import pyfunc_probabilities

    try:
        from_pyfunc = np.asarray(pyfunc_probabilities(directory / MLFLOW_DIR, frame, columns))
    except Exception as exc:
        raise PackagingError(f"{MLFLOW_DIR}: does not load or score ({exc})") from exc
    try:
        onnx_model = OnnxModel.from_path(directory / ONNX_FILE)
    except Exception as exc:
        raise PackagingError(f"{ONNX_FILE}: does not load ({exc})") from exc

    def onnx_scores(matrix: np.ndarray) -> np.ndarray:
        try:
            return onnx_model.predict_proba(matrix)
        except Exception as exc:
            raise PackagingError(f"{ONNX_FILE}: does not score ({exc})") from exc

    def constant(values: np.ndarray) -> Any:
        return lambda _rows: values

    joblib_name, pyfunc_name = f"{JOBLIB_FILE} (sklearn)", f"{MLFLOW_DIR}/ (mlflow.pyfunc)"
    formats = {
        "recorded": check(
            f"{PARITY_FILE}", constant(recorded), rows, from_joblib, tolerance, joblib_name
        ),
        "mlflow_pyfunc": check(
            pyfunc_name, constant(from_pyfunc), rows, from_joblib, tolerance, joblib_name
        ),
        "onnx": check(ONNX_FILE, onnx_scores, rows, from_joblib, tolerance, joblib_name),
        "onnx_vs_pyfunc": check(ONNX_FILE, onnx_scores, rows, from_pyfunc, tolerance, pyfunc_name),
    }
    return Verification(directory, manifest, formats, len(rows))
