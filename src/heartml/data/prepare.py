"""Task 1 core: quality report and stratified split (pure), and the atomic write of data/processed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from heartml.coding import FILE_COLUMNS, RAW_COLUMNS, SOURCE_COLUMN, TARGET
from heartml.data.acquire import RawData
from heartml.data.schema import ValidationResult
from heartml.provenance import staged_directory, write_json

ROW_ID = "row_id"  # 1-based line number in the raw file, kept through every output


@dataclass(frozen=True)
class PreparedData:
    clean: pd.DataFrame
    train: pd.DataFrame
    test: pd.DataFrame
    rejected: pd.DataFrame
    quality: dict[str, Any]
    provenance: dict[str, Any]


def _number(value: Any) -> float | None:
    number = float(value)
    return None if math.isnan(number) else number


def quality_report(
    parsed: pd.DataFrame, validation: ValidationResult, raw: RawData
) -> dict[str, Any]:
    """Plain JSON types only: a report a script (or a person) can read without pandas."""
    features = [column.name for column in RAW_COLUMNS]
    counts = parsed[TARGET].value_counts().sort_index()
    out_of_range: dict[str, int] = {}
    for problem in validation.problems:
        column = str(problem["column"])
        out_of_range[column] = out_of_range.get(column, 0) + 1
    zero_as_missing = {
        column.name: int((parsed[column.name].isna()).sum())
        for column in RAW_COLUMNS
        if column.missing_zero
    }
    statistics = {}
    for name in (*features, SOURCE_COLUMN):
        described = parsed[name].describe()
        statistics[name] = {key: _number(described[key]) for key in described.index}
    return {
        "source": raw.provenance(),
        "rows": len(parsed),
        "columns": list(parsed.columns),
        "dtypes": {name: str(dtype) for name, dtype in parsed.dtypes.items()},
        "missing_per_column": {name: int(parsed[name].isna().sum()) for name in FILE_COLUMNS},
        "rows_with_missing": int(parsed[features].isna().any(axis=1).sum()),
        "zero_recorded_as_missing": zero_as_missing,
        "duplicates": int(parsed.duplicated().sum()),
        "out_of_range_per_column": out_of_range,
        "problems": validation.problems,
        "rows_rejected": len(validation.rejected),
        "rows_kept": len(validation.valid),
        "class_balance": {
            "no_disease": int(counts.get(0, 0)),
            "disease": int(counts.get(1, 0)),
            "prevalence": float(parsed[TARGET].mean()),
        },
        "num_distribution": {
            str(k): int(v) for k, v in parsed[SOURCE_COLUMN].value_counts().sort_index().items()
        },
        "summary_statistics": statistics,
    }


def stratified_split(
    frame: pd.DataFrame, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    train, test = train_test_split(
        frame, test_size=test_size, stratify=frame[TARGET], random_state=seed
    )
    return train.sort_values(ROW_ID), test.sort_values(ROW_ID)


def prepare(
    parsed: pd.DataFrame, validation: ValidationResult, raw: RawData, test_size: float, seed: int
) -> PreparedData:
    clean = validation.valid.copy()
    clean.insert(0, ROW_ID, clean.index + 1)
    clean = clean.reset_index(drop=True)
    train, test = stratified_split(clean, test_size, seed)
    provenance = {
        **raw.provenance(),
        "rows_clean": len(clean),
        "rows_train": len(train),
        "rows_test": len(test),
        "split": {"test_size": test_size, "seed": seed, "stratified_on": TARGET},
    }
    return PreparedData(
        clean, train, test, validation.rejected, quality_report(parsed, validation, raw), provenance
    )


def write_processed(data: PreparedData, processed_dir: Path) -> None:
    """Write every output to a staging folder, then swap it in: a failure leaves the old one."""
    with staged_directory(processed_dir) as staging:
        for name, frame in (("heart", data.clean), ("train", data.train), ("test", data.test)):
            frame.to_parquet(staging / f"{name}.parquet", index=False)
            frame.to_csv(staging / f"{name}.csv", index=False)
        data.rejected.to_csv(staging / "rejected_rows.csv", index=False)
        write_json(staging / "data_quality_report.json", data.quality)
        write_json(staging / "provenance.json", data.provenance)


def read_split(processed_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    missing = [n for n in ("train.parquet", "test.parquet") if not (processed_dir / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{processed_dir} has no {', '.join(missing)}: run `heartml data` "
            "(python src/data_acquisition_eda.py) first"
        )
    return (
        pd.read_parquet(processed_dir / "train.parquet"),
        pd.read_parquet(processed_dir / "test.parquet"),
    )
