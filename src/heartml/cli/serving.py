"""Using a package: `heartml serve` (the HTTP service) and `heartml score` (batch files)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from heartml.choices import Engine, HttpParser, Loop
from heartml.cli.context import clear_errors, console, errors, fail, state_of
from heartml.serving.server import DEFAULT_WORKERS
from heartml.settings import Settings
from heartml.sites import is_site, site_message

if TYPE_CHECKING:
    from heartml.documents.package import Manifest

app = typer.Typer()


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to bind (0.0.0.0 in a container)")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes (default: the measured best)")
    ] = DEFAULT_WORKERS,
    package: Annotated[
        Path | None,
        typer.Option(help="Package folder to serve (default: newest under packages/)"),
    ] = None,
    loop: Annotated[Loop, typer.Option(help="Event loop (auto: uvloop when installed)")] = "auto",
    http: Annotated[
        HttpParser, typer.Option(help="HTTP parser (auto: httptools when installed)")
    ] = "auto",
) -> None:
    """Serve predictions over HTTP: /predict, /docs, /metrics, the web page at /."""
    from heartml.serving.server import serve as run_server
    from heartml.serving.server import uvicorn_choices

    if package is not None and not package.is_dir():
        fail(f"--package {package}: not a folder")
    if package is None:
        from heartml.serving.source_choice import check_source

        with clear_errors():  # a model source that cannot work here: one line, before uvicorn
            check_source(state_of(ctx).settings)
    if workers > 1 and uvicorn_choices(loop, http)[0] == "asyncio":
        # Measured: uvicorn hands the workers a socket on which asyncio's transports leave
        # Nagle's algorithm on, and every response then waits ~44 ms for a delayed ACK.
        errors.print(
            "[yellow]warning:[/] the asyncio loop with --workers > 1 answers in ~44 ms "
            "(Nagle's algorithm stays on); use --loop uvloop",
            highlight=False,
        )
    run_server(host, port, workers, package, loop, http)


@app.command()
def score(
    ctx: typer.Context,
    input_path: Annotated[
        Path, typer.Option("--input", "-i", help="Patients: .csv, .parquet or raw UCI .data")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Scores: .parquet or .csv")],
    package: Annotated[
        Path | None, typer.Option(help="Package folder (default: newest under packages/)")
    ] = None,
    chunk_size: Annotated[
        int, typer.Option(min=1, help="Rows per chunk (Dask: per partition)")
    ] = 100_000,
    engine: Annotated[
        Engine, typer.Option(help="local, or dask (partitions on Dask workers)")
    ] = "local",
    scheduler: Annotated[
        str | None,
        typer.Option(help="Dask scheduler address, e.g. tcp://host:8786 (default: LocalCluster)"),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="LocalCluster worker processes (no --scheduler)")
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(help="Invalid rows with reasons (default: <output>.rejects.csv)"),
    ] = None,
    record: Annotated[
        bool,
        typer.Option(
            help="Also record the scored rows in the prediction store (HEARTML_STORE_URL)"
        ),
    ] = False,
    site: Annotated[
        str | None,
        typer.Option(
            help="The rows' site: its active calibration (HEARTML_CALIBRATIONS_DIR) is applied, "
            "the model's own probability written beside it as model_probability"
        ),
    ] = None,
) -> None:
    """Score a file with a verified package's ONNX model; invalid rows go to a rejects file."""
    from heartml.batch import score_file, scoring_model
    from heartml.errors import HeartmlError
    from heartml.package.manifest import newest_package_or_fail, read_package

    if scheduler is not None and engine != "dask":
        fail("--scheduler needs --engine dask")
    if site is not None and not is_site(site):
        fail(f"--site: {site_message(site)}")
    settings = state_of(ctx).settings
    recorder = None
    try:
        directory = package
        if directory is None:  # the newest package of this dataset (its spec's prefix)
            catalog = settings.catalog
            directory = newest_package_or_fail(catalog.packages_dir, catalog.spec.package_prefix)
        verified = read_package(directory)
        model = scoring_model(verified)
        console.print(f"model: {model.version} from {directory} (checksums verified)")
        if site is not None:
            model = _calibrated(settings, verified.manifest, model, site)
        recorder = _batch_recorder(settings, verified.manifest, model, site) if record else None
        with Progress(
            TextColumn("[bold]scoring"),
            BarColumn(),
            TextColumn("{task.completed:,.0f} rows"),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("scoring", total=None)
            summary = score_file(
                input_path,
                output,
                model,
                chunk_size=chunk_size,
                rejects_path=rejects,
                engine=engine,
                scheduler=scheduler,
                workers=workers,
                progress=lambda rows, total: bar.update(task, advance=rows, total=total),
                on_scored=recorder,
            )
    except HeartmlError as exc:
        fail(str(exc) + (f" ({exc.hint})" if exc.hint else ""))
    except (OSError, TimeoutError) as exc:
        fail(str(exc) or type(exc).__name__)
    except Exception as exc:  # the prediction store failed mid-run (SQLAlchemy's errors)
        if recorder is None:
            raise
        from heartml.store.engine import error_text

        fail(
            f"prediction store: {error_text(exc)}; {recorder.recorded:,} rows were "
            f"recorded as request_id {recorder.request_id} before it failed"
        )
    console.print(
        f"{summary.rows:,} rows: {summary.scored:,} scored ({summary.imputed:,} with imputed "
        f"values), {summary.rejected:,} rejected; {summary.rows_per_second:,.0f} rows/s "
        f"({summary.engine} engine, {summary.partitions} chunks)"
    )
    console.print(f"scores:  {summary.output}")
    console.print(f"rejects: {summary.rejects}")
    if recorder is not None:
        console.print(
            f"recorded: {recorder.recorded:,} predictions as request_id {recorder.request_id} "
            "(send outcomes as request_id + the output's row)"
        )


def _calibrated(settings: Settings, manifest: Manifest, model: Any, site: str) -> Any:
    """The scoring model with the site's active calibration for this model version, if any
    (a refused calibration file: a warning, and the model's own probabilities)."""
    import dataclasses

    from heartml.calibration.files import load_active

    name, version = manifest.model_name or "?", manifest.version or "?"
    active = load_active(settings.resolved_calibrations_dir, name, version)
    calibration = active.by_site.get(site)
    if calibration is not None:
        console.print(f"calibration: site {calibration.label} applied")
        return dataclasses.replace(model, calibration=calibration)
    if site in active.problems:
        errors.print(
            f"[yellow]warning:[/] the calibration of site {site} is refused "
            f"({active.problems[site]}): the model's own probabilities",
            highlight=False,
        )
    else:
        console.print(f"calibration: none for site {site} ({name} v{version}): the model's own")
    return model


def _batch_recorder(settings: Settings, manifest: Manifest, model: Any, site: str | None) -> Any:
    """A prediction-store recorder for `score --record` (its schema migrated first)."""
    from heartml.store.batch import BatchRecorder
    from heartml.store.engine import create_engine, error_text, shown, upgrade

    engine = create_engine(settings.resolved_store_url)
    try:
        upgrade(engine, create_parent=True)
    except Exception as exc:
        fail(f"prediction store {shown(engine.url)}: {error_text(exc)}")
    spec = model.contract().spec
    return BatchRecorder(
        engine,
        model_name=manifest.model_name or "?",
        model_version=manifest.version or "?",
        spec_hash=spec.spec_hash(),
        threshold=model.threshold,
        names=tuple(spec.raw_names),
        site=site,
        calibration_version=model.calibration.version if model.calibration else None,
    )
