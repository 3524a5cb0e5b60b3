"""Get the raw data as the spec's source says: download with a timeout and fall back to the
shipped copy, or (for data that ships inside a library, e.g. scikit-learn's) write it out once as
a CSV; verify its sha256 either way."""

from __future__ import annotations

import hashlib
import http.client
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from heartml.documents.data import RawProvenance
from heartml.errors import DataError


class AcquisitionError(DataError):
    """Neither the download nor the shipped copy gave the expected bytes."""


@dataclass(frozen=True)
class RawData:
    content: bytes
    source: str  # "download" or "shipped copy"
    location: str  # URL or file path
    sha256: str
    acquired_at: str
    notes: tuple[str, ...] = ()

    def provenance(self) -> RawProvenance:
        return RawProvenance(
            source=self.source,
            location=self.location,
            sha256=self.sha256,
            bytes=len(self.content),
            acquired_at=self.acquired_at,
            notes=list(self.notes),
        )


def sha256_bytes(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def download(url: str, timeout_s: float) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "heartml"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return bytes(response.read())


def acquire(
    url: str | None, shipped_copy: Path, expected_sha256: str, timeout_s: float = 5.0
) -> RawData:
    """Try the URL (unless None), then the shipped copy; return the first that matches the hash."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    notes: list[str] = []
    if url:
        try:
            content = download(url, timeout_s)
        # HTTPException: a truncated body (IncompleteRead) or a garbled status line.
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            notes.append(f"download from {url} failed ({reason}); using the shipped copy")
        else:
            digest = sha256_bytes(content)
            if digest == expected_sha256:
                return RawData(content, "download", url, digest, now)
            notes.append(
                f"download from {url} has sha256 {digest}, expected {expected_sha256}; "
                "using the shipped copy"
            )
    else:
        notes.append("offline mode: download skipped")

    if not shipped_copy.is_file():
        raise AcquisitionError(
            f"no usable data: {notes[-1]}, and the shipped copy {shipped_copy} does not exist"
        )
    content = shipped_copy.read_bytes()
    digest = sha256_bytes(content)
    if digest != expected_sha256:
        raise AcquisitionError(
            f"no usable data: {notes[-1]}, and the shipped copy {shipped_copy} has sha256 "
            f"{digest}, expected {expected_sha256}"
        )
    return RawData(content, "shipped copy", str(shipped_copy), digest, now, tuple(notes))


def sklearn_csv(loader: str, columns: dict[str, str], target: tuple[str, str]) -> bytes:
    """A dataset that ships inside scikit-learn, as CSV bytes with a header row.

    `columns` maps each spec column to its name in sklearn's frame; `target` is (spec name,
    sklearn name) of the label. Numbers are written with repr(), so the bytes (and their sha256)
    are the same on every machine with the same sklearn data.
    """
    import sklearn.datasets

    load = {"breast_cancer": sklearn.datasets.load_breast_cancer}[loader]
    frame = load(as_frame=True).frame
    spec_names = [*columns, target[0]]
    source_names = [*columns.values(), target[1]]
    missing = [name for name in source_names if name not in frame.columns]
    if missing:
        raise AcquisitionError(f"scikit-learn's {loader} data has no column {missing[0]!r}")
    lines = [",".join(spec_names)]
    for values in frame.loc[:, source_names].itertuples(index=False):
        lines.append(
            ",".join(repr(float(v)) if not float(v).is_integer() else str(int(v)) for v in values)
        )
    return ("\n".join(lines) + "\n").encode()


def generated(content: bytes, copy: Path, expected_sha256: str, what: str) -> RawData:
    """Data produced locally (not downloaded): check the hash, keep a copy, describe it."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    digest = sha256_bytes(content)
    if digest != expected_sha256:
        raise AcquisitionError(
            f"{what} has sha256 {digest}, the dataset spec expects {expected_sha256}"
        )
    copy.parent.mkdir(parents=True, exist_ok=True)
    if not copy.is_file() or sha256_bytes(copy.read_bytes()) != digest:
        tmp = copy.with_name(f".{copy.name}.partial")
        tmp.write_bytes(content)
        tmp.replace(copy)
    return RawData(content, "generated", what, digest, now, (f"copy kept at {copy}",))
