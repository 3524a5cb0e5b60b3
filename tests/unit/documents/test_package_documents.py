"""heartml.documents.package: a deployment package's documents read into their classes and write
back as the same bytes; the packaging code, now writing through them, writes what the untyped code
wrote; a wrong field is one PackagingError naming the file and the field.

The oracle (tests/unit/documents/data/package) is the package tests/serving_packages.write_package
built with the code before the documents were typed (commit 97ffda9 on branch spec): a logistic
regression on the Cleveland rows, written by the real heartml.package functions.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from heartml.documents import Document
from heartml.documents.package import (
    CodedReference,
    Manifest,
    ModelConfig,
    NumericReference,
    ParityReference,
    ReferenceStatistics,
)
from heartml.errors import PackagingError
from heartml.package.manifest import (
    MANIFEST,
    MODEL_CONFIG,
    PARITY_FILE,
    REFERENCE_FILE,
    read_package,
)
from serving_packages import fit, heart_spec, read_source, write_package

pytestmark = pytest.mark.task4

OLD = Path(__file__).parent / "data" / "package"
JSON_FILES: dict[str, type[Document]] = {
    MANIFEST: Manifest,
    REFERENCE_FILE: ReferenceStatistics,
    PARITY_FILE: ParityReference,
}


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same package as the oracle, built by the current code."""
    spec = heart_spec()
    frame = read_source(spec)
    pipeline = fit(spec, frame, LogisticRegression(max_iter=1000))
    return write_package(tmp_path_factory.mktemp("packages"), spec, pipeline, frame)


@pytest.mark.parametrize("name", list(JSON_FILES))
def test_a_written_file_reads_and_writes_back_byte_for_byte(name: str, tmp_path: Path) -> None:
    document = JSON_FILES[name].read(OLD / name)
    document.write(tmp_path / name)
    assert (tmp_path / name).read_bytes() == (OLD / name).read_bytes()


def test_the_model_config_reads_and_dumps_back_as_the_same_yaml() -> None:
    text = (OLD / MODEL_CONFIG).read_text()
    config = ModelConfig.from_json_dict(yaml.safe_load(text), MODEL_CONFIG)
    assert yaml.safe_dump(config.to_yaml_data(), sort_keys=False) == text
    assert config.input_coding is not None
    assert config.input_coding["cp"].codes is not None  # integer codes stay integer keys
    assert 4 in config.input_coding["cp"].codes


def test_reference_features_are_coded_or_numeric_as_the_spec_says() -> None:
    reference = ReferenceStatistics.read(OLD / REFERENCE_FILE)
    spec = heart_spec()
    for column in spec.raw_columns:
        expected = CodedReference if column.codes is not None else NumericReference
        assert type(reference.features[column.name]) is expected, column.name


def test_the_packaging_code_writes_what_the_untyped_code_wrote(package: Path) -> None:
    for name in (MODEL_CONFIG, REFERENCE_FILE):  # data and spec only: no fitted numbers
        assert (package / name).read_bytes() == (OLD / name).read_bytes(), name
    old = json.loads((OLD / PARITY_FILE).read_text())
    new = json.loads((package / PARITY_FILE).read_text())
    assert list(new) == list(old)
    assert (new["columns"], new["rows"]) == (old["columns"], old["rows"])
    # The probabilities are a fitted model's: the same to rounding with the pinned scikit-learn.
    assert np.allclose(new["expected_probability"], old["expected_probability"], atol=1e-9)
    old_manifest = json.loads((OLD / MANIFEST).read_text())
    new_manifest = json.loads((package / MANIFEST).read_text())
    assert list(new_manifest) == list(old_manifest)
    for key in set(old_manifest) - {"created_at", "files"}:
        assert new_manifest[key] == old_manifest[key], key
    assert list(new_manifest["files"]) == list(old_manifest["files"])
    for name in (MODEL_CONFIG, REFERENCE_FILE, "dataset_spec.yaml"):
        assert new_manifest["files"][name] == old_manifest["files"][name], name


def test_a_built_package_reads_into_its_documents(package: Path) -> None:
    verified = read_package(package)
    assert verified.manifest.model_name == "heart_disease_logistic_regression"
    assert set(verified.manifest.files) == {p.name for p in package.iterdir() if p.name != MANIFEST}
    assert verified.model_config.model.version == "1"
    assert verified.threshold == 0.5
    assert verified.reference.rows == 303
    assert len(verified.parity.rows) == len(verified.parity.expected_probability) == 303


# --- errors ----------------------------------------------------------------------------------


def rechecksummed(package: Path, tmp_path: Path, name: str, edit: Callable[[Any], None]) -> Path:
    """A copy of `package` with `edit` applied to `name` and the manifest's checksum updated,
    so that only the document's content is wrong."""
    import hashlib

    copy = tmp_path / package.name
    shutil.copytree(package, copy)
    path = copy / name
    is_yaml = name.endswith(".yaml")
    data = yaml.safe_load(path.read_text()) if is_yaml else json.loads(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False) if is_yaml else json.dumps(data))
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["files"][name]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (copy / MANIFEST).write_text(json.dumps(manifest))
    return copy


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        (
            MODEL_CONFIG,
            lambda d: d["model"].pop("version"),
            f"{MODEL_CONFIG}: model.version: field required",
        ),
        (
            MODEL_CONFIG,
            lambda d: d.update(threshold="high"),
            f"{MODEL_CONFIG}: threshold: input should be a valid number (found 'high')",
        ),
        (
            REFERENCE_FILE,
            lambda d: d.update(rows=303.5),
            f"{REFERENCE_FILE}: rows: input should be a valid integer (found 303.5)",
        ),
        (
            PARITY_FILE,
            lambda d: d.update(expected_probability="0.5"),
            f"{PARITY_FILE}: expected_probability: input should be a valid list (found '0.5')",
        ),
    ],
    ids=["config-version", "config-threshold", "reference-rows", "parity-probabilities"],
)
def test_a_wrong_field_is_a_packaging_error_naming_the_file_and_the_field(
    package: Path, tmp_path: Path, name: str, edit: Callable[[Any], None], message: str
) -> None:
    broken = rechecksummed(package, tmp_path, name, edit)
    with pytest.raises(PackagingError) as info:
        read_package(broken)
    assert str(info.value) == message


def test_a_wrong_manifest_field_names_the_manifest_and_the_field(
    package: Path, tmp_path: Path
) -> None:
    copy = tmp_path / package.name
    shutil.copytree(package, copy)
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["files"][MODEL_CONFIG]["sha256"] = 42
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(PackagingError) as info:
        read_package(copy)
    assert str(info.value) == (
        f"{copy / MANIFEST}: files.{MODEL_CONFIG}.sha256: input should be a valid string (found 42)"
    )
