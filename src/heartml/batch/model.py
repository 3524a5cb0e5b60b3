"""The model a scoring worker needs: small and picklable, loaded once per process.

It is made from a package read by heartml.package.manifest.read_package (every checksum verified, and the
files hashed again as they were read), and carries the package's dataset spec as text, so that a
Dask worker validates with the same contract as the client.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

import numpy as np

from heartml import parity
from heartml.batch.contract import Contract, contract_from_text
from heartml.calibration.document import SiteCalibration
from heartml.errors import PackagingError
from heartml.onnx_runtime import OnnxModel
from heartml.package.manifest import ONNX_FILE, VerifiedPackage


@dataclass(frozen=True)
class ScoringModel:
    onnx: bytes = field(repr=False)
    sha256: str
    threshold: float
    version: str  # written into every output row, e.g. heart_disease_logistic_regression/3
    spec_text: str = field(repr=False)  # the package's dataset_spec.yaml
    # `heartml score --site`: the site's active calibration, applied after the graph (the
    # output's probability, decision and risk level are the calibrated ones)
    calibration: SiteCalibration | None = None

    def load(self) -> OnnxModel:
        return _loaded(self)[0]

    def contract(self) -> Contract:
        return contract_from_text(self.spec_text)

    def column_order(self) -> np.ndarray:
        """For each column the graph takes, its position in the spec's column order."""
        return _loaded(self)[1]


_MODELS: dict[tuple[str, str], tuple[OnnxModel, np.ndarray]] = {}
_MODELS_LOCK = threading.Lock()


def _loaded(model: ScoringModel) -> tuple[OnnxModel, np.ndarray]:
    key = (model.sha256, model.spec_text)
    with _MODELS_LOCK:
        found = _MODELS.get(key)
        if found is None:
            onnx = OnnxModel.from_bytes(model.onnx)
            found = _MODELS[key] = (onnx, model.contract().model_order(onnx.columns))
        return found


def scoring_model(package: VerifiedPackage) -> ScoringModel:
    """The scoring model of a verified package; refused here, not on the first chunk, when
    onnxruntime cannot load it or its columns are not the spec's."""
    manifest = package.manifest
    model = ScoringModel(
        onnx=package.onnx,
        sha256=hashlib.sha256(package.onnx).hexdigest(),
        threshold=package.threshold,
        version=f"{manifest.model_name or package.directory.name}/{manifest.version or '?'}",
        spec_text=package.spec_text,
    )
    try:
        onnx_model = model.load()
    except ValueError as exc:  # onnxruntime's own errors, and a graph that is not heartml's
        raise PackagingError(f"{package.directory.name}: {exc}") from None
    # As the server does: the graph must score the recorded rows as the sklearn pipeline did.
    rows, expected, tolerance = parity.read_reference(package.parity, onnx_model.columns)
    parity.check(
        ONNX_FILE,
        onnx_model.predict_proba,
        rows,
        expected,
        tolerance,
        "the sklearn pipeline's probabilities recorded at packaging",
    )
    return model
