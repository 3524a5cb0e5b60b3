"""A package's MANIFEST.json: reading it, checking every file against it, finding the newest,
and reading a verified package's serving files (the ONE loader that serving and batch use).

Light imports only (no pandas, sklearn or mlflow), so that the prediction service can verify a
package without the training stack (build.py and verify.py hold the heavy parts).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from heartml.documents.package import (
    DEFAULT_THRESHOLD,
    FileEntry,
    Manifest,
    ModelConfig,
    PackageIdentity,
    ParityReference,
    ReferenceStatistics,
)
from heartml.errors import DocumentError, PackagingError
from heartml.provenance import read_json, sha256_file

# The package layout's fixed file names (heartml.package.build writes them, the server reads them).
MANIFEST = "MANIFEST.json"
ONNX_FILE = "model.onnx"
MODEL_CONFIG = "model_config.yaml"
REFERENCE_FILE = "reference_statistics.json"
SPEC_FILE = "dataset_spec.yaml"  # the dataset spec the model was trained with (its input contract)
PARITY_FILE = "parity_reference.json"  # reference rows + the pipeline's probabilities
JOBLIB_FILE = "model.joblib"  # the fitted sklearn Pipeline (a pickle: loaded after its sha256)
MLFLOW_DIR = "mlflow_model"  # the registered MLflow pyfunc, copied
# Where `heartml package` uploads a version's verified package among its run's artifacts, and
# where registry-mode serving downloads it from.
PACKAGE_ARTIFACT_DIR = "package"


def read_manifest(directory: Path) -> Manifest:
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise PackagingError(f"{directory}: no {MANIFEST}")
    try:
        data = read_json(manifest_path)
    except ValueError as exc:
        raise PackagingError(f"{manifest_path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise PackagingError(f"{manifest_path}: no 'files' table")
    try:
        return Manifest.from_json_dict(data, str(manifest_path))
    except DocumentError as exc:
        raise PackagingError(str(exc)) from None


def verify_checksums(directory: Path) -> Manifest:
    """Every file listed matches its sha256 and nothing unlisted was added. Returns the manifest."""
    manifest = read_manifest(directory)
    listed = manifest.files
    for relative, expected in listed.items():
        path = directory / relative
        if not path.is_file():
            raise PackagingError(f"{relative}: listed in {MANIFEST} but missing")
        actual = sha256_file(path)
        if actual != expected.sha256:
            raise PackagingError(
                f"{relative}: sha256 {actual} does not match {MANIFEST} ({expected.sha256})"
            )
    extra = sorted(
        p.relative_to(directory).as_posix()
        for p in directory.rglob("*")
        if p.is_file() and p.name != MANIFEST and p.relative_to(directory).as_posix() not in listed
    )
    if extra:
        raise PackagingError(f"{extra[0]}: present but not listed in {MANIFEST}")
    return manifest


def write_manifest(directory: Path, identity: PackageIdentity) -> Manifest:
    files = {
        path.relative_to(directory).as_posix(): FileEntry(
            sha256=sha256_file(path), bytes=path.stat().st_size
        )
        for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST)
    }
    manifest = Manifest.model_validate(
        {
            **identity.model_dump(exclude_unset=True),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "files": files,
        }
    )
    manifest.write(directory / MANIFEST)
    return manifest


def package_dirs(packages_dir: Path, prefix: str) -> list[Path]:
    """Complete package folders named `<prefix>_*` (those with a MANIFEST), newest first by
    MANIFEST time; `prefix` is the dataset spec's package_prefix."""
    stamped = []
    for directory in packages_dir.glob(f"{prefix}_*"):
        try:
            stamped.append(((directory / MANIFEST).stat().st_mtime, directory))
        except OSError:  # no manifest yet, or swapped out by a concurrent `heartml package`
            continue
    return [directory for _, directory in sorted(stamped, reverse=True)]


def newest_package(packages_dir: Path, prefix: str) -> Path | None:
    candidates = package_dirs(packages_dir, prefix)
    return candidates[0] if candidates else None


def newest_package_or_fail(packages_dir: Path, prefix: str) -> Path:
    found = newest_package(packages_dir, prefix)
    if found is None:
        raise PackagingError(
            f"no package under {packages_dir}", hint="run `heartml package` first or pass --package"
        )
    return found


@dataclass(frozen=True)
class VerifiedPackage:
    """A package's serving files, read after every checksum matched (and hashed again as they
    were read, so what is used is exactly what was verified)."""

    directory: Path
    manifest: Manifest
    spec_text: str  # dataset_spec.yaml: parse with heartml.spec.spec_from_text
    onnx: bytes
    model_config: ModelConfig
    reference: ReferenceStatistics
    parity: ParityReference  # check with heartml.parity before scoring anything

    @property
    def threshold(self) -> float:
        """The config's threshold, else the manifest's, else the default."""
        for recorded in (self.model_config.threshold, self.manifest.threshold):
            if recorded is not None:
                return recorded
        return DEFAULT_THRESHOLD


def verified_bytes(directory: Path, manifest: Manifest, name: str) -> bytes:
    entry = manifest.files.get(name)
    if entry is None:
        raise PackagingError(f"{name}: not in the package")
    content = (directory / name).read_bytes()
    if hashlib.sha256(content).hexdigest() != entry.sha256:
        raise PackagingError(f"{name}: changed after verification")
    return content


def read_package(directory: Path) -> VerifiedPackage:
    """Verify every checksum, then read the files a scorer needs. PackagingError names the file."""
    import json

    if not directory.is_dir():
        raise PackagingError(f"{directory}: not a package folder")
    manifest = verify_checksums(directory)
    if SPEC_FILE not in manifest.files:
        raise PackagingError(
            f"{directory.name}: no {SPEC_FILE} (built before packages carried their dataset spec)",
            hint="rebuild it with `heartml package`",
        )
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        config = yaml.load(verified_bytes(directory, manifest, MODEL_CONFIG), Loader=loader)
        reference = json.loads(verified_bytes(directory, manifest, REFERENCE_FILE))
        parity = json.loads(verified_bytes(directory, manifest, PARITY_FILE))
    except (yaml.YAMLError, ValueError) as exc:
        raise PackagingError(f"{directory.name}: unreadable config ({exc})") from None
    try:
        model_config = ModelConfig.from_json_dict(config, MODEL_CONFIG)
        reference_statistics = ReferenceStatistics.from_json_dict(reference, REFERENCE_FILE)
        parity_reference = ParityReference.from_json_dict(parity, PARITY_FILE)
    except DocumentError as exc:
        raise PackagingError(str(exc)) from None
    return VerifiedPackage(
        directory=directory,
        manifest=manifest,
        spec_text=verified_bytes(directory, manifest, SPEC_FILE).decode("utf-8"),
        onnx=verified_bytes(directory, manifest, manifest.serving_file or ONNX_FILE),
        model_config=model_config,
        reference=reference_statistics,
        parity=parity_reference,
    )
