"""How a fitted pipeline is stored as an MLflow model, and read back from a model folder.

The one place for what a logged model declares: the types skops may load and the
distributions its environment pins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from heartml.tracking.connection import mlflow_module

# Types inside our fitted pipelines that skops must be told to trust (it refuses unknown ones).
SKOPS_TRUSTED_TYPES = [
    "heartml.features.RawImputer",
    "heartml.features.FeatureEngineer",
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
]
# Distributions a logged pipeline needs to load (heartml: its RawImputer and FeatureEngineer).
MODEL_DISTRIBUTIONS = ("mlflow", "heartml", "scikit-learn", "skops", "numpy", "pandas", "scipy")
MODEL_ARTIFACT = "model"  # the model's folder inside its run


def model_requirements() -> list[str]:
    """What loading a logged pipeline needs, pinned to the training environment.

    Declared rather than inferred: MLflow's inference loads the model in a subprocess (about
    4 s per model) and picks up whatever else the process imported (pytest, psutil, ...).
    """
    from importlib import metadata

    pins = []
    for name in MODEL_DISTRIBUTIONS:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


def model_input(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """The raw feature columns, as float64: the logged signature's input."""
    return frame.loc[:, list(columns)].astype("float64")


def pipeline_columns(pipeline: Any) -> tuple[str, ...]:
    """The raw columns a fitted heartml pipeline takes (its RawImputer's)."""
    return tuple(pipeline.named_steps["impute"].columns)


def log_pipeline_model(pipeline: Any, example: pd.DataFrame, registered_model_name: str) -> str:
    """Log a fitted pipeline in the active run and register it; return the new version number."""
    mlflow = mlflow_module()
    from mlflow.models import infer_signature

    example = model_input(example, pipeline_columns(pipeline))
    info = mlflow.sklearn.log_model(
        pipeline,
        name=MODEL_ARTIFACT,
        signature=infer_signature(example, pipeline.predict_proba(example)),
        input_example=example.head(3),
        pyfunc_predict_fn="predict_proba",
        serialization_format="skops",
        skops_trusted_types=SKOPS_TRUSTED_TYPES,
        pip_requirements=model_requirements(),
        registered_model_name=registered_model_name,
        await_registration_for=60,
    )
    return str(info.registered_model_version)


def pyfunc_probabilities(model_dir: Path, frame: pd.DataFrame, columns: tuple[str, ...]) -> Any:
    """P(class=1) from an MLflow model folder through the generic pyfunc interface."""
    import numpy as np

    model = mlflow_module().pyfunc.load_model(str(model_dir))
    output = np.asarray(model.predict(model_input(frame, columns)))
    return output[:, 1] if output.ndim == 2 else output
