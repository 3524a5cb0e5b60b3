"""The model registry: `heartml champion`, `rollback`, `registry`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from heartml.cli.context import CliState, clear_errors, console, state_of
from heartml.settings import Settings

app = typer.Typer()


def print_champion(champion: Any) -> None:
    if champion is None:
        console.print("no champion")
        return
    console.print(
        f"champion: {champion.model_name} version {champion.version} "
        f"(CV ROC-AUC {champion.roc_auc:.4f}) -> {champion.model_uri}"
    )


def connect(settings: Settings) -> Any:
    from heartml.tracking.registry import Registry

    return Registry.connect(settings)


@app.command()
def champion(
    ctx: typer.Context,
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
    if promote_challenger:
        run_promote_challenger(state_of(ctx))
        return
    with clear_errors():
        found = connect(state_of(ctx).settings).require_champion()
    if as_json:
        console.print_json(json.dumps(found.as_dict()))
    else:
        print_champion(found)


def run_promote_challenger(state: CliState) -> None:
    from heartml.tracking.challenger import promote_challenger

    config = state.config()
    with clear_errors():
        registry = connect(state.settings)
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
        print_champion(found)
    if not decision.promote:
        raise typer.Exit(1)


@app.command()
def rollback(ctx: typer.Context) -> None:
    """Give the champion alias back to the previous champion."""
    with clear_errors():
        registry = connect(state_of(ctx).settings)
        decision = registry.rollback()
        found = registry.find_champion()
    console.print(f"rolled back: {decision.reason}")
    print_champion(found)


@app.command()
def registry(ctx: typer.Context) -> None:
    """List every registered version of the four models with its aliases."""
    settings = state_of(ctx).settings
    with clear_errors():
        listing = connect(settings).listing()
    table = Table(title=f"Registry at {settings.tracking_uri}")
    for column in ("model", "version", "aliases", "CV ROC-AUC", "run"):
        table.add_column(column, no_wrap=True)
    for name, entries in listing.items():
        for entry in entries:
            auc = "None" if entry.cv_roc_auc is None else f"{entry.cv_roc_auc:.6f}"
            table.add_row(name, entry.version, ", ".join(entry.aliases), auc, str(entry.run_id)[:8])
    console.print(table)
