"""Real model packages for the serving tests, built in seconds from a dataset spec.

A package here is what `heartml package` writes for serving: `model.onnx` (the fitted pipeline,
exported by heartml.onnx_export), `dataset_spec.yaml` (the spec it was trained with),
`model_config.yaml`, `reference_statistics.json` and a `MANIFEST.json` with the sha256 of every
file, the last three by heartml.package's own pieces, so a change of the format reaches these
tests. Only the MLflow round trip is left out (the integration tests run the real command). The data are read as Task 1 reads them, and a
test can add a column to a spec and fit on it.

Usable from every test folder (tests/ is on sys.path through tests/conftest.py), and as a
script: `python tests/serving_packages.py OUT_DIR` writes a heart package (benchmarks).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from heartml.data.parse import parse_records
from heartml.features import build_pipeline
from heartml.onnx_export import pipeline_to_onnx
from heartml.package.build import write_parity_reference
from heartml.package.contents import model_config, reference_statistics
from heartml.package.manifest import (
    MANIFEST,
    MODEL_CONFIG,
    ONNX_FILE,
    REFERENCE_FILE,
    SPEC_FILE,
    write_manifest,
)
from heartml.provenance import write_json
from heartml.spec import TARGET, DatasetSpec, load_spec, spec_from_text

REPO_ROOT = Path(__file__).resolve().parents[1]
HEART_SPEC_FILE = REPO_ROOT / "configs" / "datasets" / "uci_heart.yaml"
REFERENCE_BINS = 10


def heart_spec() -> DatasetSpec:
    return load_spec(HEART_SPEC_FILE)


def read_source(spec: DatasetSpec) -> pd.DataFrame:
    """The spec's shipped data file as Task 1 reads it (heartml.data.parse): markers and
    missing_values as NaN, plus the 0/1 target."""
    assert spec.source.shipped_copy
    return parse_records((REPO_ROOT / spec.source.shipped_copy).read_bytes(), spec).frame


def with_extra_column(spec: DatasetSpec, name: str, column: dict[str, Any]) -> DatasetSpec:
    """The spec with one more raw column (added to the source's column list too)."""
    data = yaml.safe_load(spec.to_yaml())
    data["columns"][name] = column
    data["source"]["columns"] = [*data["source"]["columns"], name]
    return spec_from_text(yaml.safe_dump(data, sort_keys=False), f"spec + {name}")


def fit(spec: DatasetSpec, frame: pd.DataFrame, estimator: BaseEstimator) -> Pipeline:
    return build_pipeline(spec, estimator).fit(frame[list(spec.raw_names)], frame[TARGET])


def write_package(
    packages_dir: Path,
    spec: DatasetSpec,
    pipeline: Pipeline,
    frame: pd.DataFrame,
    *,
    algorithm: str = "logistic_regression",
    version: str = "1",
    threshold: float = 0.5,
    onnx_bytes: bytes | None = None,
    spec_text: str | None = None,
    newer_by: float | None = None,
) -> Path:
    """A complete, checksummed package folder `<package_prefix>_<algorithm>_v<version>`."""
    directory = packages_dir / f"{spec.package_prefix}_{algorithm}_v{version}"
    directory.mkdir(parents=True)
    onnx_bytes = onnx_bytes or pipeline_to_onnx(pipeline).SerializeToString()
    (directory / ONNX_FILE).write_bytes(onnx_bytes)
    (directory / SPEC_FILE).write_text(spec_text or spec.to_yaml(), encoding="utf-8")
    champion = {
        "model_name": f"{spec.model_name_prefix}_{algorithm}",
        "algorithm": algorithm,
        "version": version,
        "run_id": f"run-{algorithm}-{version}",
    }
    metrics = {"cv": {"roc_auc": {"mean": 0.9}}, "test": {"roc_auc": 0.88}}
    (directory / MODEL_CONFIG).write_text(
        yaml.safe_dump(model_config(champion, metrics, threshold, spec), sort_keys=False)
    )
    write_json(directory / REFERENCE_FILE, reference_statistics(frame, spec))
    # The pipeline's own probabilities: a graph passed in `onnx_bytes` must score like them.
    write_parity_reference(directory, pipeline, frame, spec)
    write_manifest(
        directory,
        {
            "package": directory.name,
            **champion,
            "model_uri": f"models:/{champion['model_name']}@champion",
            "threshold": threshold,
            "serving_file": ONNX_FILE,
        },
    )
    # "Newest" is by MANIFEST time: make a later package look newer even within one clock tick.
    stamp = time.time() + (newer_by if newer_by is not None else int(version))
    os.utime(directory / MANIFEST, (stamp, stamp))
    return directory


def records_of(frame: pd.DataFrame, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows as API bodies: JSON numbers, null where unknown."""
    values = frame[list(names)].astype(object).where(frame[list(names)].notna(), None)
    return [dict(zip(names, row, strict=True)) for row in values.itertuples(index=False)]


if __name__ == "__main__":
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    out = Path(sys.argv[1])
    heart = heart_spec()
    data = read_source(heart)
    for algorithm, model in (
        ("logistic_regression", LogisticRegression(max_iter=2000)),
        ("random_forest", RandomForestClassifier(n_estimators=100, max_depth=6, random_state=0)),
    ):
        print(write_package(out, heart, fit(heart, data, model), data, algorithm=algorithm))
