"""Task 1 and the dataset contract: `heartml data`, `heartml spec`."""

from __future__ import annotations

from typing import Annotated

import typer

from heartml.cli.context import CliState, clear_errors, console, state_of

app = typer.Typer()


def run_data(state: CliState, offline: bool) -> None:
    from heartml.stages import run_data as run_stage

    config = state.config()
    settings = state.settings.model_copy(update={"offline": True}) if offline else state.settings
    with clear_errors(), console.status("acquiring, validating and describing the data"):
        result = run_stage(settings, config)
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


@app.command()
def data(
    ctx: typer.Context,
    offline: Annotated[
        bool, typer.Option(help="Skip the download and use the shipped copy")
    ] = False,
) -> None:
    """Task 1: acquire (download or shipped copy), validate, split, quality and EDA reports."""
    run_data(state_of(ctx), offline)


@app.command("spec")
def spec_command(
    ctx: typer.Context,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="The fields and features as Markdown tables")
    ] = False,
) -> None:
    """Check the dataset spec and describe it (its fields, features and where things go)."""
    from heartml.spec.docs import features_table, fields_table

    with clear_errors():
        catalog = state_of(ctx).settings.catalog
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
