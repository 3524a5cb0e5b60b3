"""What a registered version was built from: its run, logged config, data hash and metrics.

Read by packaging (the champion's summary and data provenance) and by heartml.reproduce. Every
artifact is read by its document class, so a malformed one is a DocumentError naming the run,
the artifact and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from heartml.catalog import PROVENANCE_FILE, RESULTS_FILE
from heartml.documents import DataProvenance, Document, EvaluationResults, ModelSummary
from heartml.documents.data import LoggedData
from heartml.errors import TrackingError
from heartml.tracking.registry import Registry
from heartml.tracking.runs import PROVENANCE_ARTIFACT, SUMMARY_ARTIFACT
from heartml.tracking.versions import VersionTag

DEFAULT_THRESHOLD = 0.5  # a run logged without a threshold tag used the seed's 0.5
D = TypeVar("D", bound=Document)


@dataclass(frozen=True)
class VersionLineage:
    model_name: str
    version: str
    run_id: str  # the model's own (nested) run
    parent_run_id: str | None  # the pipeline run that logged evaluation_results.json
    tags: dict[str, str]  # the model run's tags: data_sha256, config_hash, seed, version.*, ...
    summary: ModelSummary  # the model run's evaluation/summary.json (every logged metric)
    provenance: DataProvenance | None  # the model run's data/provenance.json (None: not logged)
    results: EvaluationResults | None  # the parent's evaluation_results.json (the full config)
    results_path: str | None  # where it was found among the parent's artifacts


@dataclass(frozen=True)
class RunEvaluation:
    """The evaluation summary a model run logged, with the decision threshold it was made at."""

    summary: ModelSummary
    threshold: float


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


def _document(data: object, run_id: str, artifact_path: str, kind: type[D]) -> D:
    # Validated outside registry.errors(): a malformed artifact is a DocumentError of its own,
    # not a tracking-server failure.
    return kind.from_json_dict(data, f"run {run_id}, artifact {artifact_path}")


def _logged_provenance(registry: Registry, run_id: str) -> object | None:
    """The raw data/provenance.json of a run, None when it was not logged."""
    if find_artifact(registry, run_id, PROVENANCE_FILE) != PROVENANCE_ARTIFACT:
        return None
    return registry.run_json(run_id, PROVENANCE_ARTIFACT)


def run_evaluation(registry: Registry, run_id: str) -> RunEvaluation:
    """The evaluation summary a model run logged, with its decision threshold."""
    with registry.errors(f"reading run {run_id}"):
        summary = registry.run_json(run_id, SUMMARY_ARTIFACT)
        tags = registry.run_tags(run_id)
    return RunEvaluation(
        _document(summary, run_id, SUMMARY_ARTIFACT, ModelSummary),
        float(tags.get(VersionTag.THRESHOLD, DEFAULT_THRESHOLD)),
    )


def run_data_info(registry: Registry, run_id: str) -> LoggedData:
    """The data provenance a model run logged (from its tags if the artifact is absent)."""
    with registry.errors(f"reading run {run_id}"):
        tags = registry.run_tags(run_id)
        provenance = _logged_provenance(registry, run_id)
    if provenance is not None:
        return LoggedData.from_provenance(
            _document(provenance, run_id, PROVENANCE_ARTIFACT, DataProvenance)
        )
    return LoggedData(tags.get(VersionTag.DATA_SHA256), tags.get("data_source"), None)


def version_lineage(registry: Registry, model_name: str, version: str) -> VersionLineage:
    """The run behind a registered version, with its logged config, data hash and metrics."""
    found = registry.find_version(model_name, version)
    if not found.run_id:
        raise TrackingError(f"{model_name} version {version} has no run to rebuild it from")
    run_id = found.run_id
    with registry.errors(f"reading {model_name} version {version}"):
        tags = registry.run_tags(run_id)
        summary = registry.run_json(run_id, SUMMARY_ARTIFACT)
        provenance = _logged_provenance(registry, run_id)
        parent = tags.get("mlflow.parentRunId")
        results_path = results = None
        if parent:
            results_path = find_artifact(registry, parent, RESULTS_FILE)
            if results_path:
                results = registry.run_json(parent, results_path)
    return VersionLineage(
        model_name=model_name,
        version=str(version),
        run_id=run_id,
        parent_run_id=parent,
        tags=tags,
        summary=_document(summary, run_id, SUMMARY_ARTIFACT, ModelSummary),
        provenance=None
        if provenance is None
        else _document(provenance, run_id, PROVENANCE_ARTIFACT, DataProvenance),
        results=None
        if results is None or parent is None or results_path is None
        else _document(results, parent, results_path, EvaluationResults),
        results_path=results_path,
    )
