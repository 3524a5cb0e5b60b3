"""Helpers for the batch-scoring tests: a package writer and the sklearn oracle."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from sklearn.pipeline import Pipeline

from heartml.package.manifest import MODEL_CONFIG, ONNX_FILE, REFERENCE_FILE, SPEC_FILE
from heartml.provenance import write_json
from heartml.spec import DatasetSpec

REPO_ROOT = Path(__file__).resolve().parents[3]
SPEC_PATH = REPO_ROOT / "configs" / "datasets" / "uci_heart.yaml"
RAW_FILE = REPO_ROOT / "data" / "raw" / "processed.cleveland.data"
THRESHOLD = 0.4  # not 0.5: the prediction must follow the package's threshold
MODEL_NAME = "heart_disease_logistic_regression"
VERSION = "7"


def parity_document(pipeline: Pipeline, rows: pd.DataFrame, columns: tuple[str, ...]) -> dict:
    """The package's parity reference: these rows with the sklearn pipeline's probabilities."""
    from heartml.parity import reference_document

    raw = rows.loc[:, list(columns)]
    matrix = raw.to_numpy(dtype=np.float64)
    return reference_document(columns, matrix, pipeline.predict_proba(raw)[:, 1], "test")


def write_package(
    directory: Path, onnx: bytes, spec_text: str, parity: dict, threshold: float = THRESHOLD
) -> Path:
    from heartml.package.manifest import PARITY_FILE, write_manifest

    directory.mkdir(parents=True)
    write_json(directory / PARITY_FILE, parity)
    (directory / ONNX_FILE).write_bytes(onnx)
    (directory / SPEC_FILE).write_text(spec_text, encoding="utf-8")
    config = {"model": {"name": MODEL_NAME, "version": VERSION, "file": ONNX_FILE}}
    (directory / MODEL_CONFIG).write_text(yaml.safe_dump({**config, "threshold": threshold}))
    write_json(directory / REFERENCE_FILE, {"rows": 303, "features": {}})
    write_manifest(
        directory,
        {
            "model_name": MODEL_NAME,
            "algorithm": "logistic_regression",
            "version": VERSION,
            "threshold": threshold,
            "serving_file": ONNX_FILE,
        },
    )
    stamp = time.time()
    os.utime(directory / "MANIFEST.json", (stamp, stamp))
    return directory


def oracle(pipeline: Pipeline, spec: DatasetSpec, records: list[dict[str, Any]]) -> np.ndarray:
    """sklearn's probability for records written as numbers, None or NaN for unknown (the
    caller turns a 0 cholesterol into NaN: the pipeline itself only knows NaN)."""
    frame = pd.DataFrame(records).reindex(columns=list(spec.raw_names)).astype("float64")
    return np.asarray(pipeline.predict_proba(frame)[:, 1])
