"""Task 4 against real stores: `python src/model_packaging.py` from the embedded SQLite store and
from `mlflow server` on PostgreSQL, then `heartml package verify` as a user runs it."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from integration_helpers import (
    BACKENDS,
    SEED_BODY,
    MlflowServer,
    Project,
    TrackedTwice,
    champions,
    describe,
    launch_server,
    registry_client,
    registry_snapshot,
)

from heartml.data.parse import parse_records
from heartml.spec import load_spec, spec_from_text
from oracles import HEART_SPEC_FILE

pytestmark = [pytest.mark.task4, pytest.mark.integration, pytest.mark.slow]

SPEC = load_spec(HEART_SPEC_FILE)
RAW_FEATURES = SPEC.raw_names

PACKAGE_FILES = (
    "model.onnx",
    "mlflow_model/MLmodel",
    "model.joblib",
    "requirements.txt",
    "conda.yaml",
    "environment.json",
    "model_config.yaml",
    "deployment_config.yaml",
    "reference_statistics.json",
    "parity_reference.json",
    "model_card.md",
    "model_card.html",
    "MANIFEST.json",
)
NO_CHAMPION = "run python src/experiment_tracking.py first"


@dataclass
class Packaged:
    project: Project
    result: subprocess.CompletedProcess[str]
    champion: tuple[str, str]  # (model name, version) when packaging ran
    before: dict[str, Any]  # the registry before and after packaging
    after: dict[str, Any]

    @property
    def directory(self) -> Path:
        name, version = self.champion
        algorithm = name.removeprefix("heart_disease_")
        return self.project.root / "packages" / f"heart_disease_model_{algorithm}_v{version}"


@pytest.fixture(scope="module")
def packaged(tracked_twice: Callable[[str], TrackedTwice]) -> Callable[[str], Packaged]:
    """packaged(backend): the two-run project, packaged once with the seed's command."""
    made: dict[str, Packaged] = {}

    def get(backend: str) -> Packaged:
        if backend not in made:
            project = tracked_twice(backend).project
            [champion] = champions(project.store_uri)
            before = registry_snapshot(project.store_uri)
            result = project.run("python", "src/model_packaging.py")
            made[backend] = Packaged(
                project, result, champion, before, registry_snapshot(project.store_uri)
            )
        return made[backend]

    return get


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("backend", BACKENDS)
def test_package_holds_every_format_and_its_description(
    packaged: Callable[[str], Packaged], backend: str
) -> None:
    built = packaged(backend)
    assert built.result.returncode == 0, describe(built.result)
    directory = built.directory
    assert f"package: {directory}" in built.result.stdout
    for relative in PACKAGE_FILES:
        assert (directory / relative).is_file(), f"{relative} missing from {directory.name}"

    name, version = built.champion
    champion_version = registry_client(built.project.store_uri).get_model_version(name, version)
    provenance = json.loads((built.project.root / "data/processed/provenance.json").read_text())

    manifest = json.loads((directory / "MANIFEST.json").read_text())
    assert (manifest["model_name"], manifest["version"]) == (name, version)
    assert manifest["run_id"] == champion_version.run_id
    assert manifest["data_sha256"] == provenance["sha256"]
    assert manifest["parity"]["rows"] == 303
    assert manifest["parity"]["max_abs_difference"] <= 1e-5
    on_disk = sorted(
        p.relative_to(directory).as_posix()
        for p in directory.rglob("*")
        if p.is_file() and p.name != "MANIFEST.json"
    )
    assert sorted(manifest["files"]) == on_disk, "the manifest lists every file, and only those"
    for relative, entry in manifest["files"].items():
        assert entry["sha256"] == sha256(directory / relative), relative

    # The package carries the dataset spec the model was trained with, listed and checksummed.
    assert "dataset_spec.yaml" in manifest["files"]
    carried = spec_from_text((directory / "dataset_spec.yaml").read_text())
    assert carried == SPEC
    config = yaml.safe_load((directory / "model_config.yaml").read_text())
    assert config["model"]["name"] == name and str(config["model"]["version"]) == version
    assert config["raw_feature_names"] == list(RAW_FEATURES)
    assert config["engineered_feature_names"] == [*RAW_FEATURES, *SPEC.feature_names]
    assert sorted(config["input_coding"]["cp"]["codes"]) == [1, 2, 3, 4]  # UCI coding
    assert sorted(config["input_coding"]["thal"]["codes"]) == [3, 6, 7]
    assert 0 < config["threshold"] < 1
    assert config["metrics"]["cv"]["roc_auc"]["mean"] == pytest.approx(
        float(champion_version.tags["cv_roc_auc"]), abs=1e-6
    )
    assert yaml.safe_load((directory / "deployment_config.yaml").read_text())["service"]

    # The logged model declares what loading it needs (not whatever the test process imported).
    model_needs = (directory / "mlflow_model" / "requirements.txt").read_text().split()
    assert {r.split("==")[0] for r in model_needs} >= {"mlflow", "scikit-learn", "skops", "heartml"}
    assert not any(r.startswith("pytest") for r in model_needs), model_needs
    requirements = (directory / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("scikit-learn==") for line in requirements)
    assert all("==" in line for line in requirements if line)
    conda = yaml.safe_load((directory / "conda.yaml").read_text())
    assert any(str(d).startswith("python=") for d in conda["dependencies"])
    assert json.loads((directory / "environment.json").read_text())["python"]
    reference = json.loads((directory / "reference_statistics.json").read_text())
    assert sorted(reference["features"]) == sorted(RAW_FEATURES)
    card = (directory / "model_card.md").read_text()
    for section in ("Intended use", "Data", "Metrics", "Subgroups", "Limitations"):
        assert f"## {section}" in card, section
    assert "<table>" in (directory / "model_card.html").read_text()


