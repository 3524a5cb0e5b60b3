"""The `heartml` command line: one subcommand per stage.

Settings and logging are built here (in the callback), never at import time. Known failures end
with one line on stderr and exit code 2, not a traceback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from heartml.config import ALGORITHMS, ConfigError, PipelineConfig, load_config
from heartml.manifest import PACKAGE_ARTIFACT_DIR
from heartml.serving.server import DEFAULT_WORKERS
from heartml.settings import Settings

app = typer.Typer(
    name="heartml",
    help="MLOps pipeline for tabular clinical risk models (UCI heart disease).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(soft_wrap=True)
errors = Console(stderr=True)


class State:
    settings: Settings
    config_path: Path | None = None

    def config(self) -> PipelineConfig:
        return load_config(self.config_path or self.settings.pipeline_config_path)


state = State()


def fail(message: str, code: int = 2) -> NoReturn:
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def clear_errors() -> Iterator[None]:
    """Turn the failures a user can act on into one line (plus its hint) and exit code 2."""
    from heartml.errors import HeartmlError

    try:
        yield
    except HeartmlError as exc:
        fail(str(exc) + (f" ({exc.hint})" if exc.hint else ""))
    except FileNotFoundError as exc:
        fail(str(exc))


@app.callback()
def main(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Experiment parameters (YAML)")
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            "-d",
            help="Dataset spec: a name under configs/datasets/ (default uci_heart, or "
            "HEARTML_DATASET) or a path to a spec file",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        state.settings = Settings(dataset=dataset) if dataset else Settings()
    except Exception as exc:  # pydantic's message names the variable and the value
        fail(f"settings: {exc}".replace("\n", " "))
    state.config_path = config
    from heartml.catalog import spec_path

    # A bad spec stops every command before anything is written; a missing default spec only
    # matters to the commands that need one (a serving container may have no configs/).
    if dataset or spec_path(state.settings.resolved_root, state.settings.dataset).is_file():
        with clear_errors():
            state.settings.catalog  # noqa: B018


def _load_config() -> PipelineConfig:
    try:
        return state.config()
    except ConfigError as exc:
        fail(str(exc))


@app.command()
def data(
    offline: Annotated[
        bool, typer.Option(help="Skip the download and use the shipped copy")
    ] = False,
) -> None:
    """Task 1: acquire (download or shipped copy), validate, split, quality and EDA reports."""
    from heartml.stages import run_data

    config = _load_config()
    settings = state.settings.model_copy(update={"offline": True}) if offline else state.settings
    with clear_errors(), console.status("acquiring, validating and describing the data"):
        result = run_data(settings, config)
    source = result.provenance
    quality = result.quality
    console.print(
        f"data: {source['source']} ({source['location']}), sha256 {source['sha256'][:12]}…"
    )
    for note in source.get("notes", []):
        console.print(f"  note: {note}")
    console.print(
        f"rows: {quality['rows']} parsed, {quality['rows_kept']} kept, "
        f"{quality['rows_rejected']} rejected; train {source['rows_train']}, "
        f"test {source['rows_test']}; prevalence {quality['class_balance']['prevalence']:.1%}"
    )
    console.print(f"processed data: {result.processed_dir}")
    console.print(f"quality report: {state.settings.catalog.quality_file}")
    console.print(f"EDA report:     {result.eda_report}")


@contextmanager
def _progress_bar(total: int) -> Iterator[Callable[[str], None]]:
    with Progress(
        TextColumn("[bold]{task.description:<40}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("training", total=total)

        def advance(message: str) -> None:
            bar.update(task, advance=1, description=message)

        yield advance
        bar.update(task, description="training done")


def _metrics_table(results: dict[str, Any]) -> Table:
    table = Table(title="Models (repeated CV on the training split; test split held out)")
    for column in ("model", "CV ROC-AUC (95% CI)", "CV PR-AUC", "CV Brier", "test ROC-AUC"):
        table.add_column(column)
    for name, model in results["models"].items():
        auc = model["cv_metrics"]["roc_auc"]
        star = " *" if name == results["best_algorithm"] else ""
        table.add_row(
            name + star,
            f"{auc['mean']:.3f} ({auc['ci_low']:.3f}-{auc['ci_high']:.3f})",
            f"{model['cv_metrics']['pr_auc']['mean']:.3f}",
            f"{model['cv_metrics']['brier']['mean']:.3f}",
            f"{model['test_metrics']['roc_auc']:.3f}",
        )
    return table


@app.command()
def train(
    algorithm: Annotated[
        list[str] | None,
        typer.Option("--algorithm", "-a", help=f"Only these ({', '.join(ALGORITHMS)})"),
    ] = None,
) -> None:
    """Task 2: tune and evaluate the four models locally (no tracking)."""
    from heartml.stages import run_train

    config = _load_config()
    chosen = tuple(algorithm) if algorithm else tuple(a for a in ALGORITHMS if a in config.models)
    unknown = [a for a in chosen if a not in config.models]
    if unknown:
        fail(f"--algorithm {unknown[0]!r}: allowed: {', '.join(config.models)}")
    started = time.perf_counter()
    with clear_errors(), _progress_bar(total=3 * len(chosen)) as advance:
        result = run_train(state.settings, config, chosen, progress=advance)
    console.print(_metrics_table(result.results))
    console.print(f"best model (by CV ROC-AUC): {result.results['best_algorithm']}")
    console.print(f"models:            {result.models_dir}/<algorithm>/")
    console.print(f"evaluation:        {state.settings.catalog.results_file}")
    console.print(f"evaluation report: {result.evaluation_report}")
    console.print(f"took {time.perf_counter() - started:.1f} s")


@app.command()
def track(
    force_champion: Annotated[
        bool, typer.Option("--force-champion", help="Promote this run's best model regardless")
    ] = False,
) -> None:
    """Task 3: log, register one new version of each model, decide the champion (MLflow)."""
    from heartml.stages import run_track

    config = _load_config()
    console.print(f"tracking store: {state.settings.tracking_uri}")
    with clear_errors(), console.status("tracking") as status:
        result = run_track(
            state.settings, config, force_champion, progress=lambda m: status.update(m)
        )
    if result.reused_training:
        console.print("reused the Task 2 models (same data, config and dataset spec)")
    for version in result.versions:
        console.print(
            f"registered {version.model_name} version {version.version} "
            f"(CV ROC-AUC {version.cv_roc_auc:.4f}, run {version.run_id[:8]})"
        )
    verdict = "promoted" if result.decision.promote else "kept"
    console.print(f"champion decision: {verdict} - {result.decision.reason}")
    _print_champion(result.champion)


def _print_champion(champion: Any) -> None:
    if champion is None:
        console.print("no champion")
        return
    console.print(
        f"champion: {champion.model_name} version {champion.version} "
        f"(CV ROC-AUC {champion.roc_auc:.4f}) -> {champion.model_uri}"
    )


def _registry() -> Any:
    from heartml.tracking.registry import Registry

    return Registry.connect(state.settings)


@app.command()
def champion(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    promote_challenger: Annotated[
        bool,
        typer.Option(
            "--promote-challenger",
            help="Let the version holding the challenger alias replace the champion, through "
            "the promotion gate (exit code 1 when the gate keeps the champion)",
        ),
    ] = False,
) -> None:
    """Show the current champion (name, version, CV ROC-AUC, URI)."""
    import json

    if promote_challenger:
        _promote_challenger()
        return
    with clear_errors():
        found = _registry().require_champion()
    if as_json:
        console.print_json(json.dumps(found.as_dict()))
    else:
        _print_champion(found)


def _promote_challenger() -> None:
    from heartml.tracking.challenger import promote_challenger

    config = _load_config()
    with clear_errors():
        registry = _registry()
        decision = promote_challenger(registry, config.promotion)
        found = registry.find_champion()
    candidate = decision.candidate
    assert candidate is not None
    verdict = "promoted" if decision.promote else "kept the champion"
    console.print(
        f"challenger {candidate.model_name} version {candidate.version}: {verdict}: "
        f"{decision.reason}",
        highlight=False,
    )
    if found is not None:
        _print_champion(found)
    if not decision.promote:
        raise typer.Exit(1)


@app.command()
def rollback() -> None:
    """Give the champion alias back to the previous champion."""
    with clear_errors():
        registry = _registry()
        decision = registry.rollback()
        found = registry.find_champion()
    console.print(f"rolled back: {decision.reason}")
    _print_champion(found)


@app.command()
def registry() -> None:
    """List every registered version of the four models with its aliases."""
    with clear_errors():
        listing = _registry().listing()
    table = Table(title=f"Registry at {state.settings.tracking_uri}")
    for column in ("model", "version", "aliases", "CV ROC-AUC", "run"):
        table.add_column(column, no_wrap=True)
    for name, entries in listing.items():
        for entry in entries:
            auc = "None" if entry.cv_roc_auc is None else f"{entry.cv_roc_auc:.6f}"
            table.add_row(name, entry.version, ", ".join(entry.aliases), auc, str(entry.run_id)[:8])
    console.print(table)


package_app = typer.Typer(
    help="Task 4: package the champion (ONNX, MLflow, joblib, model card, manifest).",
    invoke_without_command=True,
    no_args_is_help=False,
)
app.add_typer(package_app, name="package")


@package_app.callback()
def package(
    ctx: typer.Context,
    model: Annotated[
        str | None,
        typer.Option(help="Package this registered model instead of the champion (with --version)"),
    ] = None,
    version: Annotated[
        str | None, typer.Option(help="The registered version of --model to package")
    ] = None,
) -> None:
    """Build packages/heart_disease_model_<algorithm>_v<version>/ from the champion and verify it."""
    if (model is None) != (version is None):
        fail("--model and --version go together (neither: the champion)")
    if ctx.invoked_subcommand is None:
        _package(model, version)


def _package(model: str | None = None, version: str | None = None) -> None:
    from heartml.stages import run_package

    what = "the champion" if model is None else f"{model} version {version}"
    with clear_errors(), console.status(f"packaging {what}") as status:
        built, verification = run_package(
            state.settings,
            progress=lambda m: status.update(m),
            model_name=model,
            version=version,
        )
    manifest = built.manifest
    console.print(
        f"package: {built.directory}\n"
        f"{'champion' if model is None else 'model'}: "
        f"{manifest['model_name']} version {manifest['version']} "
        f"(CV ROC-AUC {manifest['cv_roc_auc']:.4f})\n"
        f"files: {len(manifest['files'])} (sha256 in MANIFEST.json)\n"
        f"registry: uploaded to run {manifest['run_id']} (artifacts {PACKAGE_ARTIFACT_DIR}/)\n"
        + "parity on "
        + f"{verification.rows} rows: "
        + ", ".join(f"{k} max |Δp| {v:.1e}" for k, v in verification.formats.items())
    )


@package_app.command("verify")
def package_verify(
    location: Annotated[
        str | None,
        typer.Argument(
            help="Package folder (default: newest), or a registered version: "
            "models:/NAME/VERSION or models:/NAME@ALIAS (its uploaded package is downloaded)"
        ),
    ] = None,
) -> None:
    """Check every checksum, load every format, re-run the parity check."""
    from heartml.packaging import newest_package, verify_package

    if location is not None and location.startswith("models:/"):
        _verify_registered(location)
        return
    with clear_errors():
        catalog = state.settings.catalog
    directory = Path(location) if location is not None else None
    target = directory or newest_package(catalog.packages_dir, catalog.spec.package_prefix)
    if target is None:
        fail(f"no package under {catalog.packages_dir}: run heartml package first")
    if not target.is_dir():
        fail(f"{target}: not a package folder")
    with clear_errors(), console.status(f"verifying {target.name}"):
        result = verify_package(target)
    console.print(
        f"OK {target}: {len(result.manifest['files'])} files match MANIFEST.json; "
        + ", ".join(f"{k} max |Δp| {v:.1e}" for k, v in result.formats.items())
        + f" over {result.rows} rows"
    )


def _verify_registered(uri: str) -> None:
    """`heartml package verify models:/...`: download the version's package and verify it."""
    import tempfile

    from heartml.packaging import verify_package
    from heartml.tracking.package_artifacts import download_package, resolve_model_uri

    with clear_errors(), tempfile.TemporaryDirectory(prefix="heartml-verify-") as tmp:
        with console.status(f"downloading the package of {uri}"):
            registry = _registry()
            version = resolve_model_uri(registry, uri)
            directory = download_package(registry, version, Path(tmp))
        with console.status(f"verifying {version.model_name} version {version.version}"):
            result = verify_package(directory)
        console.print(
            f"OK {uri} ({version.model_name} version {version.version}, run {version.run_id}): "
            f"{len(result.manifest['files'])} files match MANIFEST.json; "
            + ", ".join(f"{k} max |Δp| {v:.1e}" for k, v in result.formats.items())
            + f" over {result.rows} rows"
        )


