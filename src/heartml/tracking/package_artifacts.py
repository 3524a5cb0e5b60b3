"""A registered version's package among its run's artifacts (`package/`).

`heartml package` uploads the package it built and verified to the run of the version it
packaged (it never creates a version), so every packaged version carries its ONNX graph,
MANIFEST, dataset spec, reference statistics and model card in the registry itself; registry-mode
serving downloads it from there (heartml.serving.registry_client, over REST) and `heartml package
verify models:/NAME/VERSION` downloads and verifies it here, with MLflow's client.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from heartml.errors import PackagingError, TrackingError
from heartml.package.manifest import MANIFEST, PACKAGE_ARTIFACT_DIR, read_manifest
from heartml.tracking.registry import Registry
from heartml.tracking.versions import ChampionInfo

_MODEL_URI = re.compile(r"models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))")


def upload_package(registry: Registry, run_id: str, directory: Path) -> int:
    """Upload every file the MANIFEST lists, then the MANIFEST itself: whoever reads the new
    MANIFEST finds every file it lists already there. Returns the number of files."""
    files = sorted(read_manifest(directory).files)
    with registry.errors(f"uploading the package {directory.name} to run {run_id}"):
        for relative in [*files, MANIFEST]:
            folder = posixpath.dirname(relative)
            target = (
                posixpath.join(PACKAGE_ARTIFACT_DIR, folder) if folder else PACKAGE_ARTIFACT_DIR
            )
            registry.client.log_artifact(run_id, str(directory / relative), target)
    return len(files) + 1


def resolve_model_uri(registry: Registry, uri: str) -> ChampionInfo:
    """`models:/NAME/VERSION` or `models:/NAME@ALIAS` -> the registered version."""
    match = _MODEL_URI.fullmatch(uri.strip())
    if match is None:
        raise TrackingError(
            f"{uri!r} is not a registry URI: write models:/NAME/VERSION or models:/NAME@ALIAS"
        )
    name, version, alias = match["name"], match["version"], match["alias"]
    if alias is not None:
        with registry.errors(f"looking up {uri}"):
            try:
                found = registry.client.get_model_version_by_alias(name, alias)
            except Exception as exc:
                from heartml.tracking.connection import RESOURCE_DOES_NOT_EXIST, error_code

                if error_code(exc) in (RESOURCE_DOES_NOT_EXIST, "INVALID_PARAMETER_VALUE"):
                    raise TrackingError(
                        f"no version of {name} holds the alias {alias!r} in the registry at "
                        f"{registry.uri}",
                        hint="`heartml registry` lists the registered versions and aliases",
                    ) from None
                raise
        version = str(found.version)
    return registry.find_version(name, version)


def download_package(registry: Registry, version: ChampionInfo, destination: Path) -> Path:
    """The version's uploaded package, downloaded into `destination`; its MANIFEST must name
    the same model and version."""
    label = f"{version.model_name} version {version.version}"
    with registry.errors(f"downloading the package of {label}"):
        listed = {entry.path for entry in registry.client.list_artifacts(version.run_id)}
        if PACKAGE_ARTIFACT_DIR not in listed:
            raise PackagingError(
                f"{label} has no package in the registry (no {PACKAGE_ARTIFACT_DIR}/ among the "
                f"artifacts of run {version.run_id})",
                hint=f"heartml package --model {version.model_name} --version {version.version}",
            )
        local = registry.client.download_artifacts(
            version.run_id, PACKAGE_ARTIFACT_DIR, str(destination)
        )
    directory = Path(local)
    manifest = read_manifest(directory)
    named = (manifest.model_name, manifest.version)
    if not manifest.names(version.model_name, version.version):
        raise PackagingError(
            f"the package uploaded for {label} names {named[0]} version {named[1]} in its "
            f"{MANIFEST}"
        )
    return directory
