"""The pipeline's stages with their file I/O: what the CLI and the seed scripts run.

Each stage reads its inputs from the project folders, calls the pure core, and writes outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heartml.config import PipelineConfig
from heartml.settings import Settings

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DataStageResult:
    processed_dir: Path
    eda_report: Path
    quality: dict[str, Any]
    provenance: dict[str, Any]


def run_data(settings: Settings, config: PipelineConfig) -> DataStageResult:
    from heartml.data.acquire import acquire
    from heartml.data.prepare import prepare, write_processed
    from heartml.data.schema import parse_uci, validate
    from heartml.reports.eda import write_eda_report

    raw = acquire(
        None if settings.offline else settings.data_url,
        settings.raw_data_path,
        settings.data_sha256,
        settings.download_timeout_s,
    )
    parsed = parse_uci(raw.content)
    validation = validate(parsed)
    prepared = prepare(parsed, validation, raw, config.split.test_size, config.seed)
    write_processed(prepared, settings.processed_dir)
    report = write_eda_report(parsed, prepared.quality, settings.reports_dir / "eda")
    return DataStageResult(settings.processed_dir, report, prepared.quality, prepared.provenance)


@dataclass(frozen=True)
class TrainStageResult:
    results: dict[str, Any]
    models_dir: Path
    evaluation_report: Path


def processed_data_sha256(settings: Settings) -> str:
    from heartml.provenance import read_json

    path = settings.processed_dir / "provenance.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: run `heartml data` (python src/data_acquisition_eda.py) first"
        )
    return str(read_json(path)["sha256"])


def run_train(
    settings: Settings,
    config: PipelineConfig,
    algorithms: tuple[str, ...] | None = None,
    progress: Progress | None = None,
) -> TrainStageResult:
    from heartml.artifacts import save_training
    from heartml.data.prepare import read_split
    from heartml.reports.evaluation import write_evaluation_report
    from heartml.train import train_all

    train, test = read_split(settings.processed_dir)
    data_sha256 = processed_data_sha256(settings)
    result = train_all(train, test, config, data_sha256, algorithms, progress)
    results = save_training(result, settings.models_dir, settings.resolved_root)
    report = write_evaluation_report(results, settings.reports_dir / "evaluation")
    return TrainStageResult(results, settings.models_dir, report)


def _reusable_training(settings: Settings, config: PipelineConfig) -> dict[str, Any] | None:
    """The saved Task 2 results, if they were made from this data and this config."""
    from heartml.artifacts import RESULTS_FILE, ArtifactError, load_verified_pipeline
    from heartml.provenance import read_json

    path = settings.models_dir / RESULTS_FILE
    if not path.is_file():
        return None
    results: dict[str, Any] = read_json(path)
    if (
        results.get("data_sha256") != processed_data_sha256(settings)
        or results.get("config_hash") != config.config_hash()
        or set(results.get("models", {})) != set(config.models)
    ):
        return None
    try:
        pipelines = {a: load_verified_pipeline(settings.models_dir / a) for a in results["models"]}
    except ArtifactError:
        return None
    results["pipelines"] = pipelines
    return results


@dataclass(frozen=True)
class TrackStageResult:
    parent_run_id: str
    versions: list[Any]
    decision: Any
    champion: Any
    reused_training: bool


def run_track(
    settings: Settings,
    config: PipelineConfig,
    force_champion: bool = False,
    progress: Progress | None = None,
) -> TrackStageResult:
    """Task 3: register one new version of each model and let the gate decide the champion."""
    from heartml.data.prepare import read_split
    from heartml.provenance import read_json
    from heartml.tracking.promotion import decide
    from heartml.tracking.registry import Registry
    from heartml.tracking.runs import log_pipeline_execution

    report = progress or (lambda _m: None)
    # Fail fast on an unreachable server, before any training or writing.
    registry = Registry.connect(settings)
    if not (settings.processed_dir / "provenance.json").is_file():
        report("preparing data")
        run_data(settings, config)
    reused = _reusable_training(settings, config)
    if reused is None:
        run_train(settings, config, progress=report)
        reused = _reusable_training(settings, config)
        assert reused is not None, "training just ran; its outputs must be reusable"
        reused_training = False
    else:
        reused_training = True
    pipelines = reused.pop("pipelines")
    train, _ = read_split(settings.processed_dir)
    artifacts = {
        "evaluation": settings.models_dir / "evaluation_results.json",
        "evaluation_report": settings.reports_dir / "evaluation",
        "data_quality": settings.processed_dir / "data_quality_report.json",
        "eda_report": settings.reports_dir / "eda",
    }
    provenance = read_json(settings.processed_dir / "provenance.json")
    run_id, versions = log_pipeline_execution(
        registry, reused, pipelines, train.head(5), artifacts, provenance, report
    )
    best = next(v for v in versions if v.algorithm == reused["best_algorithm"])
    current = registry.find_champion()
    tags = registry.version_tags(best)
    decision = decide(best, tags, current, config.promotion, force=force_champion)
    if decision.promote:
        registry.apply_promotion(decision)
    registry.record_decision(run_id, decision)
    champion = registry.find_champion()
    return TrackStageResult(run_id, versions, decision, champion, reused_training)


def run_package(
    settings: Settings,
    progress: Progress | None = None,
    *,
    model_name: str | None = None,
    version: str | None = None,
) -> Any:
    """Task 4: package the champion (or one registered version), then verify the result as a
    user would."""
    from heartml.packaging import build_package, verify_package

    built = build_package(settings, progress, model_name=model_name, version=version)
    verification = verify_package(built.directory)
    return built, verification
