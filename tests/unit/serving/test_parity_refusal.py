"""A package whose model.onnx is a valid graph of ANOTHER model, with every checksum re-signed:
the checksums pass, so only parity can catch it. The store refuses it at start and on a hot
reload, naming parity (not sha256), and keeps serving the last good model."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from heartml.package.manifest import MANIFEST, PARITY_FILE, verify_checksums
from heartml.parity import ParityError
from heartml.provenance import sha256_file
from heartml.serving.loaded_model import load_package
from heartml.serving.model_store import ModelStore
from heartml.settings import Settings
from serving_packages import heart_spec

pytestmark = pytest.mark.serving

RAW_FEATURES = heart_spec().raw_names

PackageFactory = Callable[..., Path]


def refresh(store: ModelStore) -> Any:
    return asyncio.run(store.refresh())


def resign(directory: Path) -> None:
    """Rewrite every sha256 and size in MANIFEST.json so that the checksums match again (its
    time stamp kept: it still decides which package is the newest)."""
    stamp = (directory / MANIFEST).stat()
    manifest = json.loads((directory / MANIFEST).read_text())
    for relative, entry in manifest["files"].items():
        path = directory / relative
        entry.update(sha256=sha256_file(path), bytes=path.stat().st_size)
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2))
    os.utime(directory / MANIFEST, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))


def swap_graph(directory: Path, other_onnx: bytes) -> None:
    (directory / "model.onnx").write_bytes(other_onnx)
    resign(directory)
    verify_checksums(directory)  # the premise: the checksums alone see nothing wrong


def test_the_two_graphs_really_score_differently(
    fitted: dict[str, Any], _cleveland: pd.DataFrame
) -> None:
    """The premise of the tests below, from sklearn itself: the forest is not the regression."""
    raw = _cleveland[list(RAW_FEATURES)]
    forest = fitted["random_forest"][0].predict_proba(raw)[:, 1]
    logistic = fitted["logistic_regression"][0].predict_proba(raw)[:, 1]
    assert np.max(np.abs(forest - logistic)) > 0.1


def test_a_valid_graph_of_another_model_is_refused_on_parity(
    tmp_path: Path,
    make_package: PackageFactory,
    fitted: dict[str, Any],
    settings_for: Callable[..., Settings],
) -> None:
    directory = make_package(tmp_path / "packages")
    swap_graph(directory, fitted["random_forest"][1])
    with pytest.raises(ParityError) as raised:
        load_package(directory, "package", "fingerprint", 1)
    message = str(raised.value)
    assert message.startswith("parity: model.onnx disagrees"), message
    assert "sha256" not in message
    assert "over 303 reference rows" in message

    store = ModelStore(settings_for())
    outcome = refresh(store)
    assert outcome.status == "failed" and store.current is None
    assert "parity" in store.problem and "sha256" not in store.problem, store.problem
    assert directory.name in store.problem and str(tmp_path) not in store.problem


def test_a_swapped_graph_on_hot_reload_keeps_the_last_good_model(
    tmp_path: Path,
    make_package: PackageFactory,
    fitted: dict[str, Any],
    settings_for: Callable[..., Settings],
    _cleveland: pd.DataFrame,
) -> None:
    packages = tmp_path / "packages"
    make_package(packages, version="1")
    store = ModelStore(settings_for())
    assert refresh(store).status == "loaded"
    newer = make_package(packages, version="2")
    swap_graph(newer, fitted["random_forest"][1])
    outcome = refresh(store)
    assert outcome.status == "failed"
    assert "parity" in outcome.detail and newer.name in outcome.detail, outcome.detail
    served = store.require()
    assert served.version == "1"
    rows = _cleveland[list(RAW_FEATURES)].to_numpy(dtype=np.float64)
    expected = fitted["logistic_regression"][0].predict_proba(_cleveland[list(RAW_FEATURES)])
    np.testing.assert_allclose(served.probabilities(rows), expected[:, 1], rtol=0, atol=1e-9)


def test_a_package_without_its_parity_reference_is_refused(
    tmp_path: Path, make_package: PackageFactory, settings_for: Callable[..., Settings]
) -> None:
    directory = make_package(tmp_path / "packages")
    (directory / PARITY_FILE).unlink()
    manifest = json.loads((directory / MANIFEST).read_text())
    del manifest["files"][PARITY_FILE]
    (directory / MANIFEST).write_text(json.dumps(manifest))
    store = ModelStore(settings_for())
    assert refresh(store).status == "failed"
    assert PARITY_FILE in store.problem and "parity" in store.problem


def test_recorded_probabilities_are_the_pipelines(
    tmp_path: Path, make_package: PackageFactory, fitted: dict[str, Any], _cleveland: pd.DataFrame
) -> None:
    """The reference the server trusts is sklearn's output on every row, NaN kept as null."""
    directory = make_package(tmp_path / "packages")
    document = json.loads((directory / PARITY_FILE).read_text())
    assert document["columns"] == list(RAW_FEATURES)
    assert len(document["rows"]) == len(_cleveland) == 303
    assert sum(value is None for row in document["rows"] for value in row) == int(
        _cleveland[list(RAW_FEATURES)].isna().sum().sum()
    )
    expected = fitted["logistic_regression"][0].predict_proba(_cleveland[list(RAW_FEATURES)])
    np.testing.assert_allclose(document["expected_probability"], expected[:, 1], rtol=0, atol=0)
