"""Task 4: the champion -> a self-describing, checksummed deployment package.

packages/<package_prefix>_<algorithm>_v<version>/
  model.onnx              the whole pipeline (engineered features included): what serving loads
  mlflow_model/           MLflow pyfunc (signature, input example, skops weights)
  model.joblib            the fitted sklearn Pipeline (a pickle: loaded only after its sha256)
  requirements.txt conda.yaml environment.json     the training environment
  model_config.yaml deployment_config.yaml reference_statistics.json dataset_spec.yaml
  parity_reference.json   every dataset row with the pipeline's probability (the parity oracle)
  model_card.md model_card.html
  MANIFEST.json           sha256 of every other file, champion identity, data hash, parity
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from heartml.catalog import Catalog
from heartml.package.contents import (
    conda_environment,
    deployment_config,
    model_config,
    pinned_requirements,
    reference_statistics,
)
from heartml.package.manifest import (
    JOBLIB_FILE,
    MLFLOW_DIR,
    MODEL_CONFIG,
    ONNX_FILE,
    PARITY_FILE,
    REFERENCE_FILE,
    SPEC_FILE,
    PackagingError,
    write_manifest,
)
from heartml.parity import PARITY_TOLERANCE, reference_document
from heartml.provenance import platform_info, staged_directory, write_json
from heartml.spec import DatasetSpec, spec_from_text


@dataclass(frozen=True)
class PackageResult:
    directory: Path
    manifest: dict[str, Any]


def dataset_rows(catalog: Catalog, spec: DatasetSpec) -> pd.DataFrame:
    """Every row of the dataset (the parity set): the processed data, else the raw file."""
    if catalog.clean_file.is_file():
        return pd.read_parquet(catalog.clean_file)
    from heartml.data.parse import parse_records

    return parse_records(catalog.raw_path.read_bytes(), spec).frame


def check_contract(pipeline: Any, spec: DatasetSpec) -> None:
    """The fitted pipeline computes exactly the spec's columns and features."""
    from heartml.features import feature_engineer

    expected = feature_engineer(spec)
    actual = pipeline.named_steps.get("features")
    if actual is None or (actual.columns, actual.expressions) != (
        expected.columns,
        expected.expressions,
    ):
        raise PackagingError(
            "the registered model's features do not match the dataset spec logged with its run"
        )


def write_parity_reference(
    directory: Path, pipeline: Any, rows: pd.DataFrame, spec: DatasetSpec
) -> dict[str, Any]:
    """PARITY_FILE: every row with the fitted pipeline's P(class=1), the oracle for the graph."""
    raw = rows.loc[:, list(spec.raw_names)]
    document = reference_document(
        spec.raw_names,
        raw.to_numpy(dtype=np.float64, na_value=np.nan),
        pipeline.predict_proba(raw)[:, 1],
        f"{JOBLIB_FILE} (sklearn Pipeline.predict_proba)",
    )
    write_json(directory / PARITY_FILE, document)
    return document


