"""Which model the service scores with: resolve the source, verify, load, swap, watch.

Sources (settings.model_source):
- ``package`` (default): the folder in HEARTML_MODEL_PACKAGE, else the newest package under
  packages/ (by MANIFEST time, as `heartml package verify` chooses).
- ``registry``: the registry's champion (heartml.tracking.registry, imported lazily in a
  worker thread), served from the newest package under packages/ whose MANIFEST names the same
  model and version. The registry holds the sklearn model, not the ONNX graph, so a champion
  without a package is reported (log line, /ready 503 if nothing is loaded yet) until `heartml
  package` builds it; the watcher then picks it up.

A package is loaded (heartml.serving.loaded_model) only after every checksum in its MANIFEST
matches, and the files the server reads are hashed again as they are read, so what is scored is
exactly what was verified; its dataset spec is its input contract. Loading runs in a worker thread; the swap is one reference assignment, so a request keeps the
model object it started with. A failed load keeps the last good model.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from heartml.errors import HeartmlError
from heartml.package.manifest import PackagingError, package_dirs, read_manifest
from heartml.serving.contract import Contract, build_contract, configured_spec
from heartml.serving.loaded_model import LoadedModel as LoadedModel
from heartml.serving.loaded_model import ModelLoadError as ModelLoadError
from heartml.serving.loaded_model import load_package as load_package
from heartml.settings import Settings
from heartml.spec import DatasetSpec

if TYPE_CHECKING:  # mlflow's side is imported lazily, in registry mode only
    from heartml.tracking.registry import Registry

log = logging.getLogger(__name__)


# Any folder name but a hidden one (`heartml package` builds in a hidden staging folder).
ANY_PREFIX = "[!.]*"


class ModelNotReady(HeartmlError):
    """No model is loaded; the message says why (for /ready and a 503)."""


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
        self._configured: tuple[DatasetSpec | None] | None = None
        self._configured_contract: tuple[Contract | None] | None = None

    def configured_spec(self) -> DatasetSpec | None:
        """The project's dataset spec (read once), if the root has one."""
        if self._configured is None:
            self._configured = (configured_spec(self.settings),)
        return self._configured[0]

    def configured_contract(self) -> Contract | None:
        """The contract of the project's spec (built once): what the API describes and checks
        before any model is loaded."""
        if self._configured_contract is None:
            spec = self.configured_spec()
            self._configured_contract = (build_contract(spec) if spec is not None else None,)
        return self._configured_contract[0]

    def packages(self) -> list[Path]:
        """Package folders under packages/, newest first: the configured spec's, or any when
        the root has no spec (a serving image ships packages, not the project's configs)."""
        spec = self.configured_spec()
        return package_dirs(self.settings.packages_dir, spec.package_prefix if spec else ANY_PREFIX)

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
            found = self.packages()
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
        for directory in self.packages():
            try:
                manifest = read_manifest(directory)
            except PackagingError:
                continue
            if manifest.names(champion.model_name, champion.version):
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
        found = self.packages()
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
