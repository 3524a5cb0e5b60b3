"""`heartml recalibrate` in a project: a real SQLite prediction store written through the store's
own insert and feedback paths, a real embedded MLflow store with a registered champion, the
command run in-process (Click's runner). Oracles: the files on disk, MLflow's own client."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import statsmodels.api as sm
from typer.testing import CliRunner

from heartml.calibration.document import SiteCalibration, apply, clipped_logit
from heartml.calibration.files import (
    active_version,
    decisions,
    read_calibration,
    site_dir,
    version_dir,
    versions,
)
from heartml.cli import app
from heartml.settings import Settings
from heartml.store.engine import create_engine, upgrade
from heartml.store.outcomes import Outcome, record_outcomes
from stored_predictions import store_predictions

pytestmark = [pytest.mark.monitoring, pytest.mark.slow]

ALGORITHM = "logistic_regression"


@pytest.fixture
def recal(
    project: Settings,
    empty_store: Path,
    isolated_mlflow: None,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    for name in [k for k in __import__("os").environ if k.startswith("HEARTML_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HEARTML_OFFLINE", "1")
    monkeypatch.chdir(project.root)
    shutil.copyfile(empty_store, project.root / "mlflow.db")
    settings = Settings(root=project.root)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    name = settings.registered_model_name(ALGORITHM)
    client.create_registered_model(name)
    version = client.create_model_version(name, source=(project.root / "m").as_uri()).version
    client.set_registered_model_alias(name, "champion", version)
    engine = create_engine(settings.resolved_store_url)
    upgrade(engine, create_parent=True)

    class Project:
        model_name, model_version = name, str(version)
        mlflow = client
        root = project.root
        calibrations = settings.resolved_calibrations_dir

        def record(
            self, site: str, drawn: Any, prefix: str, served: SiteCalibration | None = None
        ) -> None:
            """The site's predictions as served (calibrated by `served`), with their outcomes."""
            ids = [f"{prefix}-{i}" for i in range(len(drawn.outcome))]
            inputs = drawn.frame[list(settings.catalog.spec.raw_names)].to_numpy(float).tolist()
            shown = drawn.probability if served is None else apply(served, drawn.probability)
            store_predictions(
                engine,
                settings.catalog.spec,
                ids,
                inputs,
                probabilities=shown.tolist(),
                site=site,
                model_version=self.model_version,
                raw_probabilities=None if served is None else drawn.probability.tolist(),
                calibration_version=None if served is None else served.version,
            )
            record_outcomes(
                engine, [Outcome(i, 0, int(y)) for i, y in zip(ids, drawn.outcome, strict=True)]
            )

        def run(self, *args: str) -> Any:
            return CliRunner().invoke(app, ["recalibrate", *args], terminal_width=300)

        def folder(self, site: str) -> Path:
            return site_dir(self.calibrations, self.model_name, self.model_version, site)

    yield Project()
    engine.dispose()


def one_line(text: str) -> str:
    return " ".join(text.split())


