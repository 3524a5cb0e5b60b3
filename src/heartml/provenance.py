"""Where a result came from: library versions, git commit, hashes, atomic JSON writes."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

TRACKED_LIBRARIES = (
    "heartml",
    "numpy",
    "pandas",
    "scikit-learn",
    "scipy",
    "pandera",
    "skl2onnx",
    "onnx",
    "onnxruntime",
    "mlflow",
    "joblib",
    "skops",
)


def library_versions(names: tuple[str, ...] = TRACKED_LIBRARIES) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def platform_info() -> dict[str, str]:
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "system": platform.system(),
        "machine": platform.machine(),
        "platform": platform.platform(),
    }


def git_commit(root: Path) -> str | None:
    """HEAD's commit, with '-dirty' when the work tree has changes; None outside a checkout."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}-dirty" if status else head


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: Path, payload: Any) -> None:
    """Write JSON atomically (temp file + rename), so a crash never leaves half a file; a
    payload that cannot be written leaves the old file as it was and no temp file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=f".{path.name}.", delete=False, encoding="utf-8"
    ) as handle:
        try:
            json.dump(payload, handle, indent=2, sort_keys=False, default=_jsonable)
            handle.write("\n")
        except BaseException:
            os.unlink(handle.name)
            raise
    os.chmod(handle.name, 0o644)  # temp files are created private; outputs are for everyone
    os.replace(handle.name, path)


def _jsonable(value: Any) -> Any:
    if getattr(value, "ndim", 0) >= 1 and hasattr(value, "tolist"):  # numpy arrays
        return value.tolist()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@contextmanager
def staged_directory(final: Path) -> Iterator[Path]:
    """Yield an empty staging folder beside `final`; on success swap it in for `final`.

    Readers see the old folder or the new one, never a half-written one; on any error the old
    folder stays as it was and the staging folder is removed.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f".staging-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
        previous = final.parent / f".previous-{uuid.uuid4().hex[:8]}"
        if final.exists():
            os.replace(final, previous)
        os.replace(staging, final)
        shutil.rmtree(previous, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
