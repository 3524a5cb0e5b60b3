"""Which model the service scores with: resolve the source, verify, load, swap, watch.

Sources (settings.model_source):
- ``package`` (default): the folder in HEARTML_MODEL_PACKAGE, else the newest package under
  packages/ (by MANIFEST time, as `heartml package verify` chooses).
- ``registry``: the registry's champion (heartml.tracking.registry, imported lazily in a
  worker thread), served from the newest package under packages/ whose MANIFEST names the same
  model and version. The registry holds the sklearn model, not the ONNX graph, so a champion
  without a package is reported (log line, /ready 503 if nothing is loaded yet) until `heartml
  package` builds it; the watcher then picks it up.

A package is loaded only after every checksum in its MANIFEST matches, and the files the server
reads are hashed again as they are read, so what is scored is exactly what was verified.
Loading runs in a worker thread; the swap is one reference assignment, so a request keeps the
model object it started with. A failed load keeps the last good model.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import orjson
import yaml

from heartml.coding import RAW_COLUMNS, RAW_FEATURES
from heartml.errors import HeartmlError
from heartml.manifest import (
    MODEL_CONFIG,
    ONNX_FILE,
    REFERENCE_FILE,
    PackagingError,
    package_dirs,
    read_manifest,
    verify_checksums,
)
from heartml.settings import Settings

if TYPE_CHECKING:  # mlflow's side is imported lazily, in registry mode only
    from heartml.tracking.registry import Registry

log = logging.getLogger(__name__)


class ModelNotReady(HeartmlError):
    """No model is loaded; the message says why (for /ready and a 503)."""


class ModelLoadError(HeartmlError):
    """A package could not be loaded; the message names the file and the reason."""


class Scorer(Protocol):
    """What the service needs from a model: raw [n, 13] float64 rows in, P(class=1) out."""

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
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    baseline: np.ndarray = field(init=False)
    _run: Callable[[np.ndarray], np.ndarray] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "baseline", reference_baseline(self.reference))
        object.__setattr__(self, "_run", _direct_onnx_run(self.scorer))

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        """P(class=1) for [n, 13] float64 raw rows (NaN = missing), in model column order."""
        run = self._run
        if run is not None:
            return run(rows)
        return np.asarray(self.scorer.predict_proba(rows), dtype=np.float64)

    def info(self) -> dict[str, Any]:
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


def reference_baseline(reference: dict[str, Any]) -> np.ndarray:
    """Per raw feature, a typical training value: median (numeric) or most frequent code."""
    values = []
    for column in RAW_COLUMNS:
        entry = reference["features"][column.name]
        if "codes" in entry:
            proportions = entry["proportions"]
            values.append(float(entry["codes"][proportions.index(max(proportions))]))
        else:
            values.append(float(entry["quantiles"][len(entry["quantiles"]) // 2]))
    return np.asarray(values, dtype=np.float64)


def _verified_bytes(directory: Path, manifest: dict[str, Any], name: str) -> bytes:
    entry = manifest["files"].get(name)
    if entry is None:
        raise PackagingError(f"{name}: not in the package")
    content = (directory / name).read_bytes()
    if hashlib.sha256(content).hexdigest() != entry["sha256"]:
        raise PackagingError(f"{name}: changed after verification")
    return content


def load_package(directory: Path, source: str, fingerprint: str, onnx_threads: int) -> LoadedModel:
    """Verify every checksum, then load the ONNX graph, the model config and the reference."""
    from heartml.onnx_runtime import OnnxModel  # onnxruntime: loaded once, on first use

    manifest = verify_checksums(directory)
    try:
        config = yaml.load(
            _verified_bytes(directory, manifest, MODEL_CONFIG),
            Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader),
        )
        reference = orjson.loads(_verified_bytes(directory, manifest, REFERENCE_FILE))
        onnx_file = str(manifest.get("serving_file", ONNX_FILE))
        scorer = OnnxModel.from_bytes(
            _verified_bytes(directory, manifest, onnx_file), intra_op_num_threads=onnx_threads
        )
        model = config["model"]
        loaded = LoadedModel(
            name=str(model["name"]),
            algorithm=str(model["algorithm"]),
            version=str(model["version"]),
            run_id=str(model["run_id"]),
            threshold=float(config.get("threshold", manifest.get("threshold", 0.5))),
            metrics=config.get("metrics", {}),
            raw_feature_names=list(config.get("raw_feature_names", RAW_FEATURES)),
            engineered_feature_names=list(config.get("engineered_feature_names", [])),
            source=source,
            directory=directory,
            package_created_at=manifest.get("created_at"),
            fingerprint=fingerprint,
            reference=reference,
            scorer=scorer,
        )
        # One row through the graph now, so a broken model fails here and not on a request.
        check = loaded.probabilities(loaded.baseline[None, :])
    except PackagingError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"{directory.name}: {type(exc).__name__}: {exc}") from exc
    if check.shape != (1,) or not 0.0 <= float(check[0]) <= 1.0:
        raise ModelLoadError(f"{directory.name}: the model returns {check!r} for a typical row")
    if (manifest.get("model_name"), str(manifest.get("version"))) != (loaded.name, loaded.version):
        raise ModelLoadError(f"{directory.name}: MANIFEST and {MODEL_CONFIG} name other models")
    return loaded


def package_fingerprint(directory: Path) -> str:
    """Changes whenever a file of the package is added, removed, rewritten or touched."""
    digest = hashlib.sha256(str(directory.resolve()).encode())
    for path in sorted(directory.rglob("*")):
        try:
            stat = path.stat()
        except OSError:  # removed while we looked: the next poll sees the new state
            continue
        digest.update(f"{path.relative_to(directory)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Candidate:
    """What the source points at now: a package folder, or why there is none."""

    directory: Path | None
    source: str
    problem: str | None = None  # for the log: may name paths and the server
    fingerprint: str = ""
    public: str | None = None  # for clients (/ready, 503s): no paths, hosts or credentials

    @property
    def public_problem(self) -> str:
        return self.public or self.problem or "no model source"


_CREDENTIALS_IN_URL = re.compile(r"(://)[^/@\s]+@")


def redact_credentials(text: str) -> str:
    """Replace the user and password part of every URL by ***: logs must not carry passwords."""
    return _CREDENTIALS_IN_URL.sub(r"\1***@", text)


@dataclass(frozen=True)
class RefreshOutcome:
    status: str  # loaded | unchanged | failed | unavailable
    detail: str
    model: LoadedModel | None


class ModelStore:
    """Holds the current model; `refresh` resolves, verifies, loads and swaps."""

    def __init__(
        self, settings: Settings, on_change: Callable[[LoadedModel], None] | None = None
    ) -> None:
        self.settings = settings
        self.on_change = on_change
        self.on_failure: Callable[[str], None] | None = None
        self.current: LoadedModel | None = None
        self.problem = "loading"
        self._lock = asyncio.Lock()
        self._rejected: str | None = None  # fingerprint of the last package that failed
        self._last_logged: str | None = None
        self._registry: Registry | None = None  # registry mode only (holds the MLflow client)

    def require(self) -> LoadedModel:
        model = self.current
        if model is None:
            raise ModelNotReady(self.problem)
        return model

    # -- resolving the source (worker thread) ---------------------------------------------------

    def resolve(self) -> Candidate:
        if self.settings.model_source == "registry":
            return self._resolve_registry()
        if self.settings.model_package is not None:
            directory = self.settings.model_package
            if not directory.is_dir():
                return Candidate(
                    None,
                    f"package:{directory}",
                    f"{directory}: no such folder",
                    public="the configured model package folder does not exist",
                )
        else:
            found = package_dirs(self.settings.packages_dir)
            if not found:
                return Candidate(
                    None,
                    f"package:{self.settings.packages_dir}",
                    f"no package under {self.settings.packages_dir}: run `heartml package`",
                    public="no package yet: run `heartml package`",
                )
            directory = found[0]
        return Candidate(directory, f"package:{directory}", None, package_fingerprint(directory))

    def _resolve_registry(self) -> Candidate:
        # mlflow: only in registry mode, never on the request path
        from heartml.tracking.registry import Registry

        try:
            if self._registry is None:
                self._registry = Registry.connect(self.settings)
            champion = self._registry.find_champion()
        except Exception as exc:
            self._registry = None  # reconnect on the next poll
            reason = redact_credentials(f"registry lookup failed: {exc}")
            if self.current is not None:  # keep serving what we have; try again next poll
                return Candidate(None, "registry", reason, public="model registry unreachable")
            return self._fallback_package(reason)
        if champion is None:
            return Candidate(None, "registry", "no champion in the registry: run `heartml track`")
        source = f"registry:{champion.model_uri} (version {champion.version})"
        for directory in package_dirs(self.settings.packages_dir):
            try:
                manifest = read_manifest(directory)
            except PackagingError:
                continue
            if (manifest.get("model_name"), str(manifest.get("version"))) == (
                champion.model_name,
                champion.version,
            ):
                return Candidate(directory, source, None, package_fingerprint(directory))
        return Candidate(
            None,
            source,
            f"the champion {champion.model_name} version {champion.version} has no package "
            f"under {self.settings.packages_dir}: run `heartml package`",
            public=f"the champion {champion.model_name} version {champion.version} has no "
            "package yet: run `heartml package`",
        )

    def _fallback_package(self, reason: str) -> Candidate:
        """Registry down at start: serve the newest verified package rather than nothing."""
        found = package_dirs(self.settings.packages_dir)
        if not found:
            return Candidate(
                None,
                "registry",
                f"{reason}; no package under {self.settings.packages_dir} to fall back to",
                public="model registry unreachable and no model package to fall back to",
            )
        directory = found[0]
        self._log_once(
            logging.WARNING,
            f"model registry unreachable: registry fallback to the newest package {directory.name}",
            reason,
            "registry",
        )
        return Candidate(
            directory,
            f"package:{directory.name} (registry fallback: the registry was unreachable)",
            None,
            package_fingerprint(directory),
        )

    # -- loading and swapping (event loop; the slow parts in worker threads) --------------------

    async def refresh(self, force: bool = False) -> RefreshOutcome:
        """Load the source's model if it changed (or always, with force); keep the last good."""
        async with self._lock:
            candidate = await asyncio.to_thread(self.resolve)
            current = self.current
            if candidate.directory is None:
                problem = candidate.problem or "no model source"
                if current is None:
                    self.problem = candidate.public_problem
                self._log_once(logging.WARNING, "no model to load", problem, candidate.source)
                return RefreshOutcome("unavailable", candidate.public_problem, current)
            if (
                current is not None
                and candidate.fingerprint == current.fingerprint
                and candidate.source != current.source
            ):
                # Same files, new reason to serve them (e.g. the registry is back and names the
                # package we fell back to): say so without reloading.
                self.current = current = dataclasses.replace(current, source=candidate.source)
            if not force and (
                (current is not None and candidate.fingerprint == current.fingerprint)
                or candidate.fingerprint == self._rejected
            ):
                return RefreshOutcome("unchanged", "the source has not changed", current)
            try:
                model = await asyncio.to_thread(
                    load_package,
                    candidate.directory,
                    candidate.source,
                    candidate.fingerprint,
                    self.settings.serve_onnx_threads,
                )
            except (PackagingError, ModelLoadError, OSError) as exc:
                reason = f"package {candidate.directory} rejected: {exc}"
                self._rejected = candidate.fingerprint
                # Clients learn which package and which file; paths and library errors stay
                # in the log.
                detail = (
                    str(exc).replace(str(candidate.directory), candidate.directory.name)
                    if isinstance(exc, PackagingError)
                    else "its model does not load or score (see the service log)"
                )
                public = f"package {candidate.directory.name} rejected: {detail}"
                if current is None:
                    self.problem = public
                kept = f"; still serving version {current.version}" if current else ""
                log.error(
                    "model package rejected" + kept,
                    extra={"package": str(candidate.directory), "reason": str(exc)},
                )
                self._last_logged = None
                if self.on_failure is not None:
                    self.on_failure(reason)
                return RefreshOutcome("failed", public, current)
            self.current = model  # the swap: one reference, atomic for every reader
            self._rejected = None
            self._last_logged = None
            if self.on_change is not None:
                self.on_change(model)
            log.info(
                "model loaded",
                extra={
                    "model_name": model.name,
                    "model_version": model.version,
                    "package": str(model.directory),
                    "source": model.source,
                    "previous_version": current.version if current else None,
                },
            )
            return RefreshOutcome("loaded", f"loaded {model.name} version {model.version}", model)

    async def run(self, interval_s: float) -> None:
        """Load the model now, then poll the source every interval (0: never); until cancelled."""
        while True:
            try:
                await self.refresh()
            except Exception:  # the watcher must outlive any one bad poll
                log.exception("model refresh failed")
            if interval_s <= 0:
                return
            await asyncio.sleep(interval_s)

    def _log_once(self, level: int, message: str, problem: str, source: str) -> None:
        # The watcher asks every few seconds; say each distinct problem once, not every poll.
        if problem != self._last_logged:
            kept = f"; still serving version {self.current.version}" if self.current else ""
            log.log(level, message + kept, extra={"reason": problem, "source": source})
            self._last_logged = problem
