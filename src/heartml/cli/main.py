"""The root command: global options (--config, --dataset, --verbose) build the state every
command reads from typer.Context; each lifecycle area adds its commands from its own module."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from heartml.cli import calibration, data, monitor, package, registry, serving, store, training
from heartml.cli.context import CliState, clear_errors, say_error, state_of
from heartml.settings import load_settings


class OneLineErrors(typer.Typer):
    """A usage error (an unknown option, a value outside its choices) is one line on stderr
    with exit code 2, like every other known failure, instead of Click's boxed usage text."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            code = super().__call__(*args, **kwargs)
        except typer.TyperException as exc:  # Click's usage errors derive from it
            context = getattr(exc, "ctx", None)
            where = f" (see `{context.command_path} --help`)" if context is not None else ""
            message = exc.format_message().replace("Value error, ", "").replace("\n", " ")
            say_error(message + where)
            sys.exit(exc.exit_code)
        except typer.Abort:
            say_error("aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = OneLineErrors(
    name="heartml",
    help="MLOps pipeline for tabular clinical risk models (UCI heart disease).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# The areas' commands sit at the top level (`heartml train`, not `heartml training train`):
# the seed's users already know these names.
for area in (
    data.app,
    training.app,
    registry.app,
    serving.app,
    store.feedback_app,
    calibration.app,
):
    app.add_typer(area)
app.add_typer(package.app, name="package")
app.add_typer(store.app, name="store")
app.add_typer(monitor.app, name="monitor")


@app.callback()
def main(
    ctx: typer.Context,
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
    with clear_errors():
        settings = load_settings(dataset=dataset) if dataset else load_settings()
    ctx.obj = CliState(settings, config)
    from heartml.catalog import spec_path

    # A bad spec stops every command before anything is written; a missing default spec only
    # matters to the commands that need one (a serving container may have no configs/).
    if dataset or spec_path(settings.resolved_root, settings.dataset).is_file():
        with clear_errors():
            settings.catalog  # noqa: B018


@app.command()
def pipeline(ctx: typer.Context) -> None:
    """Run every stage in order on the current settings."""
    state = state_of(ctx)
    data.run_data(state, offline=False)
    training.run_train(state, None)
    training.run_track(state, force_champion=False)
    package.run_package(state)


def run() -> None:
    """Entry point for `python -m heartml` and the seed scripts."""
    app(prog_name="heartml")
