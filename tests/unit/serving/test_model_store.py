"""Resolving, verifying, loading and swapping models (package and registry sources)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from heartml.package.manifest import PackagingError, verify_checksums
from heartml.serving.loaded_model import load_package
from heartml.serving.model_store import ModelNotReady, ModelStore
from heartml.settings import Settings
from heartml.spec import spec_from_text
from serving_packages import heart_spec

pytestmark = pytest.mark.serving

PackageFactory = Callable[..., Path]
RAW_FEATURES = heart_spec().raw_names


def refresh(store: ModelStore, force: bool = False) -> Any:
    return asyncio.run(store.refresh(force=force))


def flip_one_byte(path: Path) -> None:
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    path.write_bytes(bytes(content))


def test_loads_a_verified_package_and_scores_like_the_pipeline(
    tmp_path: Path,
    make_package: PackageFactory,
    fitted: dict[str, Any],
    cleveland: pd.DataFrame,
) -> None:
    directory = make_package(tmp_path / "packages", version="4")
    model = load_package(directory, f"package:{directory}", "fingerprint", 1)
    assert (model.name, model.version, model.algorithm) == (
        "heart_disease_logistic_regression",
        "4",
        "logistic_regression",
    )
    assert model.raw_feature_names == list(RAW_FEATURES)
    assert len(model.engineered_feature_names) > len(RAW_FEATURES)
    rows = cleveland[list(RAW_FEATURES)].to_numpy(dtype=np.float64)
    expected = fitted["logistic_regression"][0].predict_proba(cleveland[list(RAW_FEATURES)])
    np.testing.assert_allclose(model.probabilities(rows), expected[:, 1], atol=1e-6)
    # The explanation baseline: training medians and most frequent codes.
    baseline = dict(zip(RAW_FEATURES, model.baseline, strict=True))
    assert baseline["age"] == pytest.approx(cleveland["age"].median(), abs=1)
    assert baseline["cp"] == cleveland["cp"].mode()[0]


@pytest.mark.parametrize(
    "damage",
    ["flip model.onnx", "flip reference", "delete config", "add a file"],
)
def test_a_package_that_does_not_match_its_manifest_is_refused(
    tmp_path: Path,
    make_package: PackageFactory,
    settings_for: Callable[..., Settings],
    damage: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    directory = make_package(tmp_path / "packages")
    if damage == "flip model.onnx":
        flip_one_byte(directory / "model.onnx")
    elif damage == "flip reference":
        flip_one_byte(directory / "reference_statistics.json")
    elif damage == "delete config":
        (directory / "model_config.yaml").unlink()
    else:
        (directory / "extra.py").write_text("print('not packaged')\n")
    with pytest.raises(PackagingError):
        verify_checksums(directory)
    store = ModelStore(settings_for())
    with caplog.at_level(logging.ERROR, logger="heartml.serving.model_store"):
        outcome = refresh(store)
    assert outcome.status == "failed"
    assert store.current is None
    with pytest.raises(ModelNotReady, match="rejected"):
        store.require()
    assert any(
        "rejected" in r.getMessage() and getattr(r, "package", None) == str(directory)
        for r in caplog.records
    )


def _rewrite_manifest(directory: Path) -> None:
    """Re-checksum a package after editing one of its files (a consistent but wrong package)."""
    import hashlib
    import json

    manifest = json.loads((directory / "MANIFEST.json").read_text())
    files = {}
    for path in sorted(p for p in directory.iterdir() if p.name != "MANIFEST.json"):
        files[path.name] = {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    manifest["files"] = files
    (directory / "MANIFEST.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("no spec", "no dataset_spec.yaml"),
        ("spec names other columns", "model.onnx takes the columns"),
        ("invalid spec", "dataset_spec.yaml"),
        ("not yaml", "not a dataset spec"),
        ("reference lacks a column", "no statistics for the input column 'thal'"),
    ],
)
def test_a_package_whose_contract_does_not_hold_is_refused(
    tmp_path: Path, make_package: PackageFactory, case: str, words: str
) -> None:
    directory = make_package(tmp_path / "packages")
    spec_file = directory / "dataset_spec.yaml"
    if case == "no spec":
        spec_file.unlink()
    elif case == "spec names other columns":
        data = yaml.safe_load(spec_file.read_text())
        data["columns"]["smoker"] = {
            "kind": "binary", "label": "Smoker", "description": "Smokes", "codes": {0: "no", 1: "yes"},
            "example": 0, "required": True,
        }  # fmt: skip
        data["source"]["columns"].append("smoker")
        spec_file.write_text(spec_from_text(yaml.safe_dump(data)).to_yaml())
    elif case == "invalid spec":
        spec_file.write_text(spec_file.read_text().replace("kind: coded", "kind: text", 1))
    elif case == "not yaml":
        spec_file.write_text("columns: [unclosed\n")
    else:
        reference = directory / "reference_statistics.json"
        data = json.loads(reference.read_text())
        del data["features"]["thal"]
        reference.write_text(json.dumps(data))
    _rewrite_manifest(directory)
    with pytest.raises(PackagingError, match=re.escape(words)):
        load_package(directory, "test", "f", 1)


def test_no_package_is_reported_not_raised(settings_for: Callable[..., Settings]) -> None:
    store = ModelStore(settings_for())
    assert refresh(store).status == "unavailable"
    with pytest.raises(ModelNotReady, match="no package yet") as raised:
        store.require()
    assert str(store.settings.packages_dir) not in str(raised.value)  # no paths for clients


def test_newest_package_wins_and_a_new_one_is_swapped_in(
    tmp_path: Path, make_package: PackageFactory, settings_for: Callable[..., Settings]
) -> None:
    packages = tmp_path / "packages"
    make_package(packages, version="1")
    make_package(packages, version="2")
    store = ModelStore(settings_for())
    changes: list[str] = []
    store.on_change = lambda model: changes.append(model.version)
    assert refresh(store).status == "loaded"
    first = store.require()
    assert first.version == "2"
    assert refresh(store).status == "unchanged"
    make_package(packages, version="3", algorithm="random_forest")
    assert refresh(store).status == "loaded"
    assert store.require().version == "3" and store.require().algorithm == "random_forest"
    assert first.version == "2"  # a request holding the old object keeps a working model
    assert first.probabilities(first.baseline[None, :]).shape == (1,)
    assert changes == ["2", "3"]


def test_a_bad_new_package_keeps_the_last_good_model_and_is_not_retried(
    tmp_path: Path,
    make_package: PackageFactory,
    settings_for: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    packages = tmp_path / "packages"
    make_package(packages, version="1")
    store = ModelStore(settings_for())
    failures: list[str] = []
    store.on_failure = failures.append
    refresh(store)
    bad = make_package(packages, version="2")
    flip_one_byte(bad / "model.onnx")
    with caplog.at_level(logging.ERROR):
        assert refresh(store).status == "failed"
    assert store.require().version == "1"
    assert "still serving version 1" in caplog.text
    assert refresh(store).status == "unchanged"  # same broken files: not loaded again
    assert len(failures) == 1
    # Repaired (rebuilt): the watcher sees the change and loads it.
    (bad / "model.onnx").unlink()
    for path in sorted(bad.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    bad.rmdir()
    make_package(packages, version="2")
    assert refresh(store).status == "loaded"
    assert store.require().version == "2"


def test_explicit_package_setting_and_forced_reload(
    tmp_path: Path, make_package: PackageFactory, settings_for: Callable[..., Settings]
) -> None:
    older = make_package(tmp_path / "elsewhere", version="1")
    make_package(tmp_path / "packages", version="2")
    store = ModelStore(settings_for(model_package=older))
    refresh(store)
    assert store.require().version == "1"
    assert refresh(store).status == "unchanged"
    assert refresh(store, force=True).status == "loaded"
    missing = ModelStore(settings_for(model_package=tmp_path / "nowhere"))
    assert refresh(missing).status == "unavailable"
    assert "does not exist" in missing.problem and "nowhere" not in missing.problem


def test_watcher_loads_then_polls(
    tmp_path: Path, make_package: PackageFactory, settings_for: Callable[..., Settings]
) -> None:
    packages = tmp_path / "packages"
    make_package(packages, version="1")
    store = ModelStore(settings_for())

    async def scenario() -> list[str]:
        task = asyncio.create_task(store.run(0.05))
        for _ in range(200):  # the first load; a loaded machine may take seconds
            await asyncio.sleep(0.05)
            if store.current is not None:
                break
        seen = [store.require().version]
        await asyncio.to_thread(make_package, packages, "2")
        for _ in range(100):
            await asyncio.sleep(0.05)
            if store.require().version == "2":
                break
        seen.append(store.require().version)
        task.cancel()
        return seen

    assert asyncio.run(scenario()) == ["1", "2"]


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({}, "needs MLFLOW_TRACKING_URI to point at an MLflow tracking server"),
        ({"MLFLOW_TRACKING_URI": "file:///srv/mlruns"}, "not file:///srv/mlruns"),
        ({"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"}, "HEARTML_REGISTRY_MODELS"),
    ],
)
def test_a_registry_source_that_cannot_work_is_an_error_at_start(
    settings_for: Callable[..., Settings], overrides: dict[str, str], words: str
) -> None:
    """Registry mode talks to an MLflow server over HTTP: the embedded SQLite store, a file
    store, or no model names (no spec in the root, no setting) cannot work; the error names
    the missing piece, and the app does not start."""
    from heartml.serving.app import create_app
    from heartml.serving.source_choice import ModelSourceError, check_source

    settings = settings_for(model_source="registry", **overrides)
    with pytest.raises(ModelSourceError, match=re.escape(words)):
        check_source(settings)
    with pytest.raises(ModelSourceError, match=re.escape(words)):
        create_app(settings)
    named = settings_for(
        model_source="registry",
        MLFLOW_TRACKING_URI="http://127.0.0.1:5000",
        registry_models="heart_disease_svm, heart_disease_random_forest",
    )
    check_source(named)  # with the names listed, nothing is missing
    assert named.registry_models == ["heart_disease_svm", "heart_disease_random_forest"]


def test_the_uvicorn_factory_exits_with_one_line(tmp_path: Path) -> None:
    """`uvicorn --factory heartml.serving.app:create_app` (the image's entry point) with a
    source that cannot work: exit code 2 and one line naming the missing piece, no traceback."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEARTML_", "MLFLOW_"))}
    env.update(HEARTML_ROOT=str(tmp_path), HEARTML_MODEL_SOURCE="registry")
    env["MLFLOW_TRACKING_URI"] = "http://127.0.0.1:9"
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "--factory", "heartml.serving.app:create_app",
         "--port", "0"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [line for line in lines if "HEARTML_REGISTRY_MODELS" in line], lines
    assert len(lines) == 1, lines


def test_credentials_in_urls_are_redacted_for_logs() -> None:
    from heartml.serving.sources import redact_credentials

    text = "failed on https://alice:pw123@mlflow.example:5000/api and http://host/x"
    assert redact_credentials(text) == (
        "failed on https://***@mlflow.example:5000/api and http://host/x"
    )
