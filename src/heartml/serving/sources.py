"""Where the served model comes from: a package folder, or the registry (over MLflow's REST API).

A source's `resolve` (run in a worker thread) says what it points at now, as a Candidate: a
package folder, or a registry version whose package `fetch` downloads, or why there is none.
The store (heartml.serving.model_store) decides whether that is new, verifies, loads and swaps;
heartml.serving.source_choice chooses a store's source and checks it at start.

- PackageSource: HEARTML_MODEL_PACKAGE (or HEARTML_SHADOW_PACKAGE for the shadow), else the
  newest package under packages/ (by MANIFEST time, as `heartml package verify` chooses).
- RegistrySource: the version holding an alias (`champion`, or `challenger` for the shadow)
  across the registered models, looked up with heartml.serving.registry_client (httpx, no
  mlflow). A package under packages/ whose MANIFEST names that model and version is used as it
  is; otherwise the version's run's `package/` artifacts (uploaded by `heartml package`) are
  downloaded into the cache folder. While the registry does not answer, the last good model
  keeps serving and `status` says so (/model/info); at start, with nothing loaded yet, the newest
  package under packages/ is served instead, and said so.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TypedDict

from heartml.errors import HeartmlError
from heartml.package.manifest import PACKAGE_ARTIFACT_DIR, PackagingError, read_manifest
from heartml.serving.registry_client import RegistryClient
from heartml.serving.registry_http import RegistryError, RegistryUnavailable
from heartml.settings import Settings

log = logging.getLogger("heartml.serving.model_store")

CHAMPION, CHALLENGER = "champion", "challenger"  # the two roles a store can serve


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


_CREDENTIALS_IN_URL = re.compile(r"(://)[^/@\s]+@")


def redact_credentials(text: str) -> str:
    """Replace the user and password part of every URL by ***: logs must not carry passwords."""
    return _CREDENTIALS_IN_URL.sub(r"\1***@", text)


@dataclass(frozen=True)
class Candidate:
    """What the source points at now: a package folder (or a download of one), or why none."""

    directory: Path | None
    source: str
    problem: str | None = None  # for the log: may name paths and the server
    fingerprint: str = ""
    public: str | None = None  # for clients (/ready, 503s): no paths, hosts or credentials
    fetch: Callable[[], Path] | None = None  # registry: download the package (worker thread)
    gone: bool = False  # the source names no model at all (no version holds the alias)
    message: str = "no model to load"  # the log line's words for `problem`
    notice: str | None = None  # a warning to log (once) when this candidate is served
    # What makes a problem distinct for the log (default: `problem`). An unreachable registry
    # is one problem however the connection fails (refused, reset, timed out) from poll to poll.
    log_key: str | None = None
    # The alias look-up failed: the champion's store meets (and logs) the same registry problem,
    # so the challenger's store keeps it out of the log (one line per distinct problem).
    lookup_failed: bool = False

    @property
    def public_problem(self) -> str:
        return self.public or self.problem or "no model source"


class SourceStatusBody(TypedDict):
    """/model/info `registry` (documented as heartml.serving.schemas.RegistryStatus)."""

    state: str
    detail: str | None
    checked_at: str | None
    last_ok_at: str | None


@dataclass
class SourceStatus:
    """Whether the registry answered the last time it was asked (for /model/info)."""

    state: str = "unknown"  # ok | unreachable | error
    detail: str | None = None
    checked_at: str | None = None
    last_ok_at: str | None = None

    def record(self, state: str, detail: str | None = None) -> bool:
        """Note one look-up; True when the state changed."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        changed = state != self.state
        self.state, self.detail, self.checked_at = state, detail, now
        if state == "ok":
            self.last_ok_at = now
        return changed

    def info(self) -> SourceStatusBody:
        return {
            "state": self.state,
            "detail": self.detail,
            "checked_at": self.checked_at,
            "last_ok_at": self.last_ok_at,
        }


class Source(Protocol):
    status: SourceStatus | None

    def resolve(self, has_model: bool) -> Candidate: ...


class PackageSource:
    """A named package folder, else the newest under packages/."""

    status: SourceStatus | None = None

    def __init__(self, settings: Settings, packages: Callable[[], list[Path]], folder: Path | None):
        self.settings = settings
        self.packages = packages
        self.folder = folder

    def resolve(self, has_model: bool) -> Candidate:
        directory = self.folder
        if directory is not None:
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