@pytest.mark.parametrize("backend", BACKENDS)
def test_packaging_creates_no_model_version(
    packaged: Callable[[str], Packaged], backend: str
) -> None:
    built = packaged(backend)
    assert built.result.returncode == 0, describe(built.result)
    assert built.after == built.before


@pytest.mark.parametrize("backend", BACKENDS)
def test_verify_accepts_the_package(packaged: Callable[[str], Packaged], backend: str) -> None:
    built = packaged(backend)
    result = built.project.run("heartml", "package", "verify", str(built.directory))
    assert result.returncode == 0, describe(result)
    assert result.stdout.startswith(f"OK {built.directory}")


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        (lambda d: _flip_last_byte(d / "model.onnx"), "model.onnx"),
        (lambda d: _flip_last_byte(d / "model.joblib"), "model.joblib"),
        (
            lambda d: (d / "mlflow_model" / "extra.py").write_text("x = 1\n"),
            "mlflow_model/extra.py",
        ),
    ],
    ids=["onnx-byte", "joblib-byte", "unlisted-file"],
)
def test_verify_names_a_tampered_file(
    packaged: Callable[[str], Packaged],
    tmp_path: Path,
    tamper: Callable[[Path], Any],
    named: str,
) -> None:
    built = packaged("embedded")
    assert built.result.returncode == 0, describe(built.result)
    copy = tmp_path / built.directory.name
    shutil.copytree(built.directory, copy)
    tamper(copy)
    result = built.project.run("heartml", "package", "verify", str(copy))
    assert result.returncode != 0, describe(result)
    assert "Traceback" not in result.stderr, result.stderr
    assert named in result.stderr, result.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_champion_exits_2_and_says_what_to_run(
    backend: str,
    make_project: Callable[..., Project],
    mlflow_server_factory: Callable[[], MlflowServer],
) -> None:
    uri = mlflow_server_factory().url if backend == "server" else None
    project = make_project(uri)
    result = project.run("python", "src/model_packaging.py")
    assert result.returncode == 2, describe(result)
    assert NO_CHAMPION in result.stderr
    assert "Traceback" not in result.stderr
    assert not list((project.root / "packages").glob("heart_disease_model_*"))
    assert registry_snapshot(project.store_uri) == {}


def test_a_named_registered_version_is_packaged_without_new_versions(
    packaged: Callable[[str], Packaged],
) -> None:
    """`heartml package --model NAME --version N` (what benchmarks/bench_serving.py uses to
    serve every model): reads that version, writes its package, registers nothing."""
    built = packaged("embedded")
    assert built.result.returncode == 0, describe(built.result)
    before = registry_snapshot(built.project.store_uri)
    name = next(n for n in before if n != built.champion[0])
    version = min(before[name]["versions"], key=int)
    result = built.project.run("heartml", "package", "--model", name, "--version", version)
    assert result.returncode == 0, describe(result)
    algorithm = name.removeprefix("heart_disease_")
    directory = built.project.root / "packages" / f"heart_disease_model_{algorithm}_v{version}"
    manifest = json.loads((directory / "MANIFEST.json").read_text())
    assert (manifest["model_name"], manifest["version"]) == (name, version)
    assert manifest["model_uri"] == f"models:/{name}/{version}"
    assert registry_snapshot(built.project.store_uri) == before
    missing = built.project.run("heartml", "package", "--model", name, "--version", "999")
    assert missing.returncode == 2 and "no version 999" in missing.stderr, describe(missing)
    alone = built.project.run("heartml", "package", "--model", name)
    assert alone.returncode == 2 and "--version" in alone.stderr, describe(alone)


# --------------------------------------------------------------------------------------------
# Parity that can fail: a valid graph of another model, with checksums that match


def _resign(directory: Path) -> None:
    """Rewrite every sha256 and size in MANIFEST.json so that the checksums pass again."""
    manifest = json.loads((directory / "MANIFEST.json").read_text())
    for relative, entry in manifest["files"].items():
        entry.update(
            sha256=sha256(directory / relative), bytes=(directory / relative).stat().st_size
        )
    (directory / "MANIFEST.json").write_text(json.dumps(manifest, indent=2))


