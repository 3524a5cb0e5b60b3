"""The scoring model comes from a verified package: its ONNX graph, threshold and dataset spec."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from batch_helpers import THRESHOLD, parity_document, write_package
from sklearn.pipeline import Pipeline

from heartml.batch import ScoringModel, scoring_model
from heartml.errors import PackagingError
from heartml.package.manifest import ONNX_FILE, read_package
from heartml.spec import DatasetSpec

pytestmark = pytest.mark.scale


def test_the_model_carries_the_packages_threshold_version_and_spec(
    model: ScoringModel, package_dir: Path, spec: DatasetSpec
) -> None:
    assert model.threshold == THRESHOLD
    assert model.version == "heart_disease_logistic_regression/7"
    assert model.contract().spec == spec
    assert model.load().columns == spec.raw_names
    # What a Dask worker receives: small, and the same model once unpickled.
    copy = pickle.loads(pickle.dumps(model))
    assert copy == model and copy.contract().names == spec.raw_names


def test_a_package_with_a_changed_file_is_refused(package_dir: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(package_dir, tmp_path / package_dir.name)
    onnx_bytes = bytearray((copy / ONNX_FILE).read_bytes())
    onnx_bytes[-1] ^= 1
    (copy / ONNX_FILE).write_bytes(bytes(onnx_bytes))
    with pytest.raises(PackagingError, match=r"model\.onnx: sha256"):
        read_package(copy)


def test_a_spec_that_does_not_match_the_graph_is_refused(
    spec: DatasetSpec,
    onnx_bytes: bytes,
    pipeline: Pipeline,
    cleveland_rows: pd.DataFrame,
    tmp_path: Path,
) -> None:
    data = yaml.safe_load(spec.to_yaml())
    data["columns"]["bmi"] = {
        "kind": "number", "label": "BMI", "description": "Body mass index", "range": [10, 80],
        "example": 25,
    }  # fmt: skip
    data["source"]["columns"].insert(-1, "bmi")
    parity = parity_document(pipeline, cleveland_rows, spec.raw_names)
    directory = write_package(tmp_path / "pkg", onnx_bytes, yaml.safe_dump(data), parity)
    with pytest.raises(PackagingError, match="pkg: the package's model takes the columns age"):
        scoring_model(read_package(directory))
