"""Batch-scoring fixtures: real packages, built in seconds from a pipeline fitted here.

A package is what `heartml package` ships and `heartml.package.manifest.read_package` verifies: the ONNX
graph, the dataset spec it was trained with, the model config, the reference statistics and a
MANIFEST with every file's sha256. Only the MLflow round trip is skipped (the integration tests
run the real command). The Cleveland rows are read here with pandas from the spec's own
declaration, independently of the code under test.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from batch_helpers import RAW_FILE, SPEC_PATH, VERSION, parity_document, write_package
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from heartml.batch import ScoringModel, scoring_model
from heartml.features import build_pipeline
from heartml.onnx_export import pipeline_to_onnx
from heartml.package.manifest import read_package
from heartml.spec import DatasetSpec, load_spec


@pytest.fixture(scope="session")
def spec() -> DatasetSpec:
    return load_spec(SPEC_PATH)


@pytest.fixture(scope="session")
def cleveland_rows(spec: DatasetSpec) -> pd.DataFrame:
    """The shipped Cleveland file: the spec's field order, '?' = NaN, the label column kept."""
    assert spec.source.columns is not None
    return pd.read_csv(
        RAW_FILE, header=None, names=list(spec.source.columns), na_values=["?"]
    ).astype("float64")


@pytest.fixture(scope="session")
def pipeline(spec: DatasetSpec, cleveland_rows: pd.DataFrame) -> Pipeline:
    """The offline sklearn pipeline: the oracle for every probability batch scoring writes."""
    target = (cleveland_rows[spec.target.column] > 0).astype(int)
    return build_pipeline(spec, LogisticRegression(max_iter=2000)).fit(
        cleveland_rows.loc[:, list(spec.raw_names)], target
    )


@pytest.fixture(scope="session")
def onnx_bytes(pipeline: Pipeline) -> bytes:
    return pipeline_to_onnx(pipeline).SerializeToString()


PackageFactory = Callable[..., Path]


@pytest.fixture(scope="session")
def make_package(
    tmp_path_factory: pytest.TempPathFactory,
    spec: DatasetSpec,
    onnx_bytes: bytes,
    pipeline: Pipeline,
    cleveland_rows: pd.DataFrame,
) -> PackageFactory:
    """A package of the fitted model; `spec` replaces the dataset spec it carries."""
    parity = parity_document(pipeline, cleveland_rows, spec.raw_names)

    def make(spec_override: DatasetSpec | None = None, **kwargs: Any) -> Path:
        folder = tmp_path_factory.mktemp("packages")
        directory = folder / f"{spec.package_prefix}_logistic_regression_v{VERSION}"
        spec_text = (spec_override or spec).to_yaml()
        return write_package(directory, onnx_bytes, spec_text, parity, **kwargs)

    return make


@pytest.fixture(scope="session")
def package_dir(make_package: PackageFactory) -> Path:
    return make_package()


@pytest.fixture(scope="session")
def model(package_dir: Path) -> ScoringModel:
    return scoring_model(read_package(package_dir))
