"""The pipeline's stages with their file I/O: what the CLI and the seed scripts run.

Each stage reads its inputs from the project folders, calls the pure core, and writes outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heartml.config import PipelineConfig
from heartml.documents import DataProvenance, EvaluationResults, QualityReport
from heartml.errors import ArtifactError, DataError, DocumentError, PackagingError
from heartml.settings import Settings

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from heartml.tracking.promotion import FoldEvidence, PromotionDecision
    from heartml.tracking.registry import Registry
    from heartml.tracking.versions import ChampionInfo, RegisteredVersion

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DataStageResult:
    processed_dir: Path
    eda_report: Path
    quality_report: QualityReport
    data_provenance: DataProvenance


def acquire_raw(settings: Settings) -> Any:
    """The raw data as the spec's source says (download, shipped copy, or scikit-learn's own)."""
    from heartml.data.acquire import acquire, generated, sklearn_csv

    catalog = settings.catalog
    spec, source = catalog.spec, catalog.spec.source
    if source.format == "sklearn":
        assert source.loader is not None
        content = sklearn_csv(
            source.loader,
            {name: column.source_name or name for name, column in spec.columns.items()},
            (spec.target.column, spec.target.source_name or spec.target.column),
        )
        what = f"scikit-learn's {source.loader} data"
        return generated(content, catalog.raw_path, settings.source_sha256, what)
    return acquire(
        None if settings.offline else settings.source_url,
        catalog.raw_path,
        settings.source_sha256,
        settings.download_timeout_s,
    )


def run_data(
    settings: Settings, config: PipelineConfig, with_feedback: bool = False
) -> DataStageResult:
    from heartml.data.parse import parse_records
    from heartml.data.prepare import prepare, write_processed
    from heartml.data.schema import validate
    from heartml.reports.eda import write_eda_report

    catalog = settings.catalog
    raw = acquire_raw(settings)
    parsed = parse_records(raw.content, catalog.spec)
    added = None
    if with_feedback:
        from heartml.data.feedback import feedback_rows
        from heartml.data.feedback import with_feedback as combined
        from heartml.store.engine import create_engine, shown

        engine = create_engine(settings.resolved_store_url)
        feedback = feedback_rows(engine, catalog.spec)
        parsed, added = combined(parsed, feedback)
    validation = validate(parsed, catalog.spec)
    prepared = prepare(
        parsed.frame, validation, raw, catalog.spec, config.split.test_size, config.seed
    )
    if added is not None:
        prepared = _with_feedback_provenance(
            prepared, validation, added, feedback, shown(engine.url)
        )
    write_processed(prepared, catalog)
    report = write_eda_report(parsed.frame, prepared.quality, catalog.eda_report_dir, catalog.spec)
    return DataStageResult(catalog.processed_dir, report, prepared.quality, prepared.provenance)


def _with_feedback_provenance(
    prepared: Any, validation: Any, added: Any, feedback: Any, store: str
) -> Any:
    """The prepared data with its provenance saying how many rows came from where."""
    import dataclasses

    from heartml.documents.data import FeedbackProvenance
    from heartml.store.records import utc

    kept = int(validation.valid.index.isin(added).sum())
    record = FeedbackProvenance(
        store=store,
        labelled_predictions=len(added),
        rows_from_source=len(validation.valid) - kept,
        rows_from_feedback=kept,
        rows_rejected=len(added) - kept,
        first_prediction_at=None if feedback.first is None else utc(feedback.first).isoformat(),
        last_prediction_at=None if feedback.last is None else utc(feedback.last).isoformat(),
        sha256=feedback.sha256(prepared.provenance.sha256),
    )
    provenance = prepared.provenance.model_copy(update={"feedback": record})
    return dataclasses.replace(prepared, provenance=provenance)


@dataclass(frozen=True)
class TrainStageResult:
    evaluation: EvaluationResults
    models_dir: Path
    evaluation_report: Path


@dataclass(frozen=True)
class ReusableTraining:
    """The saved Task 2 outputs, verified: the results document and each model's pipeline."""

    results: EvaluationResults
    pipelines: dict[str, Pipeline]


def read_provenance(settings: Settings) -> DataProvenance:
    path = settings.catalog.provenance_file
    if not path.is_file():
        raise DataError(
            f"{path} not found",
            hint="run `heartml data` (python src/data_acquisition_eda.py) first",
        )
    return DataProvenance.read(path)


def processed_data_sha256(settings: Settings) -> str:
    return read_provenance(settings).data_sha256


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

    catalog = settings.catalog
    train, test = read_split(catalog)
    data_sha256 = processed_data_sha256(settings)
    result = train_all(train, test, catalog.spec, config, data_sha256, algorithms, progress)
    results = save_training(result, catalog, settings.resolved_root)
    report = write_evaluation_report(results, catalog.evaluation_report_dir, catalog.spec)
    return TrainStageResult(results, catalog.models_dir, report)


