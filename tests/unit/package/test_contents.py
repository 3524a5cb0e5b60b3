"""What a package says besides its model, against oracles from outside the code under test:
pandas for the reference statistics, the dataset spec's YAML (read here with PyYAML) for the
model config's input coding, importlib.metadata for the pinned environment."""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pandas as pd
import pytest
import yaml

from heartml.package.contents import (
    conda_environment,
    model_config,
    pinned_requirements,
    reference_statistics,
)
from oracles import HEART_SPEC_FILE
from serving_packages import heart_spec, read_source

pytestmark = pytest.mark.task4


@pytest.fixture(scope="module")
def cleveland() -> pd.DataFrame:
    return read_source(heart_spec())


def test_reference_statistics_match_pandas(cleveland: pd.DataFrame) -> None:
    spec = heart_spec()
    reference = reference_statistics(cleveland, spec)
    assert reference["rows"] == len(cleveland) == 303
    assert list(reference["features"]) == list(spec.raw_names)
    for column in spec.raw_columns:
        series = cleveland[column.name].astype(float)
        entry = reference["features"][column.name]
        assert entry["count"] == len(series)
        assert entry["missing_fraction"] == pytest.approx(series.isna().mean(), abs=1e-12)
        present = series.dropna()
        if column.codes is not None:
            shares = present.value_counts(normalize=True)
            assert entry["codes"] == sorted(column.codes)
            assert entry["proportions"] == pytest.approx(
                [shares.get(float(code), 0.0) for code in sorted(column.codes)], abs=1e-12
            )
        else:
            assert entry["mean"] == pytest.approx(present.mean(), rel=1e-12)
            assert entry["std"] == pytest.approx(present.std(), rel=1e-12)  # pandas: ddof=1
            assert (entry["min"], entry["max"]) == (present.min(), present.max())
            assert entry["quantiles"][50] == pytest.approx(present.median(), rel=1e-12)
            # Bins are open at both ends around the interior edges: pandas counts them too.
            edges = [-np.inf, *entry["bin_edges"], np.inf]
            counts = pd.cut(present, edges, right=False).value_counts(sort=False, normalize=True)
            assert entry["proportions"] == pytest.approx(counts.to_list(), abs=1e-12)
            assert sum(entry["proportions"]) == pytest.approx(1.0)


def test_ca_and_thal_missing_fractions_are_the_files_question_marks(
    cleveland: pd.DataFrame,
) -> None:
    """Hand count from the raw file: ca has 4 '?' and thal 2 among the 303 rows."""
    features = reference_statistics(cleveland, heart_spec())["features"]
    assert features["ca"]["missing_fraction"] == pytest.approx(4 / 303)
    assert features["thal"]["missing_fraction"] == pytest.approx(2 / 303)


def test_model_config_describes_the_spec_the_yaml_declares() -> None:
    spec = heart_spec()
    declared = yaml.safe_load(HEART_SPEC_FILE.read_text())
    champion = {"model_name": "heart_disease_svm", "algorithm": "svm", "version": "4"}
    champion["run_id"] = "r1"
    config = model_config(champion, {"cv": {}}, 0.42, spec)
    assert config["model"] == {
        "name": "heart_disease_svm",
        "algorithm": "svm",
        "version": "4",
        "run_id": "r1",
        "format": "onnx",
        "file": "model.onnx",
    }
    assert config["threshold"] == 0.42
    assert config["spec_file"] == "dataset_spec.yaml"
    assert config["raw_feature_names"] == list(declared["columns"])
    for name, column in declared["columns"].items():
        coding = config["input_coding"][name]
        assert coding["may_be_missing"] is not column.get("required", False), name
        if "codes" in column:
            assert coding["codes"] == column["codes"], name
        else:
            assert coding["range"] == column["range"], name
    assert set(declared["features"]) <= set(config["engineered_feature_names"])


def test_pinned_requirements_are_this_environments_distributions() -> None:
    pins = pinned_requirements()
    assert pins == sorted(pins, key=str.lower)
    assert not any(pin.lower().startswith("heartml==") for pin in pins)
    for name in ("scikit-learn", "onnxruntime", "mlflow"):
        assert f"{name}=={metadata.version(name)}" in pins
    environment = conda_environment(pins, "3.11.9")
    assert environment["dependencies"][:2] == ["python=3.11.9", "pip"]
    assert environment["dependencies"][2] == {"pip": pins}
