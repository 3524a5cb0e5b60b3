"""`heartml package verify` refuses before it trusts: a pickle whose bytes are not the ones the
MANIFEST lists is never unpickled, a package without its dataset spec or parity reference is
named as built by an older heartml, and a pipeline that computes other features than the
package's spec is refused."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
from sklearn.linear_model import LogisticRegression

from heartml.errors import PackagingError
from heartml.package.build import check_contract
from heartml.package.manifest import JOBLIB_FILE, MANIFEST, PARITY_FILE, write_manifest
from heartml.package.verify import verify_package
from serving_packages import fit, heart_spec, read_source, with_extra_column, write_package

pytestmark = pytest.mark.task4


class _OpensAFileWhenUnpickled:
    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.sentinel), "w"))


@pytest.fixture(scope="module")
def fitted() -> Any:
    spec = heart_spec()
    return fit(spec, read_source(spec), LogisticRegression(max_iter=1000))


def _package(tmp_path: Path, fitted: Any) -> Path:
    spec = heart_spec()
    return write_package(tmp_path, spec, fitted, read_source(spec))


def test_a_pickle_changed_after_the_manifest_is_never_loaded(tmp_path: Path, fitted: Any) -> None:
    directory = _package(tmp_path, fitted)
    (directory / JOBLIB_FILE).write_bytes(b"placeholder")
    (directory / MANIFEST).unlink()
    write_manifest(directory, {"package": directory.name})
    sentinel = tmp_path / "unpickled"
    (directory / JOBLIB_FILE).write_bytes(pickle.dumps(_OpensAFileWhenUnpickled(sentinel)))
    with pytest.raises(PackagingError, match=rf"{JOBLIB_FILE}: sha256 .* does not match"):
        verify_package(directory)
    assert not sentinel.exists()


def test_a_package_without_its_parity_reference_is_named(tmp_path: Path, fitted: Any) -> None:
    directory = _package(tmp_path, fitted)
    (directory / PARITY_FILE).unlink()
    (directory / MANIFEST).unlink()
    write_manifest(directory, {"package": directory.name})
    with pytest.raises(PackagingError, match=rf"no {PARITY_FILE} \(built by an older heartml\)"):
        verify_package(directory)


def test_a_pipeline_with_other_features_than_the_spec_is_refused(fitted: Any) -> None:
    spec = heart_spec()
    check_contract(fitted, spec)  # the pipeline fitted on this spec passes
    height = {"kind": "number", "label": "Height", "description": "Height in cm", "unit": "cm"}
    height |= {"range": [100, 250], "required": True, "example": 170, "group": "Patient"}
    wider = with_extra_column(spec, "height", height)
    with pytest.raises(PackagingError, match="features do not match the dataset spec"):
        check_contract(fitted, wider)
