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
    from heartml.data.eda import write_eda_report
    from heartml.data.prepare import prepare, write_processed
    from heartml.data.schema import parse_uci, validate

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
    from heartml.report import write_evaluation_report
    from heartml.train import train_all

    train, test = read_split(settings.processed_dir)
    data_sha256 = processed_data_sha256(settings)
    result = train_all(train, test, config, data_sha256, algorithms, progress)
    results = save_training(result, settings.models_dir, settings.resolved_root)
    report = write_evaluation_report(results, settings.reports_dir / "evaluation")
    return TrainStageResult(results, settings.models_dir, report)