@app.command("spec")
def spec_command(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="The fields and features as Markdown tables")
    ] = False,
) -> None:
    """Check the dataset spec and describe it (its fields, features and where things go)."""
    from heartml.spec.docs import features_table, fields_table

    with clear_errors():
        catalog = state.settings.catalog
    spec = catalog.spec
    if markdown:
        console.print(fields_table(spec) + "\n" + features_table(spec), markup=False, end="")
        return
    console.print(f"{spec.title} ({spec.name}): {catalog.spec_file} is valid", highlight=False)
    console.print(
        f"{len(spec.columns)} fields ({len(spec.optional_names)} may be unknown), "
        f"{len(spec.features)} engineered features, target {spec.target.positive!r} = "
        f"{spec.target.positive_label}; spec sha256 {spec.spec_hash()[:12]}…",
        highlight=False,
    )
    console.print(
        f"registered as {spec.model_name_prefix}_<algorithm>, packaged as "
        f"{spec.package_prefix}_<algorithm>_v<version>, data in {catalog.processed_dir}",
        highlight=False,
    )


@app.command()
def pipeline() -> None:
    """Run every stage in order on the current settings."""
    data(offline=False)
    train(algorithm=None)
    track(force_champion=False)
    _package()


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
    loop: Annotated[str, typer.Option(help="Event loop: auto (uvloop), uvloop, asyncio")] = "auto",
    http: Annotated[
        str, typer.Option(help="HTTP parser: auto (httptools), httptools, h11")
    ] = "auto",
) -> None:
    """Serve predictions over HTTP: /predict, /docs, /metrics, the web page at /."""
    from heartml.serving.server import HTTP_PARSERS, LOOPS, uvicorn_choices
    from heartml.serving.server import serve as run_server

    if package is not None and not package.is_dir():
        fail(f"--package {package}: not a folder")
    if package is None:
        from heartml.serving.sources import check_source

        with clear_errors():  # a model source that cannot work here: one line, before uvicorn
            check_source(state.settings)
    if loop not in LOOPS or http not in HTTP_PARSERS:
        fail(f"--loop is one of {', '.join(LOOPS)}; --http one of {', '.join(HTTP_PARSERS)}")
    if workers > 1 and uvicorn_choices(loop, http)[0] == "asyncio":
        # Measured: uvicorn hands the workers a socket on which asyncio's transports leave
        # Nagle's algorithm on, and every response then waits ~44 ms for a delayed ACK.
        errors.print(
            "[yellow]warning:[/] the asyncio loop with --workers > 1 answers in ~44 ms "
            "(Nagle's algorithm stays on); use --loop uvloop",
            highlight=False,
        )
    run_server(host, port, workers, package, loop, http)


