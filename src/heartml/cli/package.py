"""Task 4: `heartml package [--model M --version V]` and `heartml package verify`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from heartml.cli.context import CliState, clear_errors, console, fail, state_of
from heartml.package.manifest import PACKAGE_ARTIFACT_DIR

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
        f"registry: uploaded to run {manifest.run_id} (artifacts {PACKAGE_ARTIFACT_DIR}/)\n"
        + "parity on "
        + f"{verification.rows} rows: "
        + ", ".join(f"{k} max |Δp| {v:.1e}" for k, v in verification.formats.items())
    )


@app.command("verify")
def package_verify(
    ctx: typer.Context,
    location: Annotated[
        str | None,
        typer.Argument(
            help="Package folder (default: newest), or a registered version: "
            "models:/NAME/VERSION or models:/NAME@ALIAS (its uploaded package is downloaded)"
        ),
    ] = None,
) -> None:
    """Check every checksum, load every format, re-run the parity check."""
    from heartml.package.manifest import newest_package_or_fail
    from heartml.package.verify import verify_package

    if location is not None and location.startswith("models:/"):
        verify_registered(state_of(ctx), location)
        return
    directory = Path(location) if location is not None else None
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


def verify_registered(state: CliState, uri: str) -> None:
    """`heartml package verify models:/...`: download the version's package and verify it."""
    import tempfile

    from heartml.package.verify import verify_package
    from heartml.tracking.package_artifacts import download_package, resolve_model_uri
    from heartml.tracking.registry import Registry

    with clear_errors(), tempfile.TemporaryDirectory(prefix="heartml-verify-") as tmp:
        with console.status(f"downloading the package of {uri}"):
            registry = Registry.connect(state.settings)
            version = resolve_model_uri(registry, uri)
            directory = download_package(registry, version, Path(tmp))
        with console.status(f"verifying {version.model_name} version {version.version}"):
            result = verify_package(directory)
        console.print(
            f"OK {uri} ({version.model_name} version {version.version}, run {version.run_id}): "
            f"{len(result.manifest.files)} files match MANIFEST.json; "
            + ", ".join(f"{k} max |Δp| {v:.1e}" for k, v in result.formats.items())
            + f" over {result.rows} rows"
        )
