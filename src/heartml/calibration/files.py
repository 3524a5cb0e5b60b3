"""Where site calibrations live, and the one reader and writer of that layout.

    <calibrations>/<model name>/<model version>/<site>/
        v<N>/calibration.json     the SiteCalibration document
        v<N>/MANIFEST.json        its sha256 (a file that does not match is never served)
        active.json               which version the site is served with (null: the raw model)
        decisions.jsonl           every decision, one JSON object per line, oldest first

`<calibrations>` is HEARTML_CALIBRATIONS_DIR (default <root>/calibrations), beside packages/.
A calibration belongs to one model version: a new champion starts every site on its raw
probabilities until it is recalibrated. Writes are atomic (a version folder is staged and
renamed; active.json is replaced), so the server, polling, sees the old state or the new one.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, JsonValue

from heartml.calibration.document import SiteCalibration
from heartml.documents.base import Document, Part
from heartml.documents.package import FileEntry
from heartml.errors import DocumentError, HeartmlError
from heartml.provenance import sha256_file, staged_directory, write_json
from heartml.sites import SITE_PATTERN, SITE_RULE

CALIBRATION_FILE = "calibration.json"
MANIFEST_FILE = "MANIFEST.json"
ACTIVE_FILE = "active.json"
DECISIONS_FILE = "decisions.jsonl"
VERSION_PREFIX = "v"

DecisionAction = Literal["accepted", "rejected", "declined", "rollback"]


class CalibrationFileError(HeartmlError):
    """A calibration on disk is missing, altered or not a calibration; the message says which."""


class CalibrationManifest(Document):
    created_at: str
    files: dict[str, FileEntry]


class ActivePointer(Document):
    version: int | None  # None: the site is served the raw model
    since: str


class Decision(Part):
    """One line of decisions.jsonl: what `heartml recalibrate` decided, and why."""

    at: str
    action: DecisionAction
    site: str
    model_name: str
    model_version: str
    candidate_version: int | None = None  # the version written (accepted or rejected)
    active_before: int | None = None
    active_after: int | None = None
    reason: str
    figures: dict[str, JsonValue] = Field(default_factory=dict)


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def checked_site(site: str) -> str:
    if not SITE_PATTERN.fullmatch(site):
        raise CalibrationFileError(f"site {site!r} is not allowed; expected {SITE_RULE}")
    return site


def model_dir(calibrations: Path, model_name: str, model_version: str) -> Path:
    return calibrations / model_name / str(model_version)


def site_dir(calibrations: Path, model_name: str, model_version: str, site: str) -> Path:
    return model_dir(calibrations, model_name, model_version) / checked_site(site)


def version_dir(directory: Path, version: int) -> Path:
    return directory / f"{VERSION_PREFIX}{version}"


def versions(directory: Path) -> list[int]:
    """The calibration versions written for a site, ascending."""
    found = []
    for path in directory.glob(f"{VERSION_PREFIX}*"):
        number = path.name[len(VERSION_PREFIX) :]
        if number.isdigit() and (path / MANIFEST_FILE).is_file():
            found.append(int(number))
    return sorted(found)


def next_version(directory: Path) -> int:
    written = versions(directory)
    return written[-1] + 1 if written else 1


def write_calibration(calibrations: Path, calibration: SiteCalibration) -> Path:
    """Write a new version folder (document + manifest); it is not active until `set_active`."""
    directory = site_dir(
        calibrations, calibration.model_name, calibration.model_version, calibration.site
    )
    final = version_dir(directory, calibration.version)
    if final.exists():
        raise CalibrationFileError(f"{final} exists: calibration versions are never overwritten")
    with staged_directory(final) as staging:
        calibration.write(staging / CALIBRATION_FILE)
        path = staging / CALIBRATION_FILE
        CalibrationManifest(
            created_at=now_text(),
            files={
                CALIBRATION_FILE: FileEntry(sha256=sha256_file(path), bytes=path.stat().st_size)
            },
        ).write(staging / MANIFEST_FILE)
    return final


def read_calibration(directory: Path) -> SiteCalibration:
    """A version folder's calibration, after its sha256 matched its manifest."""
    try:
        manifest = CalibrationManifest.read(directory / MANIFEST_FILE)
    except DocumentError as exc:
        raise CalibrationFileError(str(exc)) from None
    entry = manifest.files.get(CALIBRATION_FILE)
    path = directory / CALIBRATION_FILE
    if entry is None:
        raise CalibrationFileError(f"{directory / MANIFEST_FILE}: {CALIBRATION_FILE} not listed")
    if not path.is_file():
        raise CalibrationFileError(f"{path}: listed in {MANIFEST_FILE} but missing")
    data = path.read_bytes()  # hashed and parsed from the same bytes
    actual = hashlib.sha256(data).hexdigest()
    if actual != entry.sha256:
        raise CalibrationFileError(
            f"{path}: sha256 {actual} does not match {MANIFEST_FILE} ({entry.sha256})"
        )
    try:
        return SiteCalibration.from_json_dict(json.loads(data), str(path))
    except (DocumentError, ValueError) as exc:
        raise CalibrationFileError(str(exc)) from None


