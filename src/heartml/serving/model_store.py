"""Which model the service scores with: ask the source, verify, load, swap, watch.

The source (heartml.serving.sources) is a package folder, or the registry's champion over
MLflow's REST API (HEARTML_MODEL_SOURCE=registry; no mlflow in the server). A second store of
role `challenger` follows the shadow model (the registry's `challenger` alias, or
HEARTML_SHADOW_PACKAGE) the same way.

A package is loaded (heartml.serving.loaded_model) only after every checksum in its MANIFEST
matches, and the files the server reads are hashed again as they are read, so what is scored is
exactly what was verified; its dataset spec is its input contract. Resolving, downloading and
loading run in worker threads; the swap is one reference assignment, so a request keeps the
model object it started with. A failed load or an unreachable registry keeps the last good
model, and each distinct problem is logged once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from heartml.errors import HeartmlError
from heartml.package.manifest import PackagingError, package_dirs
from heartml.serving.contract import Contract, build_contract, configured_spec
from heartml.serving.loaded_model import LoadedModel, ModelLoadError, load_package
from heartml.serving.registry_http import RegistryError, RegistryUnavailable
from heartml.serving.source_choice import make_source
from heartml.serving.sources import (
    CHAMPION,
    Candidate,
    RegistrySource,
    Source,
    SourceStatusBody,
    redact_credentials,
)
from heartml.settings import Settings
from heartml.spec import DatasetSpec

log = logging.getLogger(__name__)


# Any folder name but a hidden one (`heartml package` builds in a hidden staging folder).
ANY_PREFIX = "[!.]*"


class ModelNotReady(HeartmlError):
    """No model is loaded; the message says why (for /ready and a 503)."""


@dataclass(frozen=True)
class RefreshOutcome:
    status: str  # loaded | unchanged | failed | unavailable
    detail: str
    model: LoadedModel | None


class ModelStore:
    """Holds the current model of one role; `refresh` resolves, verifies, loads and swaps."""

    def __init__(
        self,
        settings: Settings,
        on_change: Callable[[LoadedModel], None] | None = None,
        *,
        role: str = CHAMPION,
        source: Source | None = None,
    ) -> None:
        self.settings = settings
        self.role = role
        self.on_change = on_change
        self.on_failure: Callable[[str], None] | None = None
        self.on_clear: Callable[[], None] | None = None  # the source names no model any more
        # Awaited with a loaded model before it is swapped in (its site calibrations are read
        # then: its first answer is already calibrated), and after every refresh with the
        # current model and `force` (the calibrations' own poll: heartml.serving.calibrations).
        self.before_swap: Callable[[LoadedModel], Awaitable[None]] | None = None
        self.after_refresh: Callable[[LoadedModel | None, bool], Awaitable[None]] | None = None
        self.current: LoadedModel | None = None
        self.problem = "loading"
        self._lock = asyncio.Lock()
        self._rejected: str | None = None  # fingerprint of the last package that failed
        self._last_logged: str | None = None
        self._source = source
        self._source_made = source is not None
        self._configured: tuple[DatasetSpec | None] | None = None
        self._configured_contract: tuple[Contract | None] | None = None

    @property
    def source(self) -> Source | None:
        """Made on first use (registry mode builds an HTTP client): nothing at construction."""
        if not self._source_made:
            self._source = make_source(self.settings, self.role, self.packages)
            self._source_made = True
        return self._source

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

    def close(self) -> None:
        """Close the registry client's connections (registry mode)."""
        if isinstance(self._source, RegistrySource):
            self._source.client.close()

    def source_status(self) -> SourceStatusBody | None:
        """The registry's state at its last look-up (None for a package source)."""
        status = getattr(self._source, "status", None)
        return status.info() if status is not None else None

    # -- loading and swapping (event loop; the slow parts in worker threads) --------------------

    async def refresh(self, force: bool = False) -> RefreshOutcome:
        """Load the source's model if it changed (or always, with force); keep the last good."""
        outcome = await self._refresh(force)
        if self.after_refresh is not None:
            try:
                await self.after_refresh(self.current, force)
            except Exception:  # the model's own refresh stands; the next poll tries again
                log.exception(f"{self._role_prefix}refresh of the site calibrations failed")
        return outcome

    async def _refresh(self, force: bool) -> RefreshOutcome:
        async with self._lock:
            source = self.source
            if source is None:
                return RefreshOutcome("unavailable", f"no {self.role} configured", None)
            current = self.current
            candidate = await asyncio.to_thread(source.resolve, current is not None)
            if candidate.directory is None and candidate.fetch is None:
                return self._unavailable(candidate)
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
                self._last_logged = None  # a problem that comes back is news again
                return RefreshOutcome("unchanged", "the source has not changed", current)
            directory = candidate.directory
            if directory is None:
                assert candidate.fetch is not None
                try:
                    directory = await asyncio.to_thread(candidate.fetch)
                except (RegistryUnavailable, RegistryError, OSError) as exc:
                    return self._download_failed(source, candidate, exc)
            return await self._load(candidate, directory, downloaded=candidate.directory is None)

    async def _load(
        self, candidate: Candidate, directory: Path, downloaded: bool
    ) -> RefreshOutcome:
        current = self.current
        try:
            model = await asyncio.to_thread(
                load_package,
                directory,
                candidate.source,
                candidate.fingerprint,
                self.settings.serve_onnx_threads,
            )
        except (PackagingError, ModelLoadError, OSError) as exc:
            reason = f"package {directory} rejected: {exc}"
            self._rejected = candidate.fingerprint
            # Clients learn which package and which file; paths and library errors stay
            # in the log.
            detail = (
                str(exc).replace(str(directory), directory.name)
                if isinstance(exc, PackagingError)
                else "its model does not load or score (see the service log)"
            )
            public = f"package {directory.name} rejected: {detail}"
            if current is None:
                self.problem = public
            kept = f"; still serving version {current.version}" if current else ""
            log.error(
                f"{self._role_prefix}model package rejected{kept}",
                extra={"package": str(directory), "reason": str(exc), "source": candidate.source},
            )
            if downloaded:
                await asyncio.to_thread(shutil.rmtree, directory, True)
            self._last_logged = None
            if self.on_failure is not None:
                self.on_failure(reason)
            return RefreshOutcome("failed", public, current)
        if self.before_swap is not None:
            try:
                await self.before_swap(model)
            except Exception:  # served raw until the next poll reads them
                log.exception(f"{self._role_prefix}site calibrations not read")
        self.current = model  # the swap: one reference, atomic for every reader
        self._rejected = None
        self._last_logged = None
        if candidate.notice is not None:
            log.warning(candidate.notice, extra={"reason": candidate.problem})
        if self.on_change is not None:
            self.on_change(model)
        log.info(
            f"{self._role_prefix}model loaded",
            extra={
                "model_name": model.name,
                "model_version": model.version,
                "package": str(model.directory),
                "source": model.source,
                "previous_version": current.version if current else None,
            },
        )
        source = self._source
        if isinstance(source, RegistrySource):  # downloads of earlier models: no longer needed
            await asyncio.to_thread(source.prune, directory if downloaded else None)
        return RefreshOutcome("loaded", f"loaded {model.name} version {model.version}", model)

    def _unavailable(self, candidate: Candidate) -> RefreshOutcome:
        current = self.current
        if candidate.gone and self.role != CHAMPION and current is not None:
            # The challenger alias was removed: stop shadowing (a champion is never dropped).
            self.current = current = None
            log.info(f"{self._role_prefix}model unloaded: {candidate.problem}")
            if self.on_clear is not None:
                self.on_clear()
        if current is None:
            self.problem = candidate.public_problem
        problem = candidate.problem or "no model source"
        level = logging.INFO if candidate.gone and self.role != CHAMPION else logging.WARNING
        if candidate.lookup_failed and self.role != CHAMPION:
            level = logging.DEBUG  # the champion's store says it
        self._log_once(level, candidate.message, problem, candidate.source, candidate.log_key)
        return RefreshOutcome("unavailable", candidate.public_problem, current)

    def _download_failed(
        self, source: Source, candidate: Candidate, exc: Exception
    ) -> RefreshOutcome:
        if isinstance(source, RegistrySource) and isinstance(
            exc, RegistryUnavailable | RegistryError
        ):
            failed = source.failed(exc, has_model=True)  # records the state for /model/info
            return self._unavailable(dataclasses.replace(failed, source=candidate.source))
        # OSError: e.g. no room for the download. Not the package's fault: try again later.
        reason = redact_credentials(f"downloading the package failed: {exc}")
        return self._unavailable(
            dataclasses.replace(
                candidate, problem=reason, public="the model package could not be stored"
            )
        )

    @property
    def _role_prefix(self) -> str:
        return "" if self.role == CHAMPION else f"{self.role} "

    async def run(self, interval_s: float) -> None:
        """Load the model now, then poll the source every interval (0: never); until cancelled."""
        while True:
            try:
                await self.refresh()
            except Exception:  # the watcher must outlive any one bad poll
                log.exception(f"{self._role_prefix}model refresh failed")
            if interval_s <= 0:
                return
            await asyncio.sleep(interval_s)

    def _log_once(
        self, level: int, message: str, problem: str, source: str, key: str | None = None
    ) -> None:
        # The watcher asks every few seconds; say each distinct problem once, not every poll.
        key = key or problem
        if key != self._last_logged:
            kept = f"; still serving version {self.current.version}" if self.current else ""
            log.log(
                level,
                self._role_prefix + message + kept,
                extra={"reason": problem, "source": source},
            )
            self._last_logged = key
