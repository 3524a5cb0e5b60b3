"""`heartml store upgrade | status | prune` and `heartml feedback`: the prediction store from the
command line (heartml.store). Registered on the main app by heartml.cli."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

store_app = typer.Typer(
    help="The prediction store: schema migrations, status, retention.", no_args_is_help=True
)


def _engine() -> Engine:
    from heartml.cli import clear_errors, state
    from heartml.store.engine import create_engine

    with clear_errors():
        return create_engine(state.settings.resolved_store_url)


@store_app.command("upgrade")
def store_upgrade() -> None:
    """Create or migrate the store's schema to the newest version (the service does it on start)."""
    from heartml.cli import console, fail
    from heartml.store.engine import error_text, shown, upgrade

    engine = _engine()
    try:
        revision = upgrade(engine, create_parent=True)
    except Exception as exc:
        fail(f"prediction store {shown(engine.url)}: {error_text(exc)}")
    console.print(f"prediction store {shown(engine.url)}: schema at revision {revision}")


@store_app.command("status")
def store_status() -> None:
    """Schema revision, predictions and outcomes per model version."""
    from heartml.cli import console, fail
    from heartml.store.engine import current_revision, error_text, head_revision, shown, sqlite_path
    from heartml.store.query import versions

    engine = _engine()
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


@store_app.command("prune")
def store_prune(
    days: Annotated[
        float | None,
        typer.Option(min=0, help="Delete predictions older than this (default: the setting)"),
    ] = None,
) -> None:
    """Delete predictions older than HEARTML_STORE_RETENTION_DAYS (the service does it hourly)."""
    from heartml.cli import console, fail, state
    from heartml.store.engine import error_text, shown
    from heartml.store.retention import prune

    engine = _engine()
    keep = state.settings.store_retention_days if days is None else days
    try:
        removed = prune(engine, keep)
    except Exception as exc:
        fail(f"prediction store {shown(engine.url)}: {error_text(exc)}")
    console.print(
        f"{removed:,} predictions older than {keep:g} days deleted"
        if keep
        else "retention is 0: nothing deleted"
    )


def feedback(
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
    from heartml.cli import clear_errors, console, fail
    from heartml.store.engine import error_text, shown, upgrade
    from heartml.store.outcomes import FeedbackError, read_outcomes_csv, record_outcomes

    engine = _engine()
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