def test_decline_accept_accept_reject_and_roll_back_to_the_raw_model(
    recal: Any, make_site: Callable[..., Any]
) -> None:
    north = recal.folder("north")
    recal.record("north", make_site(0.8, n=60, seed=1), "a")
    declined = recal.run("--site", "north")
    assert declined.exit_code == 3, declined.output
    assert "site 'north' has 60 outcomes; at least 100 are needed" in one_line(declined.output)
    assert versions(north) == [] and active_version(north) is None

    recal.record("north", make_site(0.8, n=100, seed=2), "b")
    first = recal.run("--site", "north")
    assert first.exit_code == 0, first.output
    assert "accepted:" in first.output and "site north is served: north v1" in first.output
    assert versions(north) == [1] and active_version(north) == 1
    v1 = read_calibration(version_dir(north, 1))
    assert v1.window.outcomes == 160 and v1.method in ("in_the_large", "logistic")
    # MLflow: one run in the calibration experiment, its artifact the very file, the version
    # tagged, and no model version created.
    run = recal.mlflow.get_run(v1.mlflow_run_id)
    assert run.data.tags["heartml.calibration.decision"] == "accepted"
    assert run.data.params["site"] == "north" and run.data.params["outcomes"] == "160"
    assert float(run.data.metrics[f"cv_brier.{v1.method}"]) == pytest.approx(
        next(c.brier for c in v1.cv if c.method == v1.method)
    )
    experiment = recal.mlflow.get_experiment(run.info.experiment_id)
    assert experiment.name.endswith("-site-calibration")
    artifact = Path(recal.mlflow.download_artifacts(run.info.run_id, "calibration.json"))
    assert artifact.read_bytes() == (version_dir(north, 1) / "calibration.json").read_bytes()
    tags = recal.mlflow.get_model_version(recal.model_name, recal.model_version).tags
    assert tags["heartml.calibration.north"] == f"v1 {v1.method}"
    assert len(recal.mlflow.search_model_versions(f"name='{recal.model_name}'")) == 1

    # The site's case mix changes: v1 (fitted at 0.8) over-predicts; a refit is accepted.
    # These were served calibrated by v1; v2 is fitted on the model's own probabilities.
    sites = [make_site(0.8, n=60, seed=1), make_site(0.8, n=100, seed=2)]
    sites.append(make_site(0.1, n=400, seed=3))
    recal.record("north", sites[-1], "c", served=v1)
    second = recal.run("--site", "north")
    assert second.exit_code == 0, second.output
    assert versions(north) == [1, 2] and active_version(north) == 2
    v2 = read_calibration(version_dir(north, 2))
    raw = np.concatenate([s.probability for s in sites])
    outcomes = np.concatenate([s.outcome for s in sites])
    logit, binomial = clipped_logit(raw), sm.families.Binomial()
    if v2.method == "logistic":
        expected = tuple(sm.GLM(outcomes, sm.add_constant(logit), family=binomial).fit().params)
    else:
        assert v2.method == "in_the_large", v2
        ones = np.ones((len(raw), 1))
        glm = sm.GLM(outcomes, ones, family=binomial, offset=logit).fit()
        expected = (float(glm.params[0]), 1.0)
    assert (v2.intercept, v2.slope) == pytest.approx(expected, abs=1e-5)

    # Nothing new: the refit is no better than v2 (served), the gate keeps v2.
    rejected = recal.run("--site", "north")
    assert rejected.exit_code == 1, rejected.output
    assert "rejected:" in rejected.output and "less than the 0.002" in one_line(rejected.output)
    assert versions(north) == [1, 2, 3] and active_version(north) == 2

    back = recal.run("--site", "north", "--rollback")
    assert back.exit_code == 0, back.output
    assert active_version(north) == 1 and "served: north v1" in back.output
    to_raw = recal.run("--site", "north", "--rollback")
    assert to_raw.exit_code == 0 and active_version(north) is None, to_raw.output
    tags = recal.mlflow.get_model_version(recal.model_name, recal.model_version).tags
    assert tags["heartml.calibration.north"] == "raw model"
    nothing = recal.run("--site", "north", "--rollback")
    assert nothing.exit_code == 2
    assert "no accepted calibration to roll back" in one_line(nothing.output)

    history = decisions(north)
    assert [d.action for d in history] == [
        "declined", "accepted", "accepted", "rejected", "rollback", "rollback",
    ]  # fmt: skip
    assert [(d.active_before, d.active_after) for d in history] == [
        (None, None), (None, 1), (1, 2), (2, 2), (2, 1), (1, None),
    ]  # fmt: skip
    assert history[3].candidate_version == 3 and history[3].figures["brier_improvement"] < 0.002


def test_a_site_with_one_outcome_only_is_declined_with_that_reason(
    recal: Any, make_site: Callable[..., Any]
) -> None:
    recal.record("south", make_site(0.0, n=120, seed=4), "s")
    result = recal.run("--site", "south")
    assert result.exit_code == 3, result.output
    assert "all 120 outcomes are 0" in one_line(result.output)
    [decision] = decisions(recal.folder("south"))
    assert decision.action == "declined" and decision.figures["outcomes"] == 120


@pytest.mark.parametrize("site", ["no/slash", ".hidden", "x" * 65])
def test_a_bad_site_name_is_one_line_naming_the_rule(recal: Any, site: str) -> None:
    result = recal.run("--site", site)
    assert result.exit_code == 2
    assert f"--site {site!r} is not allowed" in one_line(result.output)
    assert "1 to 64 characters" in result.output and "Traceback" not in result.output


def test_a_site_without_predictions_of_the_version_is_an_error(recal: Any) -> None:
    result = recal.run("--site", "east")
    assert result.exit_code == 2
    assert f"no predictions of {recal.model_name} version 1 at 'east'" in one_line(result.output)
    assert not recal.calibrations.exists()


def test_an_unreachable_tracking_server_is_one_line_and_nothing_is_written(
    recal: Any, make_site: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    recal.record("north", make_site(0.8, n=150, seed=2), "b")
    monkeypatch.setenv("HEARTML_MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    result = recal.run("--site", "north")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "connection refused" in lines[0], result.output
    assert not recal.calibrations.exists()


def test_calibration_options_name_a_version_together(recal: Any) -> None:
    result = recal.run("--site", "north", "--model-name", recal.model_name)
    assert result.exit_code == 2 and "go together" in result.output
