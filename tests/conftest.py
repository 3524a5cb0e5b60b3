"""Shared fixtures: the shipped Cleveland file, a throwaway project root, a fast config.

Tests never touch the internet: HEARTML_OFFLINE is set for the whole session, before any
Settings object can be built.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

os.environ["HEARTML_OFFLINE"] = "1"

from heartml.config import PipelineConfig, parse_config
from heartml.data.parse import parse_records
from heartml.settings import Settings
from heartml.spec import DatasetSpec, load_spec

REPO_ROOT = Path(__file__).resolve().parents[1]
RAW_FILE = REPO_ROOT / "data" / "raw" / "processed.cleveland.data"
CONFIG_FILE = REPO_ROOT / "configs" / "pipeline.yaml"
HEART_SPEC_FILE = REPO_ROOT / "configs" / "datasets" / "uci_heart.yaml"

HEARTML_BIN = REPO_ROOT / ".venv" / "bin" / "heartml"


def run_tests_selections() -> tuple[str, ...]:
    """The selection markers of run_tests.py (--task1 .. --scale), read from the script itself."""
    spec = importlib.util.spec_from_file_location("run_tests", REPO_ROOT / "run_tests.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return tuple(module.SELECTIONS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that no `run_tests.py --<selection>` would run is a collection error, not a test
    that silently runs only in the full suite."""
    selections = set(run_tests_selections())
    orphans = [
        item.nodeid for item in items if not selections & {m.name for m in item.iter_markers()}
    ]
    if orphans:
        raise pytest.UsageError(
            f"{len(orphans)} tests carry none of the run_tests.py selection markers "
            f"({', '.join(sorted(selections))}): {', '.join(orphans[:10])}"
        )


@pytest.fixture(scope="session")
def raw_bytes() -> bytes:
    return RAW_FILE.read_bytes()


@pytest.fixture(scope="session")
def heart_spec() -> DatasetSpec:
    """The reference dataset's spec, as shipped."""
    return load_spec(HEART_SPEC_FILE)


@pytest.fixture(scope="session")
def _cleveland(raw_bytes: bytes, heart_spec: DatasetSpec) -> pd.DataFrame:
    return parse_records(raw_bytes, heart_spec).frame


@pytest.fixture
def cleveland(_cleveland: pd.DataFrame) -> pd.DataFrame:
    # A fresh copy per test: tests may edit it.
    return _cleveland.copy()


def make_project(root: Path) -> Settings:
    """A project root with its own data/raw and configs; data/processed, models, reports start
    empty, so nothing a test runs can touch the real repository's outputs."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO_ROOT / "data" / "raw", root / "data" / "raw")
    shutil.copytree(REPO_ROOT / "configs", root / "configs")
    return Settings(root=root, offline=True)


@pytest.fixture(scope="session")
def project_factory() -> Callable[[Path], Settings]:
    return make_project


@pytest.fixture
def project(tmp_path: Path) -> Settings:
    return make_project(tmp_path)


def shrink_config(raw: dict[str, Any]) -> dict[str, Any]:
    """The shipped config, made small enough for tests to train all four models in seconds."""
    raw = dict(raw)
    raw["evaluation"] = {**raw["evaluation"], "cv_folds": 3, "cv_repeats": 2}
    raw["evaluation"]["permutation_repeats"] = 2
    raw["tuning"] = {**raw["tuning"], "cv_folds": 3, "cv_repeats": 1}
    models = {name: dict(spec) for name, spec in raw["models"].items()}
    models["logistic_regression"]["search_space"] = {"C": [0.1, 1.0]}
    models["random_forest"]["params"] = {**models["random_forest"]["params"], "n_estimators": 30}
    models["random_forest"]["search_space"] = {"max_depth": [3, None]}
    models["gradient_boosting"]["params"] = {
        **models["gradient_boosting"]["params"],
        "n_estimators": 30,
    }
    models["gradient_boosting"]["search_space"] = {"max_depth": [2, 3]}
    models["svm"]["search_space"] = {"C": [0.3, 1.0]}
    raw["models"] = models
    return raw


@pytest.fixture(scope="session")
def small_config() -> PipelineConfig:
    return parse_config(shrink_config(yaml.safe_load(CONFIG_FILE.read_text())))


def cli_env(**overrides: str) -> dict[str, str]:
    """The environment for a `heartml` subprocess: no HEARTML_* leaks from this session."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTML_")}
    env.update(overrides)
    return env


@pytest.fixture(scope="session")
def heartml_cli() -> Callable[..., Any]:
    """Run the installed `heartml` console script in a project folder; returns CompletedProcess."""
    import subprocess

    def run(*args: str, cwd: Path, env: dict[str, str], timeout: float = 120) -> Any:
        return subprocess.run(
            [str(HEARTML_BIN), *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture(scope="session")
def make_cli_env() -> Callable[..., dict[str, str]]:
    return cli_env


@pytest.fixture
def silent_url() -> Iterator[str]:
    """http://127.0.0.1:<port>: a socket that accepts every connection and never says a word
    (reads nothing, answers nothing, closes nothing) until the test ends. What a hung server,
    a stuck proxy or a black-holed load balancer looks like to a client."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    held: list[socket.socket] = []
    closing = threading.Event()

    def accept() -> None:
        while not closing.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:  # the listener was closed: the test is over
                return
            held.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        closing.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        listener.close()
        for connection in held:
            connection.close()
        thread.join(timeout=5)
