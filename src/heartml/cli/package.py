"""Task 4: `heartml package [--model M --version V]` and `heartml package verify`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from heartml.cli.context import CliState, clear_errors, console, fail, state_of

app = typer.Typer(
    help="Task 4: package the champion (ONNX, MLflow, joblib, model card, manifest).",
    invoke_without_command=True,
    no_args_is_help=False,
)


@app.callback()
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
    """Build packages/<package_prefix>_<algorithm>_v<version>/ from the champion, verify it."""
    if (model is None) != (version is None):
        fail("--model and --version go together (neither: the champion)")
    if ctx.invoked_subcommand is None:
        run_package(state_of(ctx), model, version)


def run_package(state: CliState, model: str | None = None, version: str | None = None) -> None:
    from heartml.stages import run_package as run_stage

    what = "the champion" if model is None else f"{model} version {version}"
    with clear_errors(), console.status(f"packaging {what}") as status:
        built, verification = run_stage(
            state.settings,
            progress=lambda m: status.update(m),
            model_name=model,
            version=version,
        )
    manifest = built.manifest
    cv_roc_auc = manifest.cv_roc_auc if manifest.cv_roc_auc is not None else float("nan")
    console.print(
        f"package: {built.directory}\n"
        f"{'champion' if model is None else 'model'}: "
        f"{manifest.model_name} version {manifest.version} "
        f"(CV ROC-AUC {cv_roc_auc:.4f})\n"
        f"files: {len(manifest.files)} (sha256 in MANIFEST.json)\n"
        + "parity on "
        + f"{verification.rows} rows: "
        + ", ".join(f"{k} max |Δp| {v:.1e}" for k, v in verification.formats.items())
    )


@app.command("verify")
def package_verify(
    ctx: typer.Context,
    directory: Annotated[
        Path | None, typer.Argument(help="Package folder (default: newest)")
    ] = None,
) -> None:
    """Check every checksum, load every format, re-run the parity check."""
    from heartml.package.manifest import newest_package_or_fail
    from heartml.package.verify import verify_package

    with clear_errors():
        catalog = state_of(ctx).settings.catalog
        target = directory or newest_package_or_fail(
            catalog.packages_dir, catalog.spec.package_prefix
        )
    if not target.is_dir():
        fail(f"{target}: not a package folder")
    with clear_errors(), console.status(f"verifying {target.name}"):
        result = verify_package(target)
    console.print(
        f"OK {target}: {len(result.manifest.files)} files match MANIFEST.json; "
        + ", ".join(f"{k} max |Δp| {v:.1e}" for k, v in result.formats.items())
        + f" over {result.rows} rows"
    )
