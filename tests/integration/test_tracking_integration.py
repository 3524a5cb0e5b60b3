"""Task 3 against real stores: the embedded SQLite store and `mlflow server` on PostgreSQL.

Every command runs as a user runs it (`python src/experiment_tracking.py` in the project
folder, a separate process); the registry is read back with MLflow's own client.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from integration_helpers import (
    BACKENDS,
    MODEL_NAMES,
    REPO_ROOT,
    MlflowServer,
    Project,
    TrackedTwice,
    champions,
    describe,
    free_port,
    registry_client,
    registry_snapshot,
)

pytestmark = [pytest.mark.task3, pytest.mark.integration, pytest.mark.slow]

# The same data and config again: identical folds, so no gain and no variance to test.
KEPT_SAME_DATA = "kept the champion: CV ROC-AUC +0.000000 is below the minimum improvement 0.005"
THRESHOLDS = {"p_value": 0.05, "min_improvement": 0.005, "max_brier_increase": 0.01}


def best_algorithm(project: Project) -> str:
    results = json.loads((project.root / "models" / "evaluation_results.json").read_text())
    return str(results["best_algorithm"])


def pipeline_runs(uri: str) -> list[Any]:
    """The parent run of every pipeline execution, oldest first."""
    client = registry_client(uri)
    experiment = client.get_experiment_by_name("heart-disease")
    assert experiment is not None, "no heart-disease experiment"
    return client.search_runs(
        [experiment.experiment_id],
        filter_string="tags.`heartml.run_type` = 'pipeline'",
        order_by=["attributes.start_time ASC"],
    )


def error_line(stderr: str, alone: bool) -> str:
    """The CLI's one `error:` line, last on stderr, and no traceback.

    alone: nothing else on stderr (otherwise MLflow's own progress lines may precede it).
    """
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], f"expected one error line:\n{stderr}"
    if alone:
        assert len(lines) == 1, f"expected only the error line:\n{stderr}"
    return errors[0]


# --------------------------------------------------------------------------------------------
# Two runs, the gate, --force-champion and rollback (embedded and server)


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_runs_register_versions_1_then_2_with_one_champion(
    tracked_twice: Callable[[str], TrackedTwice], backend: str
) -> None:
    scenario = tracked_twice(backend)
    snapshot = scenario.snapshot
    assert sorted(snapshot) == sorted(MODEL_NAMES)
    for name in MODEL_NAMES:
        assert sorted(snapshot[name]["versions"]) == ["1", "2"], name
        assert f"registered {name} version 1 " in scenario.first.stdout
        assert f"registered {name} version 2 " in scenario.second.stdout
    holders = [
        (n, m["aliases"]["champion"]) for n, m in snapshot.items() if "champion" in m["aliases"]
    ]
    best = f"heart_disease_{best_algorithm(scenario.project)}"
    assert holders == [(best, "1")], "exactly one champion: the first run's best model"

    # Each version is one model run of one pipeline execution, in the project's experiment.
    client = registry_client(scenario.project.store_uri)
    parents = pipeline_runs(scenario.project.store_uri)
    assert len(parents) == 2
    for number, parent in enumerate(parents, start=1):
        registered = json.loads(parent.data.tags["registered_versions"])
        assert registered == {name: str(number) for name in MODEL_NAMES}
        for name in MODEL_NAMES:
            run = client.get_run(snapshot[name]["versions"][str(number)]["run_id"])
            assert run.info.experiment_id == parent.info.experiment_id
            assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
            tags = snapshot[name]["versions"][str(number)]["tags"]
            assert tags["data_sha256"] == parent.data.tags["data_sha256"]
            assert float(tags["cv_roc_auc"]) == pytest.approx(run.data.metrics["cv_roc_auc_mean"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_decision_is_recorded_and_the_same_data_keeps_the_champion(
    tracked_twice: Callable[[str], TrackedTwice], backend: str, tmp_path: Path
) -> None:
    scenario = tracked_twice(backend)
    uri = scenario.project.store_uri
    best = f"heart_disease_{best_algorithm(scenario.project)}"
    first, second = pipeline_runs(uri)

    assert first.data.tags["promotion.decision"] == "promoted"
    assert first.data.tags["promotion.reason"] == "no champion yet"
    assert second.data.tags["promotion.decision"] == "kept"
    reason = second.data.tags["promotion.reason"]
    assert reason.startswith(KEPT_SAME_DATA), reason
    assert "Δ +0.0000" in reason and "p=undefined" in reason, reason  # same data, same folds
    assert f"champion decision: kept - {KEPT_SAME_DATA}" in scenario.second.stdout

    versions = scenario.snapshot[best]["versions"]
    assert versions["1"]["tags"]["promotion_decision"] == "promoted: no champion yet"
    assert versions["2"]["tags"]["promotion_decision"].startswith(f"kept: {KEPT_SAME_DATA}")
    client = registry_client(uri)
    for parent in (first, second):
        path = client.download_artifacts(parent.info.run_id, "promotion_decision.json", tmp_path)
        record = json.loads(Path(path).read_text())
        assert record["reason"] == parent.data.tags["promotion.reason"]
        assert record["thresholds"] == THRESHOLDS  # what the decision was judged by
        assert json.loads(parent.data.tags["promotion.thresholds"]) == THRESHOLDS
        assert record["candidate"]["model_name"] == best


@pytest.mark.parametrize("backend", BACKENDS)
def test_force_champion_moves_it_and_rollback_restores_it(
    tracked_twice: Callable[[str], TrackedTwice], backend: str
) -> None:
    scenario = tracked_twice(backend)
    project, uri = scenario.project, scenario.project.store_uri
    best = f"heart_disease_{best_algorithm(project)}"
    assert champions(uri) == [(best, "1")]

    forced = project.track("--force-champion")
    assert "champion decision: promoted - forced with --force-champion" in forced.stdout
    assert champions(uri) == [(best, "3")]
    assert pipeline_runs(uri)[-1].data.tags["promotion.reason"] == "forced with --force-champion"
    aliases = registry_client(uri).get_registered_model(best).aliases
    assert str(aliases["champion_previous"]) == "1", "the previous champion stays findable"

    rolled = project.run("heartml", "rollback")
    assert rolled.returncode == 0, describe(rolled)
    assert champions(uri) == [(best, "1")]
    assert f"champion: {best} version 1 " in rolled.stdout


# --------------------------------------------------------------------------------------------
# Team server: concurrency, failures


def test_two_concurrent_runs_lose_no_version(
    mlflow_server: MlflowServer, make_project: Callable[..., Project]
) -> None:
    projects = [make_project(mlflow_server.url) for _ in range(2)]
    processes = [p.popen("python", "src/experiment_tracking.py") for p in projects]
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, f"stdout:\n{stdout}\nstderr:\n{stderr}"

    snapshot = registry_snapshot(mlflow_server.url)
    assert sorted(snapshot) == sorted(MODEL_NAMES)
    run_ids = set()
    for name in MODEL_NAMES:
        versions = snapshot[name]["versions"]
        assert sorted(versions) == ["1", "2"], f"{name}: {sorted(versions)}"
        run_ids |= {v["run_id"] for v in versions.values()}
        # Each process reported its own version of every model: together 1 and 2.
        reported = sorted(
            line.split(" version ")[1].split()[0]
            for stdout, _ in outputs
            for line in stdout.splitlines()
            if line.startswith(f"registered {name} version ")
        )
        assert reported == ["1", "2"], name
    assert len(run_ids) == 8, "every version comes from its own model run"
    assert len(champions(mlflow_server.url)) == 1


def aliases_of(uri: str) -> dict[str, dict[str, str]]:
    """model name -> {alias: version}, every registered model."""
    return {name: model["aliases"] for name, model in registry_snapshot(uri).items()}


@pytest.mark.reliability  # issue 6: "tracking server killed during experiment_tracking"
def test_server_stopped_mid_run_fails_cleanly_and_keeps_the_champion(
    mlflow_server: MlflowServer, make_project: Callable[..., Project]
) -> None:
    project = make_project(mlflow_server.url)
    project.track()
    before = champions(mlflow_server.url)
    assert len(before) == 1
    aliases_before = aliases_of(mlflow_server.url)
    client = registry_client(mlflow_server.url)

    process = project.popen("python", "src/experiment_tracking.py")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if client.search_model_versions(f"name='{MODEL_NAMES[0]}' and version_number=2"):
            break  # the second run registered its first version: stop the server now
        time.sleep(0.1)
    mlflow_server.stop()
    stopped_at = time.monotonic()
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode != 0, f"stdout:\n{stdout}\nstderr:\n{stderr}"
    assert time.monotonic() - stopped_at < 60
    line = error_line(stderr, alone=False)
    assert "failed on http://127.0.0.1" in line, line

    for kept in ("data/processed/provenance.json", "models/evaluation_results.json"):
        assert (project.root / kept).is_file(), f"{kept} was removed"
    mlflow_server.start()  # same database, same port
    assert champions(mlflow_server.url) == before
    # No alias half-moved: champion and champion_previous exactly where they were.
    assert aliases_of(mlflow_server.url) == aliases_before
    decided = [r for r in pipeline_runs(mlflow_server.url) if "promotion.decision" in r.data.tags]
    assert len(decided) == 1, "the interrupted run recorded no decision"


def test_unreachable_server_fails_fast_with_one_line(make_project: Callable[..., Project]) -> None:
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    project = make_project(uri, trained=False)
    started = time.monotonic()
    result = project.run("python", "src/experiment_tracking.py", timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode != 0, describe(result)
    assert elapsed < 60, f"took {elapsed:.0f} s to give up"
    line = error_line(result.stderr, alone=True)
    assert uri in line and "connection refused" in line, line
    assert not (project.root / "models").exists(), "nothing is trained before the server answers"


# A server that accepts and never answers: MLflow's calls run into their timeout. connect()
# gives each call HEARTML_MLFLOW_TIMEOUT_S and two retries with a back-off factor of 1 s: at
# most 3 tries of the timeout plus 2 s of back-off plus up to 1 s of jitter per retry (README).
SILENT_TIMEOUT_S = 1.0
SILENT_BOUND_S = 3 * SILENT_TIMEOUT_S + 2 + 2 * 1.0


def test_a_silent_server_fails_within_the_documented_timeout(
    silent_url: str, tmp_path: Path
) -> None:
    """Registry.connect() against the silent server, timed inside a fresh process (MLflow keeps
    its tracking URI in globals and the environment: nothing leaks into this session), with
    the clock started after the imports."""
    code = (
        "import json, sys, time\n"
        "import mlflow\n"
        "from heartml.errors import TrackingError\n"
        "from heartml.settings import Settings\n"
        "from heartml.tracking.registry import Registry\n"
        "settings = Settings(root=sys.argv[1], mlflow_tracking_uri=sys.argv[2],"
        " mlflow_timeout_s=float(sys.argv[3]))\n"
        "started = time.monotonic()\n"
        "try:\n"
        "    Registry.connect(settings)\n"
        "    message = None\n"
        "except TrackingError as exc:\n"
        "    message = str(exc)\n"
        "print(json.dumps([time.monotonic() - started, message]))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "HEARTML_"))}
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), silent_url, str(SILENT_TIMEOUT_S)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    elapsed, message = json.loads(result.stdout.strip().splitlines()[-1])
    assert message == (
        f"connecting to the tracking server failed on {silent_url}: "
        "no answer within the timeout (MLFLOW_HTTP_REQUEST_TIMEOUT)"
    )
    # + 1 s for the process itself on a busy machine; one default timeout alone would be 20 s.
    assert 3 * SILENT_TIMEOUT_S <= elapsed <= SILENT_BOUND_S + 1, f"gave up after {elapsed:.1f} s"


@pytest.mark.parametrize(
    ("command", "left_alone"),
    [
        (("python", "src/experiment_tracking.py"), ("models", "data/processed", "mlflow.db")),
        (("python", "src/model_packaging.py"), ("packages",)),
    ],
    ids=["track", "package"],
)
def test_commands_against_a_silent_server_end_with_one_line_and_move_nothing(
    silent_url: str,
    make_project: Callable[..., Project],
    command: tuple[str, ...],
    left_alone: tuple[str, ...],
) -> None:
    project = make_project(silent_url, trained=False)
    env = {**project.env, "HEARTML_MLFLOW_TIMEOUT_S": str(SILENT_TIMEOUT_S)}
    started = time.monotonic()
    startup = project.run("python", "-c", "import heartml.cli, mlflow", env=env)
    startup_s = time.monotonic() - started
    assert startup.returncode == 0, describe(startup)
    started = time.monotonic()
    result = project.run(*command, env=env, timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode != 0, describe(result)
    line = error_line(result.stderr, alone=True)
    assert silent_url in line and "no answer within the timeout" in line, line
    assert elapsed < SILENT_BOUND_S + startup_s + 10, f"{elapsed:.1f} s, start-up {startup_s:.1f} s"
    for relative in left_alone:
        assert not (project.root / relative).exists(), f"{relative} was created"


# --------------------------------------------------------------------------------------------
# The seed's commands, and the one-writer rule


def test_seed_debug_command_lists_the_four_models(
    tracked_twice: Callable[[str], TrackedTwice],
) -> None:
    project = tracked_twice("embedded").project
    result = project.run(
        "python",
        "-c",
        "from mlflow import MlflowClient; client = MlflowClient(); "
        "print([m.name for m in client.search_registered_models()])",
    )
    assert result.returncode == 0, describe(result)
    listed = ast.literal_eval(result.stdout.strip().splitlines()[-1])
    assert sorted(listed) == sorted(MODEL_NAMES)


@pytest.mark.parametrize("backend", BACKENDS)
def test_seed_packager_snippet_gives_the_champion(
    tracked_twice: Callable[[str], TrackedTwice], backend: str
) -> None:
    project = tracked_twice(backend).project
    result = project.run(
        "python",
        "-c",
        "import json; from src.model_packaging import ModelPackager; "
        "info = ModelPackager().get_champion_model_info(); print(json.dumps(info))",
    )
    assert result.returncode == 0, describe(result)
    info = json.loads(result.stdout.strip().splitlines()[-1])
    [(name, version)] = champions(project.store_uri)
    assert (info["model_name"], info["version"]) == (name, version)
    assert 0.5 < info["roc_auc"] <= 1.0
    tags = registry_client(project.store_uri).get_model_version(name, version).tags
    assert info["roc_auc"] == pytest.approx(float(tags["cv_roc_auc"]))


def test_no_other_command_creates_or_changes_a_version(
    make_project: Callable[..., Project],
) -> None:
    # From scratch: tracking runs Tasks 1-2 itself when there is nothing to reuse.
    project = make_project(trained=False)
    tracked = project.track()
    assert "reused the Task 2 models" not in tracked.stdout
    before = registry_snapshot(project.store_uri)
    assert len(champions(project.store_uri)) == 1

    for command in (
        ("heartml", "data"),
        ("heartml", "train"),
        ("python", "src/model_packaging.py"),
        ("heartml", "package", "verify"),
        ("heartml", "champion"),
        ("heartml", "registry"),
    ):
        result = project.run(*command)
        assert result.returncode == 0, describe(result)
        assert registry_snapshot(project.store_uri) == before, f"{' '.join(command)} changed it"


def test_concurrent_promotions_on_two_models_leave_exactly_one_champion(tmp_path: Path) -> None:
    """The later `promoted_at` wins whichever side writes last: both orders, made deterministic
    in one process (the real race of two processes is test_promotion_race.py)."""
    from heartml.settings import Settings
    from heartml.tracking.promotion import PromotionDecision
    from heartml.tracking.registry import Registry
    from heartml.tracking.versions import RegisteredVersion

    # The registered names come from the project's dataset spec.
    shutil.copytree(REPO_ROOT / "configs" / "datasets", tmp_path / "configs" / "datasets")
    settings = Settings(root=tmp_path)
    client = registry_client(settings.tracking_uri)
    forest, logistic = "heart_disease_random_forest", "heart_disease_logistic_regression"
    for name in (forest, logistic):
        client.create_registered_model(name)
        client.create_model_version(name, source=(tmp_path / name).as_uri(), run_id=None)
    ours = PromotionDecision(
        True, "test", RegisteredVersion("logistic_regression", logistic, "1", "r", 0.9), None
    )
    registry = Registry(client, settings)

    # Another process promoted the forest after ours began: ours steps back, theirs stays.
    client.set_model_version_tag(forest, "1", "promoted_at", "2999-01-01T00:00:00+00:00")
    client.set_registered_model_alias(forest, "champion", "1")
    registry.apply_promotion(ours)
    assert champions(settings.tracking_uri) == [(forest, "1")]

    # An older holder (a finished promotion) loses the alias to ours.
    client.set_model_version_tag(forest, "1", "promoted_at", "2000-01-01T00:00:00+00:00")
    registry.apply_promotion(ours)
    assert champions(settings.tracking_uri) == [(logistic, "1")]
