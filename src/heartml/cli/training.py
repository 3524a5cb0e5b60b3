"""Task 2 and 3 and the team's training tools: `heartml train`, `track`, `tune`, `reproduce`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from heartml.choices import ALGORITHMS, Algorithm
from heartml.cli.context import CliState, clear_errors, console, fail, state_of
from heartml.cli.registry import print_champion

app = typer.Typer()


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


def run_train(state: CliState, algorithms: list[str] | None) -> None:
    from heartml.stages import run_train as run_stage

    config = state.config()
    chosen = tuple(algorithms) if algorithms else tuple(a for a in ALGORITHMS if a in config.models)
    # The allowed set is the config's models (a config may train fewer than all four).
    unknown = [a for a in chosen if a not in config.models]
    if unknown:
        fail(f"--algorithm {unknown[0]!r}: allowed: {', '.join(config.models)}")
    started = time.perf_counter()
    with clear_errors(), _progress_bar(total=3 * len(chosen)) as advance:
        result = run_stage(state.settings, config, chosen, progress=advance)
    console.print(_metrics_table(result.results))
    console.print(f"best model (by CV ROC-AUC): {result.results['best_algorithm']}")
    console.print(f"models:            {result.models_dir}/<algorithm>/")
    console.print(f"evaluation:        {state.settings.catalog.results_file}")
    console.print(f"evaluation report: {result.evaluation_report}")
    console.print(f"took {time.perf_counter() - started:.1f} s")


@app.command()
def train(
    ctx: typer.Context,
    algorithm: Annotated[
        list[str] | None,
        typer.Option("--algorithm", "-a", help=f"Only these ({', '.join(ALGORITHMS)})"),
    ] = None,
) -> None:
    """Task 2: tune and evaluate the four models locally (no tracking)."""
    run_train(state_of(ctx), algorithm)


def run_track(state: CliState, force_champion: bool) -> None:
    from heartml.stages import run_track as run_stage

    config = state.config()
    console.print(f"tracking store: {state.settings.tracking_uri}")
    with clear_errors(), console.status("tracking") as status:
        result = run_stage(
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
    print_champion(result.champion)


@app.command()
def track(
    ctx: typer.Context,
    force_champion: Annotated[
        bool, typer.Option("--force-champion", help="Promote this run's best model regardless")
    ] = False,
) -> None:
    """Task 3: log, register one new version of each model, decide the champion (MLflow)."""
    run_track(state_of(ctx), force_champion)


@app.command()
def tune(
    ctx: typer.Context,
    algorithm: Annotated[Algorithm, typer.Option("--algorithm", "-a", help="The model to tune")],
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
    from heartml.tuning import default_storage, write_best_config
    from heartml.tuning import tune as run_study

    state = state_of(ctx)
    config = state.config()
    url = storage or default_storage(state.settings.resolved_root)
    name = study or f"heartml-{algorithm}"
    with clear_errors():
        train_split, _ = read_split(state.settings.catalog)
        summary = run_study(
            algorithm,
            train_split,
            state.settings.catalog.spec,
            config,
            processed_data_sha256(state.settings),
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
    ctx: typer.Context,
    model: Annotated[str, typer.Option(help="Registered model, e.g. heart_disease_svm")],
    version: Annotated[str, typer.Option(help="Its version number")],
) -> None:
    """Rebuild a registered version from its logged data hash, config and seed; compare metrics."""
    from heartml.reproduce import reproduce as rebuild

    with clear_errors(), console.status("reproducing") as status:
        result = rebuild(state_of(ctx).settings, model, version, progress=status.update)
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
