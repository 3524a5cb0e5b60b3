"""Fixtures for the integration tests: PostgreSQL, mlflow servers, projects, shared scenarios.

The helpers themselves live in harness/ (importable from the test modules).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from harness.mlflow_server import BACKENDS, MlflowServer
from harness.postgres import POSTGRES_URL_ENV, Postgres, throwaway_postgres
from harness.projects import TRAINED_OUTPUTS, Project, TrackedTwice, describe, new_project
from harness.registry import registry_snapshot


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """HEARTML_TEST_POSTGRES_URL's server (as .ci/run provides), else a throwaway cluster."""
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        with throwaway_postgres() as server:
            yield server
        return
    server = Postgres(url)
    try:
        server.connect().close()
    except Exception as exc:
        pytest.fail(f"{POSTGRES_URL_ENV}={url} does not answer: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.drop_created()


@pytest.fixture(scope="session")
def mlflow_server_factory(
    postgres: Postgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], MlflowServer]]:
    """start() -> a new mlflow server on a fresh database; all are stopped at session end."""
    servers: list[MlflowServer] = []

    def start() -> MlflowServer:
        server = MlflowServer(postgres.create_database(), tmp_path_factory.mktemp("mlflow-server"))
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def mlflow_server(mlflow_server_factory: Callable[[], MlflowServer]) -> MlflowServer:
    """A server (and registry) of this test's own: for tests that stop it or need it empty."""
    return mlflow_server_factory()


@pytest.fixture(scope="session")
def trained_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One project through Tasks 1 and 2 (`heartml data`, `heartml train`) for others to copy."""
    project = Project(new_project(tmp_path_factory.mktemp("template") / "project"))
    for command in (("heartml", "data"), ("heartml", "train")):
        result = project.run(*command)
        assert result.returncode == 0, describe(result)
    return project.root


@pytest.fixture(scope="session")
def make_project(
    tmp_path_factory: pytest.TempPathFactory, trained_template: Path
) -> Callable[..., Project]:
    """make_project(tracking_uri=None, trained=True): a new project folder.

    trained: the Task 1-2 outputs are copied in (tracking then reuses them, as for a user).
    """

    def make(tracking_uri: str | None = None, trained: bool = True) -> Project:
        root = new_project(tmp_path_factory.mktemp("project") / "project")
        if trained:
            for relative in TRAINED_OUTPUTS:
                shutil.copytree(trained_template / relative, root / relative)
        return Project(root, tracking_uri)

    return make


@pytest.fixture(scope="session")
def tracked_twice(
    make_project: Callable[..., Project], mlflow_server_factory: Callable[[], MlflowServer]
) -> Callable[[str], TrackedTwice]:
    """tracked_twice(backend) -> the shared two-run scenario on that backend (made once)."""
    made: dict[str, TrackedTwice] = {}

    def get(backend: str) -> TrackedTwice:
        assert backend in BACKENDS, backend
        if backend not in made:
            uri = mlflow_server_factory().url if backend == "server" else None
            project = make_project(uri)
            first = project.track()
            second = project.track()
            made[backend] = TrackedTwice(
                backend, project, first, second, registry_snapshot(project.store_uri)
            )
        return made[backend]

    return get
