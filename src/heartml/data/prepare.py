"""Task 1 core: quality report and stratified split (pure), and the atomic write of data/processed."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from sklearn.model_selection import train_test_split

from heartml.catalog import Catalog
from heartml.data.acquire import RawData
from heartml.data.schema import ValidationResult
from heartml.documents.data import (
    ClassBalance,
    DataProvenance,
    LabelCounts,
    Problem,
    QualityReport,
    SplitSettings,
)
from heartml.errors import DataError
from heartml.provenance import staged_directory
from heartml.spec import ROW_ID, TARGET, DatasetSpec


@dataclass(frozen=True)
class PreparedData:
    clean: pd.DataFrame
    train: pd.DataFrame
    test: pd.DataFrame
    rejected: pd.DataFrame
    quality: QualityReport
    provenance: DataProvenance


def _number(value: float) -> float | None:
    number = float(value)
    return None if math.isnan(number) else number


def quality_report(
    parsed: pd.DataFrame, validation: ValidationResult, raw: RawData, spec: DatasetSpec
) -> QualityReport:
    """Plain JSON types only: a report a script (or a person) can read without pandas."""
    features = list(spec.raw_names)
    label = spec.target.column
    counts = parsed[TARGET].value_counts().sort_index()
    out_of_range: dict[str, int] = {}
    for problem in validation.problems:
        column = str(problem["column"])
        out_of_range[column] = out_of_range.get(column, 0) + 1
    recorded_as_missing = {
        name: int(parsed[name].isna().sum())
        for name, column in spec.columns.items()
        if column.missing_values
    }
    statistics = {}
    for name in (*features, label):
        described = parsed[name].describe()
        statistics[name] = {key: _number(described[key]) for key in described.index}
    labels = parsed[label].dropna().astype("int64").value_counts().sort_index()
    return QualityReport(
        dataset=spec.name,
        source=raw.provenance(),
        rows=len(parsed),
        columns=[str(name) for name in parsed.columns],
        dtypes={str(name): str(dtype) for name, dtype in parsed.dtypes.items()},
        missing_per_column={name: int(parsed[name].isna().sum()) for name in (*features, label)},
        rows_with_missing=int(parsed[features].isna().any(axis=1).sum()),
        zero_recorded_as_missing=recorded_as_missing,
        duplicates=int(parsed.duplicated().sum()),
        out_of_range_per_column=out_of_range,
        problems=[Problem.model_validate(problem) for problem in validation.problems],
        rows_rejected=len(validation.rejected),
        rows_kept=len(validation.valid),
        class_balance=ClassBalance(
            no_disease=int(counts.get(0, 0)),
            disease=int(counts.get(1, 0)),
            prevalence=float(parsed[TARGET].mean()),
            positive_label=spec.target.positive_label,
            negative_label=spec.target.negative_label,
        ),
        label_distribution=LabelCounts(
            column=label, counts={str(k): int(v) for k, v in labels.items()}
        ),
        summary_statistics=statistics,
    )


def stratified_split(
    frame: pd.DataFrame, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    train, test = train_test_split(
        frame, test_size=test_size, stratify=frame[TARGET], random_state=seed
    )
    return train.sort_values(ROW_ID), test.sort_values(ROW_ID)


def prepare(
    parsed: pd.DataFrame,
    validation: ValidationResult,
    raw: RawData,
    spec: DatasetSpec,
    test_size: float,
    seed: int,
) -> PreparedData:
    clean = validation.valid.copy()
    if clean[TARGET].nunique() < 2 or clean[TARGET].value_counts().min() < 2:
        raise DataError(
            f"{len(clean)} valid rows, {int(clean[TARGET].sum())} positive: too few of each class "
            "to split and train"
        )
    clean.insert(0, ROW_ID, clean.index + 1)
    clean = clean.reset_index(drop=True)
    train, test = stratified_split(clean, test_size, seed)
    provenance = DataProvenance(
        **raw.provenance().model_dump(),
        rows_clean=len(clean),
        rows_train=len(train),
        rows_test=len(test),
        split=SplitSettings(test_size=test_size, seed=seed, stratified_on=TARGET),
        dataset=spec.name,
        spec_sha256=spec.spec_hash(),
    )
    quality = quality_report(parsed, validation, raw, spec)
    return PreparedData(clean, train, test, validation.rejected, quality, provenance)


def write_processed(data: PreparedData, catalog: Catalog) -> None:
    """Write every output to a staging folder, then swap it in: a failure leaves the old one."""
    final = catalog.processed_dir
    with staged_directory(final) as staging:
        for frame, path in (
            (data.clean, catalog.clean_file),
            (data.train, catalog.train_file),
            (data.test, catalog.test_file),
        ):
            frame.to_parquet(staging / path.name, index=False)
            frame.to_csv(staging / path.with_suffix(".csv").name, index=False)
        data.rejected.to_csv(staging / catalog.rejected_file.name, index=False)
        data.quality.write(staging / catalog.quality_file.name)
        data.provenance.write(staging / catalog.provenance_file.name)


def read_split(catalog: Catalog) -> tuple[pd.DataFrame, pd.DataFrame]:
    missing = [p.name for p in (catalog.train_file, catalog.test_file) if not p.is_file()]
    if missing:
        raise DataError(
            f"{catalog.processed_dir} has no {', '.join(missing)}",
            hint="run `heartml data` (python src/data_acquisition_eda.py) first",
        )
    return pd.read_parquet(catalog.train_file), pd.read_parquet(catalog.test_file)
