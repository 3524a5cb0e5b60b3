"""A loaded model: a verified package's ONNX graph, its input contract and what the service
needs around it (threshold, reference statistics, the explanation baseline).

`load_package` reads a package with heartml.package.manifest.read_package (every checksum verified,
the files hashed again as they are read) and refuses one whose dataset spec is missing or
invalid, whose ONNX graph takes other columns than the spec declares, or whose reference
statistics lack a column: the spec is the model's input contract (heartml.serving.contract).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from heartml import parity
from heartml.errors import HeartmlError
from heartml.package.manifest import (
    MODEL_CONFIG,
    ONNX_FILE,
    REFERENCE_FILE,
    SPEC_FILE,
    PackagingError,
    read_package,
)
from heartml.serving.contract import Contract, build_contract
from heartml.spec import SpecError, spec_from_text


class ModelLoadError(HeartmlError):
    """A package could not be loaded; the message names the file and the reason."""


class Scorer(Protocol):
    """What the service needs from a model: raw [n, k] float64 rows in, P(class=1) out."""

    def predict_proba(self, data: Any) -> np.ndarray: ...


@dataclass(frozen=True)
class LoadedModel:
    name: str
    algorithm: str
    version: str
    run_id: str
    threshold: float
    metrics: dict[str, Any]
    raw_feature_names: list[str]
    engineered_feature_names: list[str]
    source: str
    directory: Path
    package_created_at: str | None
    fingerprint: str
    reference: dict[str, Any]
    scorer: Scorer  # OnnxModel; a stand-in in tests
    contract: Contract  # from the package's dataset spec: what a request must hold
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    baseline: np.ndarray = field(init=False)
    _run: Callable[[np.ndarray], np.ndarray] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "baseline", reference_baseline(self.reference, self.columns))
        object.__setattr__(self, "_run", _direct_onnx_run(self.scorer))

    @property
    def columns(self) -> tuple[str, ...]:
        """The raw input columns, in the model's order."""
        return self.contract.names

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        """P(class=1) for [n, k] float64 raw rows (NaN = missing), in model column order."""
        run = self._run
        if run is not None:
            return run(rows)
        return np.asarray(self.scorer.predict_proba(rows), dtype=np.float64)

    def info(self) -> dict[str, Any]:
        contract = self.contract
        return {
            "name": self.name,
            "algorithm": self.algorithm,
            "version": self.version,
            "run_id": self.run_id,
            "threshold": self.threshold,
            "metrics": self.metrics,
            "raw_feature_names": self.raw_feature_names,
            "engineered_feature_names": self.engineered_feature_names,
            "source": self.source,
            "package": str(self.directory),
            "package_created_at": self.package_created_at,
            "loaded_at": self.loaded_at,
            "risk_bands": contract.spec.risk_bands_text,
            "dataset": contract.dataset_info(),
            "fields": contract.fields_info(),
            "risk_levels": contract.risk_levels(),
            "spec_hash": contract.spec_hash,
        }


def _direct_onnx_run(scorer: Any) -> Callable[[np.ndarray], np.ndarray] | None:
    """For an OnnxModel with a float64 input: the session call alone, without predict_proba's
    input conversions (the service builds its float64 rows itself). None for anything else."""
    onnx_runtime = sys.modules.get("heartml.onnx_runtime")  # imported with the first model
    if onnx_runtime is None or not isinstance(scorer, onnx_runtime.OnnxModel):
        return None
    outputs_meta = {o.name: o.type for o in scorer.session.get_outputs()}
    if (
        scorer.dtype is not np.float64
        or outputs_meta.get(onnx_runtime.PROBABILITIES_OUTPUT) != "tensor(double)"
    ):
        return None
    run = scorer.session.run
    outputs = [onnx_runtime.PROBABILITIES_OUTPUT]
    input_name = onnx_runtime.INPUT_NAME

    def probabilities(rows: np.ndarray) -> np.ndarray:
        if not rows.flags.c_contiguous or rows.dtype != np.float64:
            rows = np.ascontiguousarray(rows, dtype=np.float64)
        (output,) = run(outputs, {input_name: rows})
        return output[:, 1]

    return probabilities