def _reusable_training(settings: Settings, config: PipelineConfig) -> ReusableTraining | None:
    """The saved Task 2 results, if they were made from this data, this config and this
    dataset spec (a changed feature must never meet a stale model.joblib). A results file
    this heartml cannot read is not reusable either: training runs again and rewrites it."""
    from heartml.artifacts import load_verified_pipeline

    catalog = settings.catalog
    if not catalog.results_file.is_file():
        return None
    try:
        results = EvaluationResults.read(catalog.results_file)
    except DocumentError:
        return None
    if (
        results.data_sha256 != processed_data_sha256(settings)
        or results.config_hash != config.config_hash()
        or results.spec_hash != catalog.spec.spec_hash()
        or set(results.models) != set(config.models)
    ):
        return None
    try:
        pipelines = {a: load_verified_pipeline(catalog.model_dir(a)) for a in results.models}
    except ArtifactError:
        return None
    return ReusableTraining(results, pipelines)


@dataclass(frozen=True)
class TrackStageResult:
    parent_run_id: str
    versions: list[RegisteredVersion]
    decision: PromotionDecision
    champion: ChampionInfo | None
    reused_training: bool


def run_track(
    settings: Settings,
    config: PipelineConfig,
    force_champion: bool = False,
    progress: Progress | None = None,
) -> TrackStageResult:
    """Task 3: register one new version of each model and let the gate decide the champion."""
    from heartml.data.prepare import read_split
    from heartml.recent_window import gate_window
    from heartml.tracking.promotion import decide
    from heartml.tracking.registry import Registry
    from heartml.tracking.runs import log_pipeline_execution

    report = progress or (lambda _m: None)
    # Fail fast on an unreachable server, before any training or writing.
    registry = Registry.connect(settings)
    catalog = settings.catalog
    if not catalog.provenance_file.is_file():
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
    train, _ = read_split(catalog)
    artifacts = {
        "evaluation": catalog.results_file,
        "evaluation_report": catalog.evaluation_report_dir,
        "data_quality": catalog.quality_file,
        "eda_report": catalog.eda_report_dir,
    }
    run_id, versions = log_pipeline_execution(
        registry,
        reused.results,
        reused.pipelines,
        train.head(5),
        artifacts,
        read_provenance(settings),
        catalog.spec.to_yaml(),
        report,
    )
    best = next(v for v in versions if v.algorithm == reused.results.best_algorithm)
    current = registry.find_champion()
    tags = registry.version_tags(best)
    retrained = window = None
    if current is not None and not force_champion:
        retrained = _retrained_champion(registry, current, tags, train, settings, config, report)
        window = gate_window(
            registry,
            current,
            reused.pipelines[best.algorithm],
            retrained is not None,
            train,
            settings,
            config,
            report,
        )
    decision = decide(
        best,
        tags,
        current,
        config.promotion,
        force=force_champion,
        retrained=retrained,
        window=window,
    )
    if decision.promote:
        registry.apply_promotion(decision)
    registry.record_decision(run_id, decision)
    champion = registry.find_champion()
    return TrackStageResult(run_id, versions, decision, champion, reused_training)


def _retrained_champion(
    registry: Registry,
    current: ChampionInfo,
    candidate_tags: dict[str, str],
    train: pd.DataFrame,
    settings: Settings,
    config: PipelineConfig,
    report: Progress,
) -> FoldEvidence | None:
    """When the champion was trained on other data: its configuration (the parameters its run
    logged) measured on the candidate's data and folds, for the gate (heartml.retrain)."""
    from heartml.retrain import RetrainError, configuration_folds
    from heartml.tracking.promotion import FoldEvidence
    from heartml.tracking.versions import fold_tag, parse_folds

    ours = FoldEvidence.from_tags(candidate_tags)
    if current.data_sha256 == ours.data_sha256:
        return None
    report(
        f"the champion ({current.model_name} v{current.version}) was trained on other data: "
        "retraining its configuration on the new data's folds"
    )
    try:
        params = registry.run_params(current.run_id)
        folds = configuration_folds(current.algorithm, params, train, settings.catalog.spec, config)
    except RetrainError as exc:
        report(f"the champion's configuration cannot be retrained: {exc}")
        return None
    return FoldEvidence(
        data_sha256=ours.data_sha256,
        cv_scheme=ours.cv_scheme,
        roc_auc=parse_folds(fold_tag(folds["roc_auc"])),  # at the tags' resolution
        brier=parse_folds(fold_tag(folds["brier"])),
    )


def run_package(
    settings: Settings,
    progress: Progress | None = None,
    *,
    model_name: str | None = None,
    version: str | None = None,
) -> Any:
    """Task 4: package the champion (or one registered version), then verify the result as a
    user would."""
    from heartml.package.build import build_package
    from heartml.package.verify import verify_package
    from heartml.tracking.package_artifacts import upload_package
    from heartml.tracking.registry import Registry

    built = build_package(settings, progress, model_name=model_name, version=version)
    verification = verify_package(built.directory)
    # Only a verified package goes to the registry, to the run of the version it packages.
    if progress is not None:
        progress("uploading the package to the registry")
    run_id = built.manifest.run_id
    if run_id is None:  # build_package always names it; a package without it has no home
        raise PackagingError(f"{built.directory.name}: its MANIFEST names no run")
    upload_package(Registry.connect(settings), run_id, built.directory)
    return built, verification
