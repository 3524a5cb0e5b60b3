"""`heartml monitor check`: the prediction store against the served package's reference and
its CV figures (heartml.monitoring.checks). Exit 0: nothing crossed a limit; 1: one line per
reason (for a CronJob, the compose stack and the scheduled workflow); 2: cannot check."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from heartml.cli.context import clear_errors, console, fail, state_of
from heartml.cli.store import store_engine
from heartml.monitoring.checks import Limits

if TYPE_CHECKING:
    from heartml.package.manifest import VerifiedPackage
    from heartml.settings import Settings

app = typer.Typer(
    help="Monitoring from the prediction store: checks and the report.", no_args_is_help=True
)

_UNITS = {"m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([mhdw])")
DURATION_RULE = "a number and a unit m, h, d or w (30m, 12h, 7d, 2w)"


def parse_duration(text: str) -> float:
    """'7d' -> seconds; a bad value ends the command with one line naming it and the form."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or float(match.group(1)) <= 0:
        fail(f"--since {text!r} is not a duration: expected {DURATION_RULE}")
    return float(match.group(1)) * _UNITS[match.group(2)]


Since = Annotated[
    str,
    typer.Option(help=f"How far back to look: {DURATION_RULE}"),
]
Package = Annotated[
    Path | None,
    typer.Option(help="The served package (default: HEARTML_MODEL_PACKAGE, else the newest)"),
]


def served_package(settings: Settings, package: Path | None) -> VerifiedPackage:
    from heartml.package.manifest import newest_package_or_fail, read_package

    with clear_errors():
        directory = package or settings.model_package
        if directory is None:
            catalog = settings.catalog
            directory = newest_package_or_fail(catalog.packages_dir, catalog.spec.package_prefix)
        return read_package(directory)


@app.command("check")
def monitor_check(ctx: typer.Context, since: Since = "7d", package: Package = None) -> None:
    """Exit 1 naming every feature that drifted and a live ROC-AUC below the CV interval."""
    from heartml.monitoring.checks import check
    from heartml.store.engine import error_text, shown, sqlite_path

    seconds = parse_duration(since)
    settings = state_of(ctx).settings
    verified = served_package(settings, package)
    engine = store_engine(settings)
    path = sqlite_path(engine.url)
    if path is not None and not path.is_file():
        fail(f"prediction store {shown(engine.url)}: no such database (nothing was recorded)")
    limits = Limits.of(settings)
    try:
        result = check(engine, verified, seconds, limits)
    except Exception as exc:
        fail(f"prediction store {shown(engine.url)}: {error_text(exc)}")
    model = verified.model_config.model
    performance = result.performance
    labels = performance.labelled.count if performance is not None else 0
    console.print(
        f"{model.name} v{model.version} ({verified.directory.name}), last {since}: "
        f"{result.inputs:,} predictions, {labels:,} outcomes for this version",
        highlight=False,
    )
    for reason in result.reasons:
        console.print(reason, highlight=False)
    if result.alarm:
        raise typer.Exit(1)
    console.print("ok: no drift or performance limit crossed", highlight=False)


@app.command("report")
def monitor_report(ctx: typer.Context, since: Since = "7d", package: Package = None) -> None:
    """reports/monitoring/index.html: volume, drift, realised and estimated performance,
    calibration, breakdowns by model version and subgroup, and a page per site (before and
    after its calibration)."""
    from heartml.reports.monitoring import build_report
    from heartml.spec import SpecError, spec_from_text
    from heartml.store.engine import error_text, shown, sqlite_path

    seconds = parse_duration(since)
    settings = state_of(ctx).settings
    verified = served_package(settings, package)
    try:
        spec = spec_from_text(verified.spec_text, "dataset_spec.yaml")
    except SpecError as exc:
        fail(str(exc))
    engine = store_engine(settings)
    path = sqlite_path(engine.url)
    if path is not None and not path.is_file():
        fail(f"prediction store {shown(engine.url)}: no such database (nothing was recorded)")
    limits = Limits.of(settings)
    out_dir = settings.resolved_root / "reports" / "monitoring"
    with console.status("reading the store and drawing the report"):
        try:
            page = build_report(
                engine, verified, spec, seconds, limits, out_dir,
                calibrations=settings.resolved_calibrations_dir,
            )  # fmt: skip
        except Exception as exc:
            fail(f"prediction store {shown(engine.url)}: {error_text(exc)}")
    console.print(f"monitoring report: {page}", highlight=False)
