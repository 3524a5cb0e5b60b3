"""What a package says about its model, apart from the model itself: the config a person
reads, the deployment defaults, the environment it was trained in, and the reference
statistics drift monitoring compares live traffic with. Pure functions: build.py writes them."""

from __future__ import annotations

from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from heartml.package.manifest import ONNX_FILE, SPEC_FILE
from heartml.spec import DatasetSpec

REFERENCE_BINS = 10


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
