"""heartml.retrain: the champion's configuration, rebuilt from the parameters its run logged (as
MLflow stores them: strings), scores exactly what training measured for it on the same data and
folds. The oracle is Task 2's own path (grid search, best_estimator_, then repeated CV), which
shares only the splitter with the code under test."""

from __future__ import annotations

import pandas as pd
import pytest

from heartml.config import PipelineConfig
from heartml.retrain import RetrainError, configuration_folds, logged_value
from heartml.spec import DatasetSpec
from heartml.train import train_model

pytestmark = pytest.mark.task3


@pytest.mark.parametrize("algorithm", ["logistic_regression", "random_forest", "svm"])
def test_logged_parameters_reproduce_the_fold_scores(
    algorithm: str, cleveland: pd.DataFrame, heart_spec: DatasetSpec, small_config: PipelineConfig
) -> None:
    train, test = cleveland.iloc[:240], cleveland.iloc[240:]
    summary = train_model(algorithm, train, test, heart_spec, small_config).summary
    # What heartml.tracking.runs logs: every estimator parameter as str, the grid's choice again.
    logged = {k: str(v)[:500] for k, v in summary.estimator_params.items()}
    logged |= {f"tuned.{k}": str(v) for k, v in summary.best_params.items()}
    folds = configuration_folds(algorithm, logged, train, heart_spec, small_config)
    assert folds["roc_auc"] == pytest.approx(summary.cv_fold_metrics["roc_auc"], abs=1e-12)
    assert folds["brier"] == pytest.approx(summary.cv_fold_metrics["brier"], abs=1e-12)


def test_other_rows_give_other_folds(
    cleveland: pd.DataFrame, heart_spec: DatasetSpec, small_config: PipelineConfig
) -> None:
    logged = {"C": "1.0", "max_iter": "2000"}
    first = configuration_folds("logistic_regression", logged, cleveland, heart_spec, small_config)
    fewer = cleveland.iloc[:-40]
    second = configuration_folds("logistic_regression", logged, fewer, heart_spec, small_config)
    assert first["roc_auc"] != second["roc_auc"]


def test_logged_values_come_back_typed() -> None:
    assert logged_value("0.1") == 0.1 and logged_value("200") == 200
    assert logged_value("None") is None and logged_value("True") is True
    assert logged_value("lbfgs") == "lbfgs" and logged_value("[1, 2]") == "[1, 2]"


def test_a_run_without_parameters_or_of_an_unknown_algorithm_is_refused(
    cleveland: pd.DataFrame, heart_spec: DatasetSpec, small_config: PipelineConfig
) -> None:
    with pytest.raises(RetrainError, match="logged no estimator parameters"):
        configuration_folds("svm", {"tuned.C": "1.0"}, cleveland, heart_spec, small_config)
    with pytest.raises(RetrainError, match="'xgboost' is not one heartml can train"):
        configuration_folds("xgboost", {"a": "1"}, cleveland, heart_spec, small_config)
