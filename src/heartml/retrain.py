"""The champion's configuration, retrained on the candidate's data and measured on its folds.

When new data (e.g. the shipped data plus labelled predictions) trained the candidate, the
champion's CV figures come from other rows and other folds: comparing them would judge the data,
not the models. So the champion's estimator parameters, as its run logged them in MLflow, are
fitted again in the same pipeline on every fold of the candidate's repeated CV (the same
splitter, seed and rows: heartml.train.evaluation_splits), and the gate compares both models
fold by fold. The parameters are not tuned again: this is the champion's configuration, as it
was chosen.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.pipeline import Pipeline

from heartml.config import ModelConfig, ParamValue, PipelineConfig
from heartml.errors import HeartmlError
from heartml.evaluate import classification_metrics
from heartml.features import build_pipeline
from heartml.models import ESTIMATORS, make_estimator
from heartml.spec import TARGET, DatasetSpec
from heartml.train import N_JOBS, _fit_fold, evaluation_splits

TUNED_PREFIX = "tuned."  # heartml.tracking.runs logs the grid's choice again under this prefix


class RetrainError(HeartmlError):
    """The champion's configuration cannot be rebuilt from what its run logged."""


def logged_value(text: str) -> ParamValue:
    """A parameter as MLflow stored it (str(value)) back as the value: numbers, True/False,
    None; anything else stays the string it is (a solver name, 'balanced')."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return value if isinstance(value, int | float | str | bool | type(None)) else text


def estimator_params(algorithm: str, logged: Mapping[str, str]) -> dict[str, ParamValue]:
    """The estimator's own parameters among a run's logged ones."""
    if algorithm not in ESTIMATORS:
        raise RetrainError(f"algorithm {algorithm!r} is not one heartml can train")
    known = set(ESTIMATORS[algorithm]().get_params())
    params = {k: logged_value(v) for k, v in logged.items() if not k.startswith(TUNED_PREFIX)}
    if not params:
        raise RetrainError(f"the {algorithm} run logged no estimator parameters")
    return {k: v for k, v in params.items() if k in known}


def _configuration(
    algorithm: str, logged: Mapping[str, str], spec: DatasetSpec, config: PipelineConfig
) -> Pipeline:
    params = estimator_params(algorithm, logged)
    estimator = make_estimator(algorithm, ModelConfig(params=params), config.seed)
    return build_pipeline(spec, estimator)


def fitted_configuration(
    algorithm: str,
    logged: Mapping[str, str],
    train: pd.DataFrame,
    spec: DatasetSpec,
    config: PipelineConfig,
) -> Pipeline:
    """The logged configuration fitted on every row of `train` (as the candidate was)."""
    pipeline = _configuration(algorithm, logged, spec, config)
    return pipeline.fit(train.loc[:, list(spec.raw_names)], train[TARGET].to_numpy())


def configuration_folds(
    algorithm: str,
    logged: Mapping[str, str],
    train: pd.DataFrame,
    spec: DatasetSpec,
    config: PipelineConfig,
) -> dict[str, list[float]]:
    """ROC-AUC and Brier score of the logged configuration on each evaluation fold of `train`."""
    pipeline = _configuration(algorithm, logged, spec, config)
    X, y = train.loc[:, list(spec.raw_names)], train[TARGET].to_numpy()
    splits = evaluation_splits(config, X, y)
    scored: list[dict[str, np.ndarray]] = Parallel(n_jobs=N_JOBS)(
        delayed(_fit_fold)(pipeline, X, y, tr, te, {}) for tr, te in splits
    )
    folds: dict[str, list[float]] = {"roc_auc": [], "brier": []}
    threshold = config.evaluation.threshold
    for (_, test_idx), probabilities in zip(splits, scored, strict=True):
        metrics: dict[str, Any] = classification_metrics(y[test_idx], probabilities[""], threshold)
        folds["roc_auc"].append(float(metrics["roc_auc"]))
        folds["brier"].append(float(metrics["brier"]))
    return folds
