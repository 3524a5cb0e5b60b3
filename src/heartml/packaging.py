"""Task 4: the champion -> a self-describing, checksummed deployment package.

packages/heart_disease_model_<algorithm>_v<version>/
  model.onnx              the whole pipeline (engineered features included): what serving loads
  mlflow_model/           MLflow pyfunc (signature, input example, skops weights)
  model.joblib            the fitted sklearn Pipeline (a pickle: loaded only after its sha256)
  requirements.txt conda.yaml environment.json     the training environment
  model_config.yaml deployment_config.yaml reference_statistics.json
  model_card.md model_card.html
  MANIFEST.json           sha256 of every other file, champion identity, data hash, parity
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from heartml.catalog import Catalog

# Verification lives in the light heartml.manifest (the server uses it without pandas);
# re-exported here for the callers of heartml.packaging.
from heartml.manifest import (
    MANIFEST,
    MODEL_CONFIG,
    ONNX_FILE,
    PARITY_FILE,
    REFERENCE_FILE,
    SPEC_FILE,
    PackagingError,
    verify_checksums,
)
from heartml.manifest import newest_package as newest_package
from heartml.parity import PARITY_TOLERANCE, check, read_reference, reference_document
from heartml.provenance import platform_info, read_json, sha256_file, staged_directory, write_json
from heartml.spec import DatasetSpec, spec_from_text

JOBLIB_FILE = "model.joblib"
MLFLOW_DIR = "mlflow_model"
REFERENCE_BINS = 10


@dataclass(frozen=True)
class PackageResult:
    directory: Path
    manifest: dict[str, Any]


# --------------------------------------------------------------------------------------------
# Pure pieces


def reference_statistics(train: pd.DataFrame, spec: DatasetSpec) -> dict[str, Any]:
    """Per raw feature, what the training data looked like: the baseline for drift monitoring.

    Numeric features get decile bin edges with their proportions (for PSI) and 101 quantiles
    (a compact sample for a KS test); coded features get the proportion of each code.
    """
    features: dict[str, Any] = {}
    for column in spec.raw_columns:
        values = train[column.name].to_numpy(dtype=float)
        present = values[~np.isnan(values)]
        entry: dict[str, Any] = {
            "kind": column.kind,
            "count": len(values),
            "missing_fraction": float(np.isnan(values).mean()),
        }
        if column.codes is not None:
            codes = sorted(column.codes)
            entry["codes"] = codes
            entry["proportions"] = [float((present == code).mean()) for code in codes]
        else:
            edges = np.unique(np.quantile(present, np.linspace(0, 1, REFERENCE_BINS + 1)))
            inner = edges[1:-1]
            counts = np.bincount(
                np.searchsorted(inner, present, side="right"), minlength=len(inner) + 1
            )
            entry.update(
                {
                    "mean": float(present.mean()),
                    "std": float(present.std(ddof=1)),
                    "min": float(present.min()),
                    "max": float(present.max()),
                    "bin_edges": inner.tolist(),  # interior edges; bins are open at both ends
                    "proportions": (counts / counts.sum()).tolist(),
                    "quantiles": np.quantile(present, np.linspace(0, 1, 101)).tolist(),
                }
            )
        features[column.name] = entry
    return {"rows": len(train), "features": features}


def model_config(
    champion: dict[str, Any], metrics: dict[str, Any], threshold: float, spec: DatasetSpec
) -> dict[str, Any]:
    """What the model is and how it is used; the input rules themselves are in the package's
    dataset spec (dataset_spec.yaml), summarised here for people reading the config."""
    return {
        "model": {
            "name": champion["model_name"],
            "algorithm": champion["algorithm"],
            "version": champion["version"],
            "run_id": champion["run_id"],
            "format": "onnx",
            "file": ONNX_FILE,
        },
        "threshold": threshold,
        "dataset": spec.name,
        "spec_file": SPEC_FILE,
        "spec_hash": spec.spec_hash(),
        "raw_feature_names": list(spec.raw_names),
        "engineered_feature_names": list(spec.all_features),
        "one_hot_features": list(spec.one_hot),
        "input_coding": {
            column.name: {
                "description": column.description,
                "kind": column.kind,
                **(
                    {"codes": dict(column.codes)}
                    if column.codes is not None
                    else {"range": list(column.range or ()), "unit": column.unit}
                ),
                "may_be_missing": not column.required,
            }
            for column in spec.raw_columns
        },
        "metrics": metrics,
    }


def deployment_config(algorithm: str, version: str) -> dict[str, Any]:
    return {
        "service": {
            "model_format": "onnx",
            "model_file": ONNX_FILE,
            "port": 8000,
            "workers": 1,
            "batch_limit": 1000,
            "health_path": "/health",
            "readiness_path": "/ready",
            "metrics_path": "/metrics",
        },
        "resources": {
            "cpu_request": "250m",
            "cpu_limit": "1",
            "memory_request": "256Mi",
            "memory_limit": "512Mi",
        },
        "image_tag": f"{algorithm}-v{version}",
    }


def pinned_requirements() -> list[str]:
    """name==version of every distribution in the training environment (sorted)."""
    pins = set()
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.lower() != "heartml":
            pins.add(f"{name}=={dist.version}")
    return sorted(pins, key=str.lower)


def conda_environment(requirements: list[str], python_version: str) -> dict[str, Any]:
    return {
        "name": "heartml-model",
        "channels": ["conda-forge"],
        "dependencies": [f"python={python_version}", "pip", {"pip": requirements}],
    }


# --------------------------------------------------------------------------------------------
# Building and verifying


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


def write_manifest(directory: Path, identity: dict[str, Any]) -> dict[str, Any]:
    files = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST):
        files[path.relative_to(directory).as_posix()] = {
            "sha256": sha256_file(path),
            "bytes": path.stat().st_size,
        }
    manifest = {
        **identity,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": files,
    }
    write_json(directory / MANIFEST, manifest)
    return manifest


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


@dataclass(frozen=True)
class Verification:
    directory: Path
    manifest: dict[str, Any]
    formats: dict[str, float]  # format -> max |Δp| against the joblib pipeline on every row
    rows: int


def verify_package(directory: Path) -> Verification:
    """Checksums; then, on the package's reference rows, the expectations recomputed from
    model.joblib (sklearn) and from mlflow_model/ (mlflow.pyfunc), and the ONNX graph and the
    recorded probabilities compared against both. Any disagreement is a ParityError. The
    pipeline must compute exactly the features of the dataset spec the package carries."""
    import joblib

    from heartml.onnx_runtime import OnnxModel

    manifest = verify_checksums(directory)
    for required in (SPEC_FILE, PARITY_FILE):
        if required not in manifest["files"]:
            raise PackagingError(
                f"{directory.name}: no {required} (built by an older heartml)",
                hint="rebuild it with `heartml package`",
            )
    spec = spec_from_text((directory / SPEC_FILE).read_text(encoding="utf-8"), SPEC_FILE)
    columns = spec.raw_names
    rows, recorded, tolerance = read_reference(read_json(directory / PARITY_FILE), columns)
    frame = pd.DataFrame(rows, columns=list(columns))
    reference_pipeline = joblib.load(directory / JOBLIB_FILE)  # sha256 verified just above
    check_contract(reference_pipeline, spec)
    from_joblib = reference_pipeline.predict_proba(frame)[:, 1]
    from heartml.tracking.model_format import pyfunc_probabilities

    try:
        from_pyfunc = np.asarray(pyfunc_probabilities(directory / MLFLOW_DIR, frame, columns))
    except Exception as exc:
        raise PackagingError(f"{MLFLOW_DIR}: does not load or score ({exc})") from exc
    try:
        onnx_model = OnnxModel.from_path(directory / ONNX_FILE)
    except Exception as exc:
        raise PackagingError(f"{ONNX_FILE}: does not load ({exc})") from exc

    def onnx_scores(matrix: np.ndarray) -> np.ndarray:
        try:
            return onnx_model.predict_proba(matrix)
        except Exception as exc:
            raise PackagingError(f"{ONNX_FILE}: does not score ({exc})") from exc

    def constant(values: np.ndarray) -> Any:
        return lambda _rows: values

    joblib_name, pyfunc_name = f"{JOBLIB_FILE} (sklearn)", f"{MLFLOW_DIR}/ (mlflow.pyfunc)"
    formats = {
        "recorded": check(
            f"{PARITY_FILE}", constant(recorded), rows, from_joblib, tolerance, joblib_name
        ),
        "mlflow_pyfunc": check(
            pyfunc_name, constant(from_pyfunc), rows, from_joblib, tolerance, joblib_name
        ),
        "onnx": check(ONNX_FILE, onnx_scores, rows, from_joblib, tolerance, joblib_name),
        "onnx_vs_pyfunc": check(ONNX_FILE, onnx_scores, rows, from_pyfunc, tolerance, pyfunc_name),
    }
    return Verification(directory, manifest, formats, len(rows))
