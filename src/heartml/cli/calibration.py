"""`heartml recalibrate --site S [--rollback]`: a site's calibration from its own outcomes
(heartml.calibration.updating), recorded in MLflow and beside the packages.

Exit codes: 0 accepted, or rolled back; 1 rejected by the gate (what is served stays);
3 declined (too few outcomes, one outcome only: try again when more have come back);
2 cannot run (bad option, no MLflow, no store, no predictions, nothing to roll back).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from heartml.calibration.limits import MIN_OUTCOMES
from heartml.cli.context import clear_errors, console, fail, state_of
from heartml.cli.store import store_engine
from heartml.sites import SITE_PATTERN, SITE_RULE

if TYPE_CHECKING:
    from heartml.calibration.updating import ModelVersion, Result, SiteOutcomes
    from heartml.settings import Settings
    from heartml.tracking.registry import Registry

EXIT_REJECTED = 1
EXIT_DECLINED = 3

app = typer.Typer()


def calibrated_version(
    registry: Registry, model_name: str | None, model_version: str | None
) -> ModelVersion:
    """The version named by the options, else the champion (across the registered names)."""
    from heartml.calibration.updating import ModelVersion

    if model_name is not None and model_version is not None:
        found = registry.find_version(model_name, model_version)
    else:
        found = registry.require_champion()
    return ModelVersion(found.model_name, found.version)


def read_site(settings: Settings, site: str, model: ModelVersion) -> SiteOutcomes:
    from heartml.calibration.updating import RecalibrationError, site_outcomes
    from heartml.store.engine import error_text, shown, sqlite_path

    engine = store_engine(settings)
    path = sqlite_path(engine.url)
    if path is not None and not path.is_file():
        fail(f"prediction store {shown(engine.url)}: no such database (nothing was recorded)")
    try:
        return site_outcomes(engine, site, model)
    except RecalibrationError as exc:
        fail(str(exc))
    except Exception as exc:
        fail(f"prediction store {shown(engine.url)}: {error_text(exc)}")
    finally:
        engine.dispose()


def print_result(result: Result, site: str, model: ModelVersion) -> None:
    decision, fit = result.decision, result.fit
    if fit is not None:
        figures = decision.figures
        console.print(
            f"site {site}, {model}: {figures['outcomes']} outcomes ({figures['positives']} "
            f"positive), {fit.folds}-fold CV",
            highlight=False,
        )
        console.print(f"  {'method':<14}{'CV Brier':>10}{'CV log-loss':>13}", highlight=False)
        for candidate in fit.candidates:
            mark = "  <- chosen" if candidate is fit.chosen else ""
            console.print(
                f"  {candidate.method:<14}{candidate.brier:>10.4f}{candidate.log_loss:>13.4f}"
                f"{mark}",
                highlight=False,
            )
        for reason in fit.dropped.values():
            console.print(f"  dropped: {reason}", highlight=False)
    console.print(f"{decision.action}: {decision.reason}", highlight=False)
    served = result.served.label if result.served else "the raw model"
    console.print(f"site {site} is served: {served}", highlight=False)


@app.command()
def recalibrate(
    ctx: typer.Context,
    site: Annotated[str, typer.Option(help=f"The site: {SITE_RULE}")],
    min_outcomes: Annotated[
        int, typer.Option(min=1, help="Decline below this many labelled predictions")
    ] = MIN_OUTCOMES,
    rollback: Annotated[
        bool,
        typer.Option(
            "--rollback",
            help="Serve the site what it was served before the "
            "last accepted calibration (or the raw model)",
        ),
    ] = False,
    model_name: Annotated[
        str | None, typer.Option(help="Registered model (default: the champion's)")
    ] = None,
    model_version: Annotated[
        str | None, typer.Option(help="Its version (with --model-name; default: the champion)")
    ] = None,
) -> None:
    """Fit a site's calibration on its outcomes, gate it against what it is served, record it."""
    from heartml.calibration import updating
    from heartml.tracking.calibration_runs import CalibrationRecorder
    from heartml.tracking.registry import Registry

    if not SITE_PATTERN.fullmatch(site):
        fail(f"--site {site!r} is not allowed: expected {SITE_RULE}")
    if (model_name is None) != (model_version is None):
        fail("--model-name and --model-version go together (neither: the champion)")
    settings = state_of(ctx).settings
    calibrations = settings.resolved_calibrations_dir
    with clear_errors():
        registry = Registry.connect(settings)
        model = calibrated_version(registry, model_name, model_version)
        recorder = CalibrationRecorder(registry)
        if rollback:
            result = updating.rollback(calibrations, site, model, recorder)
            print_result(result, site, model)
            return
    data = read_site(settings, site, model)
    with clear_errors():
        result = updating.recalibrate(calibrations, site, model, data, min_outcomes, recorder)
    print_result(result, site, model)
    if result.decision.action == "rejected":
        raise typer.Exit(EXIT_REJECTED)
    if result.decision.action == "declined":
        raise typer.Exit(EXIT_DECLINED)