class RegistrySource:
    """The version holding `alias` in the registry, and its package (local, else downloaded)."""

    def __init__(
        self,
        settings: Settings,
        client: RegistryClient,
        alias: str,
        names: list[str],
        packages: Callable[[], list[Path]],
        cache_dir: Path,
        *,
        fallback: bool,
    ) -> None:
        self.settings = settings
        self.client = client
        self.alias = alias
        self.names = names
        self.packages = packages
        self.cache_dir = cache_dir
        self.fallback = fallback  # at start with nothing loaded: serve the newest local package
        self.status: SourceStatus | None = SourceStatus()

    def resolve(self, has_model: bool) -> Candidate:
        try:
            ref = self.client.find(self.alias, self.names)
            local = self._local(ref.model_name, ref.version) if ref is not None else None
            manifest = self.client.manifest(ref) if ref is not None and local is None else None
        except (RegistryUnavailable, RegistryError) as exc:
            return dataclasses.replace(self.failed(exc, has_model), lookup_failed=True)
        self.status_ok()
        if ref is None:
            names = ", ".join(self.names)
            return Candidate(
                None,
                "registry",
                f"no version of {names} holds the alias {self.alias!r}",
                public=f"no registered version holds the alias {self.alias!r} yet",
                gone=True,
            )
        source = f"registry:{ref.uri} (version {ref.version})"
        if local is not None:
            return Candidate(local, source, None, package_fingerprint(local))
        if manifest is None:
            return Candidate(
                None,
                source,
                f"the {self.alias} {ref.label} has no package: no {PACKAGE_ARTIFACT_DIR}/ among "
                f"the artifacts of run {ref.run_id} and none under {self.settings.packages_dir}: "
                "run `heartml package`",
                public=f"the {self.alias} {ref.label} has no package yet: run `heartml package`",
            )
        fingerprint = f"registry:{ref.model_name}:{ref.version}:" + (
            hashlib.sha256(manifest).hexdigest()
        )
        fetch = functools.partial(self.client.download_package, ref, self.cache_dir, manifest)
        return Candidate(None, source, None, fingerprint, fetch=fetch)

    def status_ok(self) -> None:
        assert self.status is not None
        was = self.status.state
        self.status.record("ok")
        if was in ("unreachable", "error"):
            log.info(
                f"model registry ({self.alias}) answers again",
                extra={"registry": self.client.public_uri},
            )

    def failed(self, exc: HeartmlError, has_model: bool) -> Candidate:
        """The registry did not answer (or not usefully): keep what we have, or fall back."""
        assert self.status is not None
        unreachable = isinstance(exc, RegistryUnavailable)
        public = "model registry unreachable" if unreachable else "model registry error"
        reason = redact_credentials(str(exc))
        self.status.record("unreachable" if unreachable else "error", f"{public}: {reason}")
        key = public if unreachable else None
        if has_model or not self.fallback:
            return Candidate(None, "registry", reason, public=public, message=public, log_key=key)
        found = self.packages()
        if not found:
            return Candidate(
                None,
                "registry",
                f"{reason}; no package under {self.settings.packages_dir} to fall back to",
                public=f"{public} and no model package to fall back to",
                message=public,
                log_key=key,
            )
        directory = found[0]
        return Candidate(
            directory,
            f"package:{directory.name} (registry fallback: the registry was unreachable)",
            reason,
            package_fingerprint(directory),
            notice=f"{public}: registry fallback to the newest package {directory.name}",
        )

    def _local(self, model_name: str, version: str) -> Path | None:
        for directory in self.packages():
            try:
                manifest = read_manifest(directory)
            except PackagingError:
                continue
            if manifest.names(model_name, version):
                return directory
        return None

    def prune(self, keep: Path | None) -> None:
        """Remove downloaded packages other than `keep` (the one loaded now is in memory)."""
        if not self.cache_dir.is_dir():
            return
        for folder in self.cache_dir.iterdir():
            if folder.is_dir() and (keep is None or folder.resolve() != keep.resolve()):
                shutil.rmtree(folder, ignore_errors=True)
