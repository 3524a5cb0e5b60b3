"""`heartml store upgrade | status | prune` and `heartml feedback`: the prediction store from the
command line (heartml.store)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from heartml.cli.context import clear_errors, console, fail, state_of
from heartml.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

app = typer.Typer(
    help="The prediction store: schema migrations, status, retention.", no_args_is_help=True
)
# `heartml feedback` sits at the top level (it is what a clinic's system calls).
feedback_app = typer.Typer()


def store_engine(settings: Settings) -> Engine:
    from heartml.store.engine import create_engine

    with clear_errors():
        return create_engine(settings.resolved_store_url)


@app.command("upgrade")
def store_upgrade(ctx: typer.Context) -> None:
    """Create or migrate the store's schema to the newest version (the service does it on start)."""
    from heartml.store.engine import error_text, shown, upgrade

    engine = store_engine(state_of(ctx).settings)
    try:
        revision = upgrade(engine, create_parent=True)
    except Exception as exc:
        fail(f"prediction store {shown(engine.url)}: {error_text(exc)}")
    console.print(f"prediction store {shown(engine.url)}: schema at revision {revision}")


@app.command("status")
def store_status(ctx: typer.Context) -> None:
    """Schema revision, predictions and outcomes per model version."""
    from heartml.store.engine import current_revision, error_text, head_revision, shown, sqlite_path
    from heartml.store.query import versions

    engine = store_engine(state_of(ctx).settings)
    path = sqlite_path(engine.url)
    if path is not None and not path.is_file():
        console.print(
            f"prediction store {shown(engine.url)}: not created yet (the service creates it on "
            "start; or `heartml store upgrade`)"
        )
        return
    try:
        revision = current_revision(engine)
        found = versions(engine) if revision is not None else []
    except Exception as exc:
        fail(f"prediction store {shown(engine.url)}: {error_text(exc)}")
    head = head_revision()
    where = "up to date" if revision == head else f"needs `heartml store upgrade` to {head}"
    console.print(f"prediction store {shown(engine.url)}: revision {revision} ({where})")
    for v in found:
        console.print(
            f"  {v.model_name} v{v.model_version}: {v.predictions:,} predictions, "
            f"{v.labelled:,} with an outcome"
        )


@app.command("prune")
def store_prune(
    ctx: typer.Context,
    days: Annotated[
        float | None,
        typer.Option(min=0, help="Delete predictions older than this (default: the setting)"),
    ] = None,
) -> None:
    """Delete predictions older than HEARTML_STORE_RETENTION_DAYS (the service does it hourly)."""
    from heartml.store.engine import error_text, shown
    from heartml.store.retention import prune

    engine = store_engine(state_of(ctx).settings)
    keep = state_of(ctx).settings.store_retention_days if days is None else days
    try:
        removed = prune(engine, keep)
    except Exception as exc:
        fail(f"prediction store {shown(engine.url)}: {error_text(exc)}")
    console.print(
        f"{removed:,} predictions older than {keep:g} days deleted"
        if keep
        else "retention is 0: nothing deleted"
    )


@feedback_app.command()
def feedback(
    ctx: typer.Context,
    input_path: Annotated[
        Path,
        typer.Option(
            "--input", "-i", help="CSV with request_id, outcome (and optionally row, observed_at)"
        ),
    ],
    overwrite: Annotated[
        bool, typer.Option(help="Replace outcomes already stored for these predictions")
    ] = False,
) -> None:
    """Record outcomes for stored predictions, all rows or none."""
    from heartml.store.engine import error_text, shown, upgrade
    from heartml.store.outcome_csv import read_outcomes_csv
    from heartml.store.outcomes import FeedbackError, record_outcomes

    engine = store_engine(state_of(ctx).settings)
    with clear_errors():
        outcomes = read_outcomes_csv(input_path)
    try:
        upgrade(engine, create_parent=True)
        result = record_outcomes(engine, outcomes, overwrite=overwrite)
    except FeedbackError as exc:
        fail(str(exc) + (f" ({exc.hint})" if exc.hint else ""))
    except Exception as exc:
        fail(f"prediction store {shown(engine.url)}: {error_text(exc)}")
    console.print(
        f"{result.received:,} outcomes: {result.recorded:,} recorded, "
        f"{result.overwritten:,} overwritten, {result.unchanged:,} already stored"
    )
