"""One side of the promotion race (tests/integration/test_promotion_race.py), run in its own
process: register a new version of ONE model and promote it, round after round, in step with
the other side through a shared barrier.

The pipeline is the session's pre-trained one (Task 2 outputs of the project folder), logged
and registered through heartml.tracking exactly as `heartml track --force-champion` does it
(stages.run_track), minus the report uploads, so that 20 rounds take seconds, not minutes.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any


def promote_rounds(
    project_root: str,
    tracking_uri: str,
    algorithm: str,
    rounds: int,
    barrier: Any,
    outcomes: Any,
    timeout_s: float,
) -> None:
    """Per round: barrier, register, barrier, look up the champion + decide + move the alias +
    record, report, barrier (the parent checks the registry there)."""
    try:
        from heartml.artifacts import load_verified_pipeline
        from heartml.config import load_config
        from heartml.data.prepare import read_split
        from heartml.documents import DataProvenance, EvaluationResults
        from heartml.settings import Settings
        from heartml.tracking.promotion import decide
        from heartml.tracking.registry import Registry
        from heartml.tracking.runs import log_pipeline_execution

        settings = Settings(root=Path(project_root), mlflow_tracking_uri=tracking_uri, offline=True)
        registry = Registry.connect(settings)
        policy = load_config(settings.pipeline_config_path).promotion
        everything = EvaluationResults.read(settings.catalog.results_file)
        results = everything.model_copy(  # this side's model alone, its best by construction
            update={
                "models": {algorithm: everything.models[algorithm]},
                "best_algorithm": algorithm,
            }
        )
        pipelines = {algorithm: load_verified_pipeline(settings.models_dir / algorithm)}
        train, _ = read_split(settings.catalog)
        provenance = DataProvenance.read(settings.catalog.provenance_file)
        spec_text = settings.catalog.spec.to_yaml()
        for round_number in range(rounds):
            barrier.wait(timeout_s)
            run_id, (version,) = log_pipeline_execution(
                registry, results, pipelines, train.head(5), {}, provenance, spec_text
            )
            barrier.wait(timeout_s)  # both registered: now both promote at once
            current = registry.find_champion()
            tags = registry.version_tags(version)
            decision = decide(version, tags, current, policy, force=True)
            registry.apply_promotion(decision)
            registry.record_decision(run_id, decision)
            outcomes.put(
                {
                    "round": round_number,
                    "algorithm": algorithm,
                    "model_name": version.model_name,
                    "version": version.version,
                    "run_id": version.run_id,
                    "previous": None if current is None else [current.model_name, current.version],
                }
            )
            barrier.wait(timeout_s)  # the parent checks the registry
            barrier.wait(timeout_s)  # ... and lets the next round start
    except BaseException:
        outcomes.put({"error": f"{algorithm}: {traceback.format_exc()}"})
        barrier.abort()
        raise
