"""The four estimators and their search grids (from configs/pipeline.yaml)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC

from heartml.config import ConfigError, ModelConfig, ParamValue

ESTIMATORS: dict[str, type[BaseEstimator]] = {
    "random_forest": RandomForestClassifier,
    "logistic_regression": LogisticRegression,
    "gradient_boosting": GradientBoostingClassifier,
    "svm": SVC,
}


def make_estimator(algorithm: str, config: ModelConfig, seed: int) -> BaseEstimator:
    """A fresh, unfitted estimator; unknown parameter names fail with one clear line."""
    cls = ESTIMATORS[algorithm]
    known = set(cls().get_params())
    for where, names in (("params", config.params), ("search_space", config.search_space)):
        unknown = sorted(set(names) - known)
        if unknown:
            raise ConfigError(
                f"models.{algorithm}.{where}: unknown parameter(s) {', '.join(unknown)} "
                f"for {cls.__name__}; allowed: {', '.join(sorted(known))}"
            )
    params: dict[str, ParamValue] = dict(config.params)
    if "random_state" in known:
        params.setdefault("random_state", seed)
    if algorithm == "svm":
        # SVC's own probability=True is deprecated; Platt scaling on internal folds is its
        # documented replacement, and it converts to ONNX.
        params.pop("probability", None)
        return CalibratedClassifierCV(cls(**params), method="sigmoid", ensemble=False, cv=5)
    return cls(**params)


def _param_prefix(algorithm: str) -> str:
    return "model__estimator__" if algorithm == "svm" else "model__"


def search_grid(algorithm: str, config: ModelConfig) -> dict[str, list[Any]]:
    """Grid for the Pipeline: parameters live on its `model` step (inside the calibrator for SVM)."""
    prefix = _param_prefix(algorithm)
    return {f"{prefix}{name}": values for name, values in config.search_space.items()}


def strip_prefix(algorithm: str, params: Mapping[str, ParamValue]) -> dict[str, ParamValue]:
    prefix = _param_prefix(algorithm)
    return {name.removeprefix(prefix): value for name, value in params.items()}


def core_estimator(model: BaseEstimator) -> BaseEstimator:
    """The tuned estimator itself (the SVC inside its calibrator)."""
    return model.estimator if isinstance(model, CalibratedClassifierCV) else model
