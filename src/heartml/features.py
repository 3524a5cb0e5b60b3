"""The model's own preprocessing, derived from the dataset spec: RawImputer -> FeatureEngineer ->
scaling / one-hot. The fitted sklearn Pipeline [these steps -> estimator] is the unit that is
trained, tracked, packaged and served, so no request path re-implements a feature.

Missing raw values are imputed FIRST (training median of a number, most frequent code of a coded
column), and the engineered features are computed from the imputed values: a patient without a
cholesterol value keeps the information in age, blood pressure and ST depression that
`risk_score` carries, instead of the whole feature falling back to its training median.
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

from heartml.spec import DatasetSpec
from heartml.spec.expressions import Node, evaluate, parse


def raw_matrix(X: Any, columns: tuple[str, ...]) -> np.ndarray:
    """A DataFrame (columns by name, any order, extra columns ignored) or a 2-D array already in
    `columns` order -> a float64 [n, len(columns)] array (NaN = missing)."""
    if isinstance(X, pd.DataFrame):
        missing = [name for name in columns if name not in X.columns]
        if missing:
            raise ValueError(f"missing input columns: {', '.join(missing)}")
        return X.loc[:, list(columns)].to_numpy(dtype="float64", na_value=np.nan)
    raw = np.asarray(X, dtype="float64")
    if raw.ndim != 2 or raw.shape[1] != len(columns):
        raise ValueError(
            f"expected 2-D input with {len(columns)} columns ({', '.join(columns)}), "
            f"got shape {raw.shape}"
        )
    return raw


class RawImputer(TransformerMixin, BaseEstimator):
    """Fills missing raw values: the training median of a number, the most frequent code of a
    coded column (ties: the smallest code, as SimpleImputer). Keeps the column order."""

    def __init__(self, columns: tuple[str, ...] = (), coded: tuple[bool, ...] = ()) -> None:
        self.columns = columns
        self.coded = coded

    def fit(self, X: Any, y: Any = None) -> RawImputer:
        if len(self.coded) != len(self.columns):
            raise ValueError("RawImputer needs one `coded` flag per column")
        raw = raw_matrix(X, self.columns)
        statistics = []
        for j, name in enumerate(self.columns):
            present = raw[:, j][~np.isnan(raw[:, j])]
            if len(present) == 0:
                raise ValueError(f"column {name!r} has no values in the training data")
            if self.coded[j]:
                values, counts = np.unique(present, return_counts=True)
                statistics.append(float(values[np.argmax(counts)]))
            else:
                statistics.append(float(np.median(present)))
        self.statistics_ = np.asarray(statistics, dtype=np.float64)
        self.n_features_in_ = len(self.columns)
        self.feature_names_in_ = np.array(self.columns, dtype=object)
        return self

    def transform(self, X: Any) -> np.ndarray:
        raw = raw_matrix(X, self.columns)
        return np.where(np.isnan(raw), self.statistics_, raw)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array(self.columns, dtype=object)


class FeatureEngineer(TransformerMixin, BaseEstimator):
    """Appends the spec's engineered features to the raw columns: k in, k + m out (float64).

    `expressions` holds (name, expression) pairs in the spec's grammar
    (heartml.spec.expressions); a feature that cannot be computed for a row (a division by zero)
    is missing there, and imputed by the preprocessing that follows.
    """

    def __init__(
        self, columns: tuple[str, ...] = (), expressions: tuple[tuple[str, str], ...] = ()
    ) -> None:
        self.columns = columns
        self.expressions = expressions

    def parsed(self) -> list[tuple[str, Node]]:
        known = set(self.columns)
        return [(name, parse(text, known)) for name, text in self.expressions]

    def fit(self, X: Any, y: Any = None) -> FeatureEngineer:
        self.parsed()  # refuse a bad expression at fit time, not on the first transform
        raw_matrix(X, self.columns)
        self.n_features_in_ = len(self.columns)
        return self

    def transform(self, X: Any) -> np.ndarray:
        raw = raw_matrix(X, self.columns)
        return np.hstack([raw, engineer(raw, self.columns, self.parsed())])

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array([*self.columns, *(name for name, _ in self.expressions)], dtype=object)


def engineer(
    raw: np.ndarray, columns: tuple[str, ...], features: list[tuple[str, Node]]
) -> np.ndarray:
    """The engineered columns for raw rows (float64); non-finite results become NaN."""
    vectors = {name: raw[:, j] for j, name in enumerate(columns)}
    out = np.empty((raw.shape[0], len(features)), dtype=np.float64)
    for j, (_, node) in enumerate(features):
        values = np.broadcast_to(evaluate(node, vectors), (raw.shape[0],))
        out[:, j] = np.where(np.isfinite(values), values, np.nan)
    return out


def feature_engineer(spec: DatasetSpec) -> FeatureEngineer:
    return FeatureEngineer(
        columns=spec.raw_names,
        expressions=tuple((name, f.expression) for name, f in spec.features.items()),
    )


def raw_imputer(spec: DatasetSpec) -> RawImputer:
    return RawImputer(columns=spec.raw_names, coded=tuple(c.coded for c in spec.raw_columns))


def build_preprocessor(spec: DatasetSpec) -> ColumnTransformer:
    """Scale numbers, ordinal codes and engineered features; one-hot the spec's `one_hot`
    columns. The numeric imputer catches an engineered feature a row could not compute."""
    names = spec.all_features
    one_hot = [names.index(name) for name in spec.one_hot]
    numeric = [i for i in range(len(names)) if i not in one_hot]
    transformers: list[tuple[str, Any, list[int]]] = [
        (
            "numeric",
            Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
            numeric,
        )
    ]
    if one_hot:
        # One-hot columns are raw coded columns, already imputed by RawImputer.
        transformers.append(
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                one_hot,
            )
        )
    return ColumnTransformer(transformers, sparse_threshold=0.0, verbose_feature_names_out=False)


def build_pipeline(spec: DatasetSpec, estimator: BaseEstimator) -> Pipeline:
    return Pipeline(
        [
            ("impute", raw_imputer(spec)),
            ("features", feature_engineer(spec)),
            ("preprocess", build_preprocessor(spec)),
            ("model", estimator),
        ]
    )


def model_input_names(pipeline: Pipeline) -> list[str]:
    """Names of the columns the estimator sees after one-hot encoding (for reports)."""
    engineered = pipeline.named_steps["features"].get_feature_names_out()
    names = pipeline.named_steps["preprocess"].get_feature_names_out(list(engineered))
    return [str(name) for name in names]
