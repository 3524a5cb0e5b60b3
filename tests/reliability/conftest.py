"""Fixtures of the reliability suite (tests/reliability/, marker `reliability`).

Everything runs against real processes: `heartml serve` on a free loopback port in its own
process group, stopped at the end of each test, serving packages built ONCE per session by the
user's own commands in a temporary project (one small logistic regression, embedded MLflow):

    heartml data; heartml track; heartml package                -> version 1, the champion
    (config: C 100x smaller)
    heartml track --force-champion; heartml package             -> version 2, the champion
                                                                   (version 1: champion_previous)

The two versions answer differently (version 2 is far more regularised), so a test that swaps
between them can tell from each probability which graph answered.

Projects, servers and the load threads are the integration tests' (integration_helpers.py).
The measured numbers are printed at the end of the run ("reliability numbers").
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

# The integration tests' helpers, shared rather than copied.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from integration_helpers import (
    HEARTML,
    Project,
    Server,
    describe,
    launch_server,
    new_project,
    small_config_text,
)
from reliability_helpers import NUMBERS, Built, manifest_of


def single_model_config_text(c_values: tuple[float, ...] = (0.1, 1.0)) -> str:
    """The integration tests' small config, cut to one logistic regression: a real package in
    seconds, and `heartml track` registers one model per run."""
    raw = yaml.safe_load(small_config_text())
    raw["models"] = {"logistic_regression": raw["models"]["logistic_regression"]}
    raw["models"]["logistic_regression"]["search_space"] = {"C": list(c_values)}
    raw["evaluation"].update(cv_repeats=1, permutation_repeats=1)
    return yaml.safe_dump(raw, sort_keys=False)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """One project, two champion versions, each packaged (both stay in project/packages)."""
    root = new_project(tmp_path_factory.mktemp("reliability") / "project")
    (root / "configs" / "pipeline.yaml").write_text(single_model_config_text())
    project = Project(root)
    for command in (("heartml", "data"), ("heartml", "track"), ("heartml", "package")):
        result = project.run(*command)
        assert result.returncode == 0, describe(result)
    (root / "configs" / "pipeline.yaml").write_text(single_model_config_text((0.001,)))
    for command in (("heartml", "track", "--force-champion"), ("heartml", "package")):
        result = project.run(*command)
        assert result.returncode == 0, describe(result)
    packages = sorted(
        (root / "packages").glob("heart_disease_model_*"),
        key=lambda directory: int(manifest_of(directory)["version"]),
    )
    assert [manifest_of(p)["version"] for p in packages] == ["1", "2"], packages
    return Built(project, packages[0], packages[1])


@pytest.fixture
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Server]]:
    """serve(packages=(...), args=(), root=None, command=(heartml,), **env) -> a running
    `heartml serve` (env: HEARTML_* settings, MLFLOW_TRACKING_URI); every server the test
    started is stopped (its process group) when the test ends."""
    servers: list[Server] = []

    def start(
        packages: tuple[Path, ...] = (),
        args: tuple[str, ...] = (),
        root: Path | None = None,
        command: tuple[str, ...] = (HEARTML,),
        **env: str,
    ) -> Server:
        server = launch_server(
            root or tmp_path_factory.mktemp("serve"), packages, args, env, command
        )
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not NUMBERS:
        return
    terminalreporter.section("reliability numbers")
    for test, numbers in NUMBERS.items():
        shown = ", ".join(f"{key}={value}" for key, value in numbers.items())
        terminalreporter.write_line(f"{test}: {shown}")