def build_package(
    settings: Any,
    progress: Any = None,
    *,
    model_name: str | None = None,
    version: str | None = None,
) -> PackageResult:
    """Resolve the champion (or the registered `model_name` `version`), export every format,
    check parity, write the manifest, swap in. Reads the registry; never creates a version."""
    import joblib

    from heartml.onnx_export import parity, pipeline_to_onnx
    from heartml.onnx_runtime import OnnxModel
    from heartml.tracking.lineage import run_data_info, run_summary
    from heartml.tracking.registry import Registry
    from heartml.tracking.versions import ChampionInfo

    report = progress or (lambda _m: None)
    if (model_name is None) != (version is None):
        raise PackagingError("name both the model and its version, or neither (the champion)")
    registry = Registry.connect(settings)
    champion: ChampionInfo
    if model_name is not None and version is not None:
        champion = registry.find_version(model_name, version)
    else:
        champion = registry.require_champion()
    version_uri = f"models:/{champion.model_name}/{champion.version}"
    report(f"loading {champion.model_name} v{champion.version}")
    spec_text = registry.run_text(champion.run_id, SPEC_FILE)
    if spec_text is None:
        raise PackagingError(
            f"{champion.model_name} version {champion.version} was registered before models "
            "carried their dataset spec",
            hint="register a new version with `heartml track`",
        )
    spec = spec_from_text(spec_text, f"the dataset spec of run {champion.run_id}")
    pipeline = registry.load_pipeline(version_uri)
    check_contract(pipeline, spec)
    catalog = settings.catalog
    summary = run_summary(registry, champion.run_id)
    data_info = run_data_info(registry, champion.run_id)

    final = catalog.package_dir(champion.algorithm, champion.version)
    with staged_directory(final) as staging:
        report("exporting ONNX")
        onnx_proto = pipeline_to_onnx(pipeline)
        (staging / ONNX_FILE).write_bytes(onnx_proto.SerializeToString())
        rows = dataset_rows(catalog, spec)
        max_delta = parity(pipeline, OnnxModel.from_path(staging / ONNX_FILE), rows)
        if not max_delta <= PARITY_TOLERANCE:
            raise PackagingError(
                f"ONNX parity failed: max |Δp| {max_delta:.2e} > {PARITY_TOLERANCE:.0e} "
                f"over {len(rows)} rows"
            )
        report("copying the MLflow model")
        registry.download_model(version_uri, staging / MLFLOW_DIR)
        joblib.dump(pipeline, staging / JOBLIB_FILE)
        write_parity_reference(staging, pipeline, rows, spec)

        requirements = pinned_requirements()
        environment = platform_info()
        (staging / "requirements.txt").write_text("\n".join(requirements) + "\n")
        (staging / "conda.yaml").write_text(
            yaml.safe_dump(conda_environment(requirements, environment["python"]), sort_keys=False)
        )
        write_json(staging / "environment.json", environment)

        threshold = float(summary.get("threshold", 0.5))
        metrics = {
            "cv": summary.get("cv_metrics", {}),
            "test": summary.get("test_metrics", {}),
            "test_ci": summary.get("test_ci", {}),
            "subgroups": summary.get("subgroups", {}),
        }
        champion_dict = champion.as_dict()
        (staging / MODEL_CONFIG).write_text(
            yaml.safe_dump(model_config(champion_dict, metrics, threshold, spec), sort_keys=False)
        )
        (staging / "deployment_config.yaml").write_text(
            yaml.safe_dump(deployment_config(champion.algorithm, champion.version), sort_keys=False)
        )
        (staging / SPEC_FILE).write_text(spec.to_yaml(), encoding="utf-8")
        from heartml.data.prepare import read_split

        train, _ = read_split(catalog)
        write_json(staging / REFERENCE_FILE, reference_statistics(train, spec))
        from heartml.reports.model_card import markdown_to_html, model_card_markdown

        card = model_card_markdown(champion_dict, summary, data_info, spec)
        (staging / "model_card.md").write_text(card)
        (staging / "model_card.html").write_text(
            markdown_to_html(card, f"Model card: {champion.model_name} v{champion.version}")
        )
        manifest = write_manifest(
            staging,
            {
                "package": final.name,
                "model_name": champion.model_name,
                "algorithm": champion.algorithm,
                "version": champion.version,
                "run_id": champion.run_id,
                "model_uri": champion.model_uri,
                "cv_roc_auc": champion.roc_auc,
                "data_sha256": champion.data_sha256,
                "config_hash": champion.config_hash,
                "threshold": threshold,
                "parity": {
                    "rows": len(rows),
                    "max_abs_difference": max_delta,
                    "tolerance": PARITY_TOLERANCE,
                    "reference_file": PARITY_FILE,
                },
                "serving_file": ONNX_FILE,
            },
        )
    return PackageResult(final, manifest)
