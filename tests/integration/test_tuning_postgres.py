"""Two `heartml tune` worker processes share one Optuna study on a real PostgreSQL server: each
trial gets its own number, nothing is lost or counted twice, and both workers contribute."""

from __future__ import annotations

import subprocess

import optuna
import pytest
from harness.postgres import Postgres
from harness.processes import HEARTML
from harness.projects import Project, describe, new_project

pytestmark = [pytest.mark.scale, pytest.mark.integration, pytest.mark.slow]

TRIALS_PER_WORKER = 5


@pytest.fixture(scope="module")
def tuning_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = Project(new_project(tmp_path_factory.mktemp("tune-pg") / "project"))
    result = project.run("heartml", "data")
    assert result.returncode == 0, describe(result)
    return project


def test_two_workers_complete_distinct_trials_of_one_study(
    postgres: Postgres, tuning_project: Project
) -> None:
    storage = postgres.create_database()  # postgresql+psycopg2://...
    command = [
        HEARTML,
        "tune",
        "--algorithm",
        "random_forest",
        "--study",
        "shared-rf",
        "--storage",
        storage,
        "--n-trials",
        str(TRIALS_PER_WORKER),
    ]
    # Started together, so that they also race to create the schema and the study.
    workers = [
        subprocess.Popen(
            command,
            cwd=tuning_project.root,
            env=tuning_project.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (stdout, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, f"{stdout}\n{stderr}"
        assert f"this worker ran {TRIALS_PER_WORKER} trials" in stdout

    study = optuna.load_study(study_name="shared-rf", storage=storage)
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) == 2 * TRIALS_PER_WORKER  # distinct, total = sum
    assert len(study.trials) == 2 * TRIALS_PER_WORKER  # nothing failed or left running
    by_worker: dict[int, int] = {}
    for trial in trials:
        pid = int(trial.user_attrs["worker"].rsplit(":", 1)[1])
        by_worker[pid] = by_worker.get(pid, 0) + 1
    assert by_worker == {w.pid: TRIALS_PER_WORKER for w in workers}  # both contributed
    assert study.user_attrs["algorithm"] == "random_forest"
    assert study.best_value == max(t.value for t in trials if t.value is not None)

    # A third worker joins the finished study and reports the same best.
    joined = tuning_project.run(*command[:8], "--n-trials", "0")
    assert joined.returncode == 0, describe(joined)
    assert f"{2 * TRIALS_PER_WORKER} complete in all" in joined.stdout
    assert f"best: trial {study.best_trial.number}," in joined.stdout


def test_tune_names_a_storage_that_does_not_answer(tuning_project: Project) -> None:
    result = tuning_project.run(
        "heartml",
        "tune",
        "--algorithm",
        "svm",
        "--storage",
        "postgresql+psycopg2://nobody:secret@127.0.0.1:1/none",
        "--n-trials",
        "1",
    )
    assert result.returncode == 2
    assert "cannot open study 'heartml-svm'" in result.stderr
    assert "secret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