@pytest.fixture(scope="module")
def swapped_graph(
    packaged: Callable[[str], Packaged], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A copy of the champion's package whose model.onnx is the genuine ONNX export of another
    registered model (packaged by `heartml package --model ... --version ...`), MANIFEST
    re-signed: every checksum matches, the graph is valid, it is just not this model."""
    built = packaged("embedded")
    assert built.result.returncode == 0, describe(built.result)
    snapshot = registry_snapshot(built.project.store_uri)
    other = next(n for n in sorted(snapshot) if n != built.champion[0])
    version = min(snapshot[other]["versions"], key=int)
    result = built.project.run("heartml", "package", "--model", other, "--version", version)
    assert result.returncode == 0, describe(result)
    algorithm = other.removeprefix("heart_disease_")
    donor = built.project.root / "packages" / f"heart_disease_model_{algorithm}_v{version}"
    copy = tmp_path_factory.mktemp("swapped") / built.directory.name
    shutil.copytree(built.directory, copy)
    shutil.copy2(donor / "model.onnx", copy / "model.onnx")
    _resign(copy)
    from heartml.package.manifest import verify_checksums

    verify_checksums(copy)  # the premise: checksums alone find nothing wrong
    return copy


def _scores(package: Path, rows: Any) -> dict[str, np.ndarray]:
    """P(class=1) of every row by the package's formats, each loaded with its own library."""
    import joblib
    import mlflow
    import onnxruntime

    manifest = json.loads((package / "MANIFEST.json").read_text())
    assert sha256(package / "model.joblib") == manifest["files"]["model.joblib"]["sha256"]
    raw = rows[list(RAW_FEATURES)].astype("float64")
    session = onnxruntime.InferenceSession(
        (package / "model.onnx").read_bytes(), providers=["CPUExecutionProvider"]
    )
    (onnx_p,) = session.run(["probabilities"], {"input": raw.to_numpy()})
    pyfunc = mlflow.pyfunc.load_model(str(package / "mlflow_model"))
    return {
        "sklearn": joblib.load(package / "model.joblib").predict_proba(raw)[:, 1],
        "pyfunc": np.asarray(pyfunc.predict(raw))[:, 1],
        "onnx": np.asarray(onnx_p)[:, 1],
    }


def test_every_format_scores_every_row_like_sklearn(
    packaged: Callable[[str], Packaged],
) -> None:
    """mlflow_model/ through mlflow.pyfunc.load_model, and model.onnx through a bare
    onnxruntime session, against the sklearn pipeline's predict_proba, computed here."""
    built = packaged("server")
    assert built.result.returncode == 0, describe(built.result)
    rows = parse_records(
        (built.project.root / "data/raw/processed.cleveland.data").read_bytes(), SPEC
    ).frame
    assert len(rows) == 303 and rows[list(RAW_FEATURES)].isna().any().any()
    scores = _scores(built.directory, rows)
    np.testing.assert_allclose(scores["pyfunc"], scores["sklearn"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(scores["onnx"], scores["sklearn"], rtol=0, atol=1e-5)
    recorded = json.loads((built.directory / "parity_reference.json").read_text())
    np.testing.assert_allclose(recorded["expected_probability"], scores["sklearn"], atol=1e-12)


def test_verify_refuses_a_valid_graph_of_another_model_on_parity(
    packaged: Callable[[str], Packaged], swapped_graph: Path
) -> None:
    built = packaged("embedded")
    rows = parse_records(
        (built.project.root / "data/raw/processed.cleveland.data").read_bytes(), SPEC
    ).frame
    scores = _scores(swapped_graph, rows)
    assert np.max(np.abs(scores["onnx"] - scores["sklearn"])) > 1e-3  # really another model
    result = built.project.run("heartml", "package", "verify", str(swapped_graph))
    assert result.returncode != 0, describe(result)
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[0]
    assert line.startswith("error: parity: model.onnx disagrees with model.joblib"), line
    assert "sha256" not in result.stderr and "over 303 reference rows" in line, line


def test_serve_refuses_a_valid_graph_of_another_model_on_parity(
    swapped_graph: Path, tmp_path: Path
) -> None:
    server = launch_server(tmp_path / "serve", args=("--package", str(swapped_graph)))
    try:
        deadline = time.monotonic() + 30
        while True:
            ready = httpx.get(f"{server.url}/ready", timeout=5)
            detail = str(ready.json()["detail"])
            if "rejected" in detail or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert ready.status_code == 503, ready.text
        assert "parity" in detail and "model.onnx" in detail and "sha256" not in detail, detail
        predict = httpx.post(f"{server.url}/predict", json=SEED_BODY, timeout=5)
        assert predict.status_code == 503 and "parity" in predict.json()["detail"]
        rejected = [
            line for line in server.log_lines() if line["message"] == "model package rejected"
        ]
        assert len(rejected) == 1, server.log()
        assert rejected[0]["reason"].startswith("parity: model.onnx disagrees"), rejected[0]
    finally:
        server.stop()