def reference_baseline(reference: dict[str, Any], columns: tuple[str, ...]) -> np.ndarray:
    """Per raw column, a typical training value: median (numeric) or most frequent code."""
    values = []
    for name in columns:
        entry = reference["features"].get(name)
        if entry is None:
            raise PackagingError(f"{REFERENCE_FILE}: no statistics for the input column {name!r}")
        if "codes" in entry:
            proportions = entry["proportions"]
            values.append(float(entry["codes"][proportions.index(max(proportions))]))
        else:
            values.append(float(entry["quantiles"][len(entry["quantiles"]) // 2]))
    return np.asarray(values, dtype=np.float64)


def load_package(directory: Path, source: str, fingerprint: str, onnx_threads: int) -> LoadedModel:
    """Verify every checksum, then load the spec, the ONNX graph, the config and the reference."""
    from heartml.onnx_runtime import OnnxModel  # onnxruntime: loaded once, on first use

    package = read_package(directory)
    manifest, config = package.manifest, package.model_config
    try:
        spec = spec_from_text(package.spec_text, SPEC_FILE)
    except SpecError as exc:
        raise PackagingError(str(exc)) from None
    except Exception as exc:  # not YAML at all
        raise PackagingError(f"{SPEC_FILE}: not a dataset spec ({type(exc).__name__})") from None
    try:
        scorer = OnnxModel.from_bytes(package.onnx, intra_op_num_threads=onnx_threads)
    except Exception as exc:
        raise ModelLoadError(f"{directory.name}: {type(exc).__name__}: {exc}") from exc
    if scorer.columns != spec.raw_names:
        raise PackagingError(
            f"{ONNX_FILE} takes the columns ({', '.join(scorer.columns)}) but {SPEC_FILE} "
            f"declares ({', '.join(spec.raw_names)})"
        )
    listed = config.get("raw_feature_names") if isinstance(config, dict) else None
    if listed is not None and tuple(listed) != spec.raw_names:
        raise PackagingError(f"{MODEL_CONFIG}: raw_feature_names differ from {SPEC_FILE}'s columns")
    try:
        model = config["model"]
        loaded = LoadedModel(
            name=str(model["name"]),
            algorithm=str(model["algorithm"]),
            version=str(model["version"]),
            run_id=str(model["run_id"]),
            threshold=float(config.get("threshold", manifest.get("threshold", 0.5))),
            metrics=config.get("metrics", {}),
            raw_feature_names=list(spec.raw_names),
            engineered_feature_names=list(
                config.get("engineered_feature_names") or spec.all_features
            ),
            source=source,
            directory=directory,
            package_created_at=manifest.get("created_at"),
            fingerprint=fingerprint,
            reference=package.reference,
            scorer=scorer,
            contract=build_contract(spec),
        )
        # One row through the graph now, so a broken model fails here and not on a request.
        check = loaded.probabilities(loaded.baseline[None, :])
        # A valid graph of another model, however well checksummed, is refused on parity.
        rows, expected, tolerance = parity.read_reference(package.parity, spec.raw_names)
        parity.check(
            ONNX_FILE,
            loaded.probabilities,
            rows,
            expected,
            tolerance,
            "the sklearn pipeline's probabilities recorded at packaging",
        )
    except PackagingError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"{directory.name}: {type(exc).__name__}: {exc}") from exc
    if check.shape != (1,) or not 0.0 <= float(check[0]) <= 1.0:
        raise ModelLoadError(f"{directory.name}: the model returns {check!r} for a typical row")
    if (manifest.get("model_name"), str(manifest.get("version"))) != (loaded.name, loaded.version):
        raise ModelLoadError(f"{directory.name}: MANIFEST and {MODEL_CONFIG} name other models")
    return loaded
