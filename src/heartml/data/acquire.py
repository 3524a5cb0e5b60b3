"""Get the raw UCI file: download with a timeout, fall back to the shipped copy, verify sha256."""

from __future__ import annotations

import hashlib
import http.client
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

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

    def provenance(self) -> dict[str, object]:
        return {
            "source": self.source,
            "location": self.location,
            "sha256": self.sha256,
            "bytes": len(self.content),
            "acquired_at": self.acquired_at,
            "notes": list(self.notes),
        }


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
