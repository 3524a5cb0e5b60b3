"""Using a package: `heartml serve` (the HTTP service) and `heartml score` (batch files)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from heartml.choices import Engine, HttpParser, Loop
from heartml.cli.context import console, errors, fail, state_of
from heartml.serving.server import DEFAULT_WORKERS

app = typer.Typer()


@app.command()
def serve(
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
) -> None:
    """Score a file with a verified package's ONNX model; invalid rows go to a rejects file."""
    from heartml.batch import score_file, scoring_model
    from heartml.errors import HeartmlError
    from heartml.package.manifest import newest_package_or_fail, read_package

    if scheduler is not None and engine != "dask":
        fail("--scheduler needs --engine dask")
    try:
        directory = package
        if directory is None:  # the newest package of this dataset (its spec's prefix)
            catalog = state_of(ctx).settings.catalog
            directory = newest_package_or_fail(catalog.packages_dir, catalog.spec.package_prefix)
        model = scoring_model(read_package(directory))
        console.print(f"model: {model.version} from {directory} (checksums verified)")
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
            )
    except HeartmlError as exc:
        fail(str(exc) + (f" ({exc.hint})" if exc.hint else ""))
    except (OSError, TimeoutError) as exc:
        fail(str(exc) or type(exc).__name__)
    console.print(
        f"{summary.rows:,} rows: {summary.scored:,} scored ({summary.imputed:,} with imputed "
        f"values), {summary.rejected:,} rejected; {summary.rows_per_second:,.0f} rows/s "
        f"({summary.engine} engine, {summary.partitions} chunks)"
    )
    console.print(f"scores:  {summary.output}")
    console.print(f"rejects: {summary.rejects}")