def active_version(directory: Path) -> int | None:
    path = directory / ACTIVE_FILE
    if not path.is_file():
        return None
    try:
        return ActivePointer.read(path).version
    except DocumentError as exc:
        raise CalibrationFileError(str(exc)) from None


def set_active(directory: Path, version: int | None) -> None:
    write_json(
        directory / ACTIVE_FILE, ActivePointer(version=version, since=now_text()).to_json_dict()
    )


def append_decision(directory: Path, decision: Decision) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    line = json.dumps(decision.model_dump(mode="json"), sort_keys=False)
    # One write of one line in append mode: a concurrent reader sees whole lines.
    with (directory / DECISIONS_FILE).open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def decisions(directory: Path) -> list[Decision]:
    path = directory / DECISIONS_FILE
    if not path.is_file():
        return []
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                found.append(Decision.model_validate(json.loads(line)))
            except ValueError as exc:
                raise CalibrationFileError(f"{path}:{number}: not a decision ({exc})") from None
    return found


def sites(calibrations: Path, model_name: str, model_version: str) -> list[str]:
    directory = model_dir(calibrations, model_name, model_version)
    if not directory.is_dir():
        return []
    return sorted(
        p.name for p in directory.iterdir() if p.is_dir() and SITE_PATTERN.fullmatch(p.name)
    )


@dataclass(frozen=True)
class ActiveCalibrations:
    """What a server applies for one model version: the active calibration of each site that
    has a valid one, and why each other site with an active pointer is served raw."""

    by_site: dict[str, SiteCalibration]
    problems: dict[str, str]
    fingerprint: str


def state_fingerprint(calibrations: Path, model_name: str, model_version: str) -> str:
    """Changes whenever a site's active pointer or its file changes: the server's cheap poll."""
    parts = []
    directory = model_dir(calibrations, model_name, model_version)
    for site in sites(calibrations, model_name, model_version):
        watched = [directory / site / ACTIVE_FILE, *directory.glob(f"{site}/{VERSION_PREFIX}*/*")]
        for path in watched:
            try:
                stat = path.stat()
            except OSError:  # removed between the listing and the stat
                continue
            parts.append(f"{path.relative_to(directory)}:{stat.st_mtime_ns}:{stat.st_size}")
    return "|".join(parts)


def load_active(calibrations: Path, model_name: str, model_version: str) -> ActiveCalibrations:
    """Every site's active calibration for this model version, each verified; a site whose
    file is missing, altered or for another model is left out (raw model) with the reason."""
    fingerprint = state_fingerprint(calibrations, model_name, model_version)
    by_site: dict[str, SiteCalibration] = {}
    problems: dict[str, str] = {}
    for site in sites(calibrations, model_name, model_version):
        directory = site_dir(calibrations, model_name, model_version, site)
        try:
            version = active_version(directory)
            if version is None:
                continue
            calibration = read_calibration(version_dir(directory, version))
            if (calibration.model_name, calibration.model_version, calibration.site) != (
                model_name,
                str(model_version),
                site,
            ) or calibration.version != version:
                raise CalibrationFileError(
                    f"{version_dir(directory, version)}: the file is {calibration.label} of "
                    f"{calibration.model_name} version {calibration.model_version}"
                )
        except (CalibrationFileError, OSError) as exc:
            problems[site] = str(exc)
            continue
        by_site[site] = calibration
    return ActiveCalibrations(by_site, problems, fingerprint)
