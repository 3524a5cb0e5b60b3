"""Site calibrations as the service applies them, after the ONNX graph.

For the model being served (name and version), the service holds every site's active
calibration (heartml.calibration.files.load_active: each file's sha256 checked against its
manifest). They are read in a worker thread when a model loads (before it answers its first
request) and again whenever the calibrations folder changes (`state_fingerprint`, looked at on
every poll of the model source and on POST /admin/reload): a new or rolled-back calibration is
served without a restart. What the request path reads is one dict, replaced whole (one reference
assignment), so a request sees the old calibrations or the new ones, never a mix.

A site whose active calibration is missing, altered or not its own is served the raw model, and
the reason is logged once (again only if it changes, or comes back after being fixed).

The calibrated probability is the served one: the 0/1 decision at the package threshold and the
risk band are taken on it, because calibration exists so that the probability a clinician reads,
and what is decided on it, are right for the site. The model's own probability is in the
answer's `calibration.model_probability` and in the prediction store (`raw_probability`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from heartml.calibration.document import SiteCalibration, apply, scalar_function
from heartml.calibration.files import ActiveCalibrations, load_active, state_fingerprint
from heartml.serving.loaded_model import LoadedModel

log = logging.getLogger("heartml.serving")

ModelKey = tuple[str, str]  # (model name, model version)
RAW_ENTRIES = 4096


@dataclass(frozen=True)
class SiteEntry:
    """How one site's predictions are served: with its calibration, or raw (function None)."""

    site: str
    detail: str  # for people, in the answer
    calibration: SiteCalibration | None = None
    function: Callable[[float], float] | None = None  # the calibration for one float

    @property
    def version(self) -> int | None:
        return None if self.calibration is None else self.calibration.version

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        return probabilities if self.calibration is None else apply(self.calibration, probabilities)

    def body(self, model_probability: float) -> dict[str, Any]:
        """The answer's `calibration` (documented as schemas.CalibrationApplied)."""
        calibration = self.calibration
        return {
            "site": self.site,
            "version": None if calibration is None else calibration.version,
            "method": None if calibration is None else calibration.method,
            "model_probability": model_probability,
            "detail": self.detail,
        }


def applied(calibration: SiteCalibration) -> SiteEntry:
    return SiteEntry(
        calibration.site,
        f"site {calibration.site} calibration v{calibration.version} ({calibration.method}) "
        "applied",
        calibration,
        scalar_function(calibration),
    )


def raw_entry(site: str) -> SiteEntry:
    return SiteEntry(site, f"no calibration for site {site}: the model's own probability")


def refused_entry(site: str) -> SiteEntry:
    return SiteEntry(
        site,
        f"the calibration of site {site} was refused (see /model/info `calibrations`): the "
        "model's own probability",
    )


@dataclass(frozen=True)
class Snapshot:
    """One model version's calibrations, as read at one moment."""

    key: ModelKey
    active: ActiveCalibrations
    entries: dict[str, SiteEntry]  # the sites with an active pointer (applied or refused)


def snapshot_of(key: ModelKey, active: ActiveCalibrations) -> Snapshot:
    entries = {site: applied(c) for site, c in active.by_site.items()}
    entries.update({site: refused_entry(site) for site in active.problems})
    return Snapshot(key, active, entries)


class ServedCalibrations:
    """The calibrations of the served model; `entry` is the request path's one look-up."""

    def __init__(self, directory: Path, default_site: str | None) -> None:
        self.directory = directory
        self.default_site = default_site
        # Replaced whole, never changed in place: readers take one reference. Two entries at
        # most while a new model is swapped in (its calibrations are read before it serves).
        self._snapshots: dict[ModelKey, Snapshot] = {}
        self._logged: dict[tuple[ModelKey, str], str] = {}  # problems already logged
        self._raw: dict[str, SiteEntry] = {}  # the sites seen without a calibration
        self._lock = asyncio.Lock()

    def entry(self, model: LoadedModel, site: str) -> SiteEntry:
        snapshot = self._snapshots.get((model.name, model.version))
        found = snapshot.entries.get(site) if snapshot is not None else None
        if found is None:
            found = self._raw.get(site)
            if found is None:
                found = raw_entry(site)
                if len(self._raw) < RAW_ENTRIES:  # bounded: site names come from clients
                    self._raw[site] = found
        return found

    def snapshot(self, model: LoadedModel) -> Snapshot | None:
        return self._snapshots.get((model.name, model.version))

    async def prepare(self, model: LoadedModel) -> None:
        """Read a model's calibrations before it serves (ModelStore.before_swap)."""
        await self._read((model.name, model.version), keep=None, force=True)

    async def check(self, model: LoadedModel | None, force: bool = False) -> None:
        """After each poll of the model source: read the served model's calibrations again if
        the folder changed (or always, with force); forget those of earlier models."""
        if model is None:
            return
        key = (model.name, model.version)
        await self._read(key, keep=key, force=force)

    async def _read(self, key: ModelKey, keep: ModelKey | None, force: bool) -> None:
        async with self._lock:
            current = self._snapshots.get(key)
            if current is not None and not force:
                fingerprint = await asyncio.to_thread(state_fingerprint, self.directory, *key)
                if fingerprint == current.active.fingerprint:
                    if keep is not None and len(self._snapshots) > 1:
                        self._snapshots = {key: current}
                    return
            active = await asyncio.to_thread(load_active, self.directory, *key)
            snapshot = snapshot_of(key, active)
            if keep is None:
                self._snapshots = {**self._snapshots, key: snapshot}
            else:
                self._snapshots = {keep: snapshot}
            self._report(key, current, snapshot)

    def _report(self, key: ModelKey, before: Snapshot | None, after: Snapshot) -> None:
        """Log what changed: each refused site once per distinct reason, each new version."""
        name, version = key
        problems = after.active.problems
        for site, reason in problems.items():
            if self._logged.get((key, site)) != reason:
                self._logged[(key, site)] = reason
                log.error(
                    f"site calibration refused: site {site} is served the raw model",
                    extra={"site": site, "model_version": version, "reason": reason},
                )
        for logged in [k for k in self._logged if k[0] == key and k[1] not in problems]:
            del self._logged[logged]  # fixed: if it breaks again, that is news
        old = {} if before is None else before.active.by_site
        for site, calibration in after.active.by_site.items():
            previous = old.get(site)
            if previous is None or previous.version != calibration.version:
                log.info(
                    f"site calibration served: {calibration.label}",
                    extra={"site": site, "model_name": name, "model_version": version},
                )
        for site in old.keys() - after.active.by_site.keys() - problems.keys():
            log.info(
                f"site calibration removed: site {site} is served the raw model",
                extra={"site": site, "model_version": version},
            )

    def info(self, model: LoadedModel | None) -> dict[str, Any]:
        """/model/info `calibrations` (documented as schemas.CalibrationsInfo)."""
        snapshot = self.snapshot(model) if model is not None else None
        sites = []
        problems: dict[str, str] = {}
        if snapshot is not None:
            for site, c in sorted(snapshot.active.by_site.items()):
                sites.append(
                    {
                        "site": site,
                        "version": c.version,
                        "method": c.method,
                        "intercept": c.intercept,
                        "slope": c.slope,
                        "outcomes": c.window.outcomes,
                        "created_at": c.created_at,
                    }
                )
            problems = dict(sorted(snapshot.active.problems.items()))
        return {
            "directory": str(self.directory),
            "default_site": self.default_site,
            "sites": sites,
            "problems": problems,
        }
