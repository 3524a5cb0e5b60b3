"""Feature engineering inside the model: FeatureEngineer and the preprocessing that follows it.

The fitted sklearn Pipeline [FeatureEngineer -> preprocessing -> estimator] is the unit that is
trained, tracked, packaged and served, so no request path re-implements these features.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from heartml.coding import AGE_GROUP_EDGES, ENGINEERED_FEATURES, ONE_HOT_FEATURES, RAW_FEATURES

ALL_FEATURES: tuple[str, ...] = (*RAW_FEATURES, *ENGINEERED_FEATURES)
_INDEX = {name: i for i, name in enumerate(RAW_FEATURES)}


def engineer(raw: np.ndarray) -> np.ndarray:
    """13 raw columns (RAW_FEATURES order) -> 6 engineered columns (ENGINEERED_FEATURES order).

    The seed's formulas, exactly. Missing inputs (NaN) give missing outputs, imputed later.
    """
    age, sex, cp = raw[:, _INDEX["age"]], raw[:, _INDEX["sex"]], raw[:, _INDEX["cp"]]
    chol, trestbps = raw[:, _INDEX["chol"]], raw[:, _INDEX["trestbps"]]
    thalach, exang = raw[:, _INDEX["thalach"]], raw[:, _INDEX["exang"]]
    oldpeak = raw[:, _INDEX["oldpeak"]]
    # Bins (0,40] young, (40,50] middle_aged, (50,60] senior, (60,inf) elderly, as an ordinal.
    age_group = sum((age > edge).astype(raw.dtype) for edge in AGE_GROUP_EDGES)
    age_group = np.where(np.isnan(age), np.nan, age_group)
    return np.column_stack(
        [
            age_group,
            chol / age,
            thalach - (220.0 - age),
            age * 0.1 + chol * 0.01 + trestbps * 0.1 + oldpeak * 10.0,
            age * sex,
            cp * exang,
        ]
    )


class FeatureEngineer(TransformerMixin, BaseEstimator):
    """Adds the six engineered features to the 13 raw UCI columns: 13 in, 19 out (float64).

    Accepts a DataFrame with the raw columns (by name, any order, extra columns ignored) or an
    array whose 13 columns are in RAW_FEATURES order.
    """

    def fit(self, X: Any, y: Any = None) -> FeatureEngineer:
        self._check(X)
        self.n_features_in_ = len(RAW_FEATURES)
        self.feature_names_in_ = np.array(RAW_FEATURES, dtype=object)
        return self

    def transform(self, X: Any) -> np.ndarray:
        raw = self._check(X)
        return np.hstack([raw, engineer(raw)])

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array(ALL_FEATURES, dtype=object)

    @staticmethod
    def _check(X: Any) -> np.ndarray:
        if isinstance(X, pd.DataFrame):
            missing = [name for name in RAW_FEATURES if name not in X.columns]
            if missing:
                raise ValueError(f"missing input columns: {', '.join(missing)}")
            return X.loc[:, list(RAW_FEATURES)].to_numpy(dtype="float64")
        raw = np.asarray(X, dtype="float64")
        if raw.ndim != 2 or raw.shape[1] != len(RAW_FEATURES):
            raise ValueError(
                f"expected 2-D input with {len(RAW_FEATURES)} columns "
                f"({', '.join(RAW_FEATURES)}), got shape {raw.shape}"
            )
        return raw


ONE_HOT_INDICES = [ALL_FEATURES.index(name) for name in ONE_HOT_FEATURES]
NUMERIC_INDICES = [i for i in range(len(ALL_FEATURES)) if i not in ONE_HOT_INDICES]


def build_preprocessor() -> ColumnTransformer:
    """Impute + scale numeric/ordinal/binary columns; impute + one-hot the coded categoricals."""
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    return ColumnTransformer(
        [("numeric", numeric, NUMERIC_INDICES), ("categorical", categorical, ONE_HOT_INDICES)],
        sparse_threshold=0.0,
        verbose_feature_names_out=False,
    )


def build_pipeline(estimator: BaseEstimator) -> Pipeline:
    return Pipeline(
        [
            ("features", FeatureEngineer()),
            ("preprocess", build_preprocessor()),
            ("model", estimator),
        ]
    )


def model_input_names(pipeline: Pipeline) -> list[str]:
    """Names of the columns the estimator sees after one-hot encoding (for reports)."""
    names = pipeline.named_steps["preprocess"].get_feature_names_out(list(ALL_FEATURES))
    return [str(name) for name in names]
