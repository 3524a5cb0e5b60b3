"""A package's MANIFEST.json: reading it, checking every file against it, finding the newest.

Standard library only (no pandas, no yaml), so that the prediction service can verify a package
without importing the training stack; heartml.packaging re-exports these names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from heartml.errors import PackagingError
from heartml.provenance import read_json, sha256_file

# The package layout's fixed file names (heartml.packaging writes them, the server reads them).
MANIFEST = "MANIFEST.json"
ONNX_FILE = "model.onnx"
MODEL_CONFIG = "model_config.yaml"
REFERENCE_FILE = "reference_statistics.json"
PARITY_FILE = "parity_reference.json"  # reference rows + the pipeline's probabilities
PACKAGE_GLOB = "heart_disease_model_*"


def read_manifest(directory: Path) -> dict[str, Any]:
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise PackagingError(f"{directory}: no {MANIFEST}")
    try:
        manifest = read_json(manifest_path)
    except ValueError as exc:
        raise PackagingError(f"{manifest_path}: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise PackagingError(f"{manifest_path}: no 'files' table")
    return manifest


def verify_checksums(directory: Path) -> dict[str, Any]:
    """Every file listed matches its sha256 and nothing unlisted was added. Returns the manifest."""
    manifest = read_manifest(directory)
    listed = manifest["files"]
    for relative, expected in listed.items():
        path = directory / relative
        if not path.is_file():
            raise PackagingError(f"{relative}: listed in {MANIFEST} but missing")
        actual = sha256_file(path)
        if actual != expected["sha256"]:
            raise PackagingError(
                f"{relative}: sha256 {actual} does not match {MANIFEST} ({expected['sha256']})"
            )
    extra = sorted(
        p.relative_to(directory).as_posix()
        for p in directory.rglob("*")
        if p.is_file() and p.name != MANIFEST and p.relative_to(directory).as_posix() not in listed
    )
    if extra:
        raise PackagingError(f"{extra[0]}: present but not listed in {MANIFEST}")
    return manifest


def package_dirs(packages_dir: Path) -> list[Path]:
    """Complete package folders (those with a MANIFEST), newest first by MANIFEST time."""
    stamped = []
    for directory in packages_dir.glob(PACKAGE_GLOB):
        try:
            stamped.append(((directory / MANIFEST).stat().st_mtime, directory))
        except OSError:  # no manifest yet, or swapped out by a concurrent `heartml package`
            continue
    return [directory for _, directory in sorted(stamped, reverse=True)]


def newest_package(packages_dir: Path) -> Path | None:
    candidates = package_dirs(packages_dir)
    return candidates[0] if candidates else None