# --------------------------------------------------------------------------------------------
# Scale: batch scoring, shared tuning studies, reproducibility (heartml.batch, .tuning, .reproduce)


@app.command()
def score(
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
    engine: Annotated[str, typer.Option(help="local, or dask (partitions on Dask workers)")] = (
        "local"
    ),
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
    from heartml.batch import ENGINES, score_file, scoring_model
    from heartml.errors import HeartmlError
    from heartml.manifest import newest_package_or_fail, read_package

    if engine not in ENGINES:
        fail(f"--engine {engine!r}: allowed: {', '.join(ENGINES)}")
    if scheduler is not None and engine != "dask":
        fail("--scheduler needs --engine dask")
    try:
        directory = package
        if directory is None:  # the newest package of this dataset (its spec's prefix)
            catalog = state.settings.catalog
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


@app.command()
def tune(
    algorithm: Annotated[
        str, typer.Option("--algorithm", "-a", help=f"One of {', '.join(ALGORITHMS)}")
    ],
    study: Annotated[
        str | None, typer.Option(help="Study name the workers share (default: heartml-<alg>)")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            envvar="HEARTML_OPTUNA_STORAGE",
            help="Optuna storage URL (default: sqlite:///<root>/optuna.db; a team uses "
            "postgresql+psycopg2://user:pass@host/db)",
        ),
    ] = None,
    n_trials: Annotated[int, typer.Option(min=0, help="Trials this worker runs")] = 20,
    timeout: Annotated[
        float | None, typer.Option(min=0, help="Start no trial after this many seconds")
    ] = None,
    write_config: Annotated[
        Path | None,
        typer.Option(help="Write the best trial as a config for `heartml --config FILE track`"),
    ] = None,
) -> None:
    """Join (or start) a shared Optuna study and run trials on the training split."""
    from heartml.data.prepare import read_split
    from heartml.stages import processed_data_sha256
    from heartml.tuning import TuningError, default_storage, write_best_config
    from heartml.tuning import tune as run_study

    config = _load_config()
    url = storage or default_storage(state.settings.resolved_root)
    name = study or f"heartml-{algorithm}"
    with clear_errors():
        train_split, _ = read_split(state.settings.catalog)
        data_sha256 = processed_data_sha256(state.settings)
        try:
            summary = run_study(
                algorithm,
                train_split,
                state.settings.catalog.spec,
                config,
                data_sha256,
                name,
                url,
                n_trials,
                timeout,
                callback=lambda number, value: console.print(
                    f"trial {number}: {config.tuning.scoring} {value:.4f}"
                ),
            )
            if write_config is not None:
                write_best_config(write_config, config, summary)
        except TuningError as exc:
            fail(str(exc))
    console.print(
        f"study {summary.study} ({summary.storage}): this worker ran {summary.trials_run} "
        f"trials, {summary.trials_total} complete in all"
    )
    if summary.best_value is not None:
        console.print(
            f"best: trial {summary.best_trial}, mean CV {summary.scoring} "
            f"{summary.best_value:.4f}, params {summary.best_params}"
        )
    if write_config is not None:
        console.print(f"config with the best params: {write_config}")
        console.print(f"next: heartml --config {write_config} track")


@app.command()
def reproduce(
    model: Annotated[str, typer.Option(help="Registered model, e.g. heart_disease_svm")],
    version: Annotated[str, typer.Option(help="Its version number")],
) -> None:
    """Rebuild a registered version from its logged data hash, config and seed; compare metrics."""
    from heartml.reproduce import ReproduceError
    from heartml.reproduce import reproduce as rebuild

    with clear_errors(), console.status("reproducing") as status:
        try:
            result = rebuild(state.settings, model, version, progress=status.update)
        except ReproduceError as exc:
            fail(str(exc))
    table = Table(title=f"{model} version {version} (run {result.run_id[:8]}): inputs")
    for column in ("input", "logged", "local", "same"):
        table.add_column(column)
    for check in result.inputs:
        table.add_row(check.name, check.logged, check.local, "yes" if check.same else "NO")
    console.print(table)
    for note in result.notes:
        console.print(f"note: {note}")
    for line in result.explanation():
        console.print(line, highlight=False)
    raise typer.Exit(0 if result.reproduced else 1)


def run() -> None:
    """Entry point for `python -m heartml` and the seed scripts."""
    app(prog_name="heartml")


if __name__ == "__main__":
    run()
