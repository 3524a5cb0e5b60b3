"""What a registered version was built from: its run, logged config, data hash and metrics.

Read by packaging (the champion's summary and data provenance) and by heartml.reproduce.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from heartml.catalog import RESULTS_FILE
from heartml.errors import TrackingError
from heartml.tracking.registry import Registry
from heartml.tracking.runs import PROVENANCE_ARTIFACT, SUMMARY_ARTIFACT
from heartml.tracking.versions import VersionTag


@dataclass(frozen=True)
class VersionLineage:
    model_name: str
    version: str
    run_id: str  # the model's own (nested) run
    parent_run_id: str | None  # the pipeline run that logged evaluation_results.json
    tags: dict[str, str]  # the model run's tags: data_sha256, config_hash, seed, version.*, ...
    summary: dict[str, Any]  # the model run's evaluation/summary.json (every logged metric)
    provenance: dict[str, Any]  # the model run's data/provenance.json ({} when not logged)
    results: dict[str, Any] | None  # the parent's evaluation_results.json (the full config)
    results_path: str | None  # where it was found among the parent's artifacts


def find_artifact(
    registry: Registry, run_id: str, file_name: str, path: str | None = None
) -> str | None:
    """The artifact path of the first file called `file_name` in a run (breadth first)."""
    folders: list[str | None] = [path]
    while folders:
        folder = folders.pop(0)
        for info in registry.client.list_artifacts(run_id, folder):
            if info.is_dir:
                folders.append(info.path)
            elif info.path.rsplit("/", 1)[-1] == file_name:
                return str(info.path)
    return None


def run_summary(registry: Registry, run_id: str) -> dict[str, Any]:
    """The evaluation summary a model run logged, with its decision threshold."""
    with registry.errors(f"reading run {run_id}"):
        summary = registry.run_json(run_id, SUMMARY_ARTIFACT)
        tags = registry.run_tags(run_id)
    summary["threshold"] = float(tags.get(VersionTag.THRESHOLD, 0.5))
    return summary


def run_data_info(registry: Registry, run_id: str) -> dict[str, Any]:
    """The data provenance a model run logged (from its tags if the artifact is absent)."""
    with registry.errors(f"reading run {run_id}"):
        tags = registry.run_tags(run_id)
        info: dict[str, Any] = {}
        if find_artifact(registry, run_id, "provenance.json") == PROVENANCE_ARTIFACT:
            info = registry.run_json(run_id, PROVENANCE_ARTIFACT)
    return {"sha256": tags.get(VersionTag.DATA_SHA256), "source": tags.get("data_source"), **info}


def version_lineage(registry: Registry, model_name: str, version: str) -> VersionLineage:
    """The run behind a registered version, with its logged config, data hash and metrics."""
    found = registry.find_version(model_name, version)
    if not found.run_id:
        raise TrackingError(f"{model_name} version {version} has no run to rebuild it from")
    with registry.errors(f"reading {model_name} version {version}"):
        tags = registry.run_tags(found.run_id)
        summary = registry.run_json(found.run_id, SUMMARY_ARTIFACT)
        provenance: dict[str, Any] = {}
        if find_artifact(registry, found.run_id, "provenance.json") == PROVENANCE_ARTIFACT:
            provenance = registry.run_json(found.run_id, PROVENANCE_ARTIFACT)
        parent = tags.get("mlflow.parentRunId")
        results_path = results = None
        if parent:
            results_path = find_artifact(registry, parent, RESULTS_FILE)
            if results_path:
                results = registry.run_json(parent, results_path)
    return VersionLineage(
        model_name=model_name,
        version=str(version),
        run_id=found.run_id,
        parent_run_id=parent,
        tags=tags,
        summary=summary,
        provenance=provenance,
        results=results,
        results_path=results_path,
    )
