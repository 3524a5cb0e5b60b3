"""The model's own steps, from the dataset spec: RawImputer -> FeatureEngineer (the seed's six
features, written as expressions in the spec) -> preprocessing. Oracles are hand-computed."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from heartml.features import (
    FeatureEngineer,
    RawImputer,
    build_pipeline,
    feature_engineer,
    model_input_names,
    raw_imputer,
)
from heartml.spec import load_spec
from oracles import HEART_SPEC_FILE

pytestmark = pytest.mark.task2

SPEC = load_spec(HEART_SPEC_FILE)
RAW_FEATURES = SPEC.raw_names
ENGINEERED_FEATURES = SPEC.feature_names
ALL_FEATURES = (*RAW_FEATURES, *ENGINEERED_FEATURES)

FIRST_PATIENT = {
    "age": 63.0,
    "sex": 1.0,
    "cp": 1.0,
    "trestbps": 145.0,
    "chol": 233.0,
    "fbs": 1.0,
    "restecg": 2.0,
    "thalach": 150.0,
    "exang": 0.0,
    "oldpeak": 2.3,
    "slope": 3.0,
    "ca": 0.0,
    "thal": 6.0,
}
# A younger woman with exercise angina and asymptomatic chest pain.
SECOND_PATIENT = {
    **FIRST_PATIENT,
    "age": 45.0,
    "sex": 0.0,
    "cp": 4.0,
    "trestbps": 120.0,
    "chol": 300.0,
    "thalach": 170.0,
    "exang": 1.0,
    "oldpeak": 0.0,
}


def engineered(record: dict[str, float]) -> dict[str, float]:
    out = feature_engineer(SPEC).fit_transform(pd.DataFrame([record]))
    return dict(zip(ALL_FEATURES, out[0], strict=True))


def test_the_spec_declares_the_seeds_six_features() -> None:
    assert ENGINEERED_FEATURES == (
        "age_group",
        "chol_age_ratio",
        "heart_rate_reserve",
        "risk_score",
        "age_sex_interaction",
        "cp_exang_interaction",
    )


def test_first_patient_by_hand() -> None:
    row = engineered(FIRST_PATIENT)
    assert row["chol_age_ratio"] == pytest.approx(233 / 63)
    assert row["heart_rate_reserve"] == pytest.approx(150 - (220 - 63))  # -7
    assert row["risk_score"] == pytest.approx(6.3 + 2.33 + 14.5 + 23.0)  # 46.13
    assert row["age_sex_interaction"] == 63.0
    assert row["cp_exang_interaction"] == 0.0
    assert row["age_group"] == 3.0  # elderly
    for name in RAW_FEATURES:  # the raw columns pass through untouched
        assert row[name] == FIRST_PATIENT[name]


def test_second_patient_by_hand() -> None:
    row = engineered(SECOND_PATIENT)
    assert row["chol_age_ratio"] == pytest.approx(300 / 45)
    assert row["heart_rate_reserve"] == pytest.approx(170 - (220 - 45))  # -5
    assert row["risk_score"] == pytest.approx(4.5 + 3.0 + 12.0 + 0.0)  # 19.5
    assert row["age_sex_interaction"] == 0.0
    assert row["cp_exang_interaction"] == 4.0
    assert row["age_group"] == 1.0  # middle aged


@pytest.mark.parametrize(
    ("age", "group"),
    [(29, 0), (40, 0), (40.5, 1), (41, 1), (50, 1), (51, 2), (60, 2), (61, 3), (77, 3)],
)
def test_age_group_boundaries_are_right_closed(age: float, group: int) -> None:
    assert engineered({**FIRST_PATIENT, "age": age})["age_group"] == group


def test_missing_cholesterol_without_imputation_gives_missing_features() -> None:
    row = engineered({**FIRST_PATIENT, "chol": math.nan})
    assert math.isnan(row["chol_age_ratio"])
    assert math.isnan(row["risk_score"])
    assert row["heart_rate_reserve"] == pytest.approx(-7)
    assert row["age_group"] == 3.0


def test_raw_values_are_imputed_before_the_features_are_computed(cleveland: pd.DataFrame) -> None:
    """A missing chol changes risk_score only through chol: the patient's age, blood pressure and
    ST depression still count (the seed's pipeline replaced the whole feature by its median)."""
    X = cleveland[list(RAW_FEATURES)]
    pipeline = build_pipeline(SPEC, LogisticRegression(max_iter=2000)).fit(X, cleveland["target"])
    median_chol = float(np.median(X["chol"].dropna()))  # the oracle: numpy on the same rows
    patient = pd.DataFrame([{**FIRST_PATIENT, "chol": math.nan}])
    features = pipeline[:2].transform(patient)[0]
    row = dict(zip(ALL_FEATURES, features, strict=True))
    assert row["chol"] == median_chol
    assert row["risk_score"] == pytest.approx(63 * 0.1 + median_chol * 0.01 + 145 * 0.1 + 23.0)
    assert row["chol_age_ratio"] == pytest.approx(median_chol / 63)
    assert row["heart_rate_reserve"] == pytest.approx(-7)


def test_raw_imputer_uses_the_median_and_the_most_frequent_code(cleveland: pd.DataFrame) -> None:
    imputer = raw_imputer(SPEC).fit(cleveland)
    X = cleveland[list(RAW_FEATURES)]
    for j, name in enumerate(RAW_FEATURES):
        present = X[name].dropna()
        if SPEC.columns[name].coded:
            counts = present.value_counts()
            expected = float(min(counts.index[counts == counts.max()]))  # ties: smallest code
        else:
            expected = float(np.median(present))
        assert imputer.statistics_[j] == expected, name
    filled = imputer.transform(X)
    assert not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[~X.isna().to_numpy()], X.to_numpy()[~X.isna().to_numpy()])


def test_raw_imputer_refuses_a_column_without_values(cleveland: pd.DataFrame) -> None:
    cleveland["thal"] = math.nan
    with pytest.raises(ValueError, match="column 'thal' has no values in the training data"):
        raw_imputer(SPEC).fit(cleveland)


def test_any_expression_is_computed_and_a_division_by_zero_is_missing() -> None:
    engineer = FeatureEngineer(
        columns=("a", "b"),
        expressions=(
            ("ratio", "a / b"),
            ("mix", "-(a - 2) * (b + 0.5) / 4"),
            ("band", "bins(b, [0, 1])"),
        ),
    )
    X = np.array([[4.0, 2.0], [1.0, 0.0], [3.0, -1.0], [math.nan, 1.0]])
    out = engineer.fit_transform(X)
    expected = np.array(
        [
            [4.0, 2.0, 2.0, -(4 - 2) * (2 + 0.5) / 4, 2.0],
            [1.0, 0.0, math.nan, -(1 - 2) * (0 + 0.5) / 4, 0.0],
            [3.0, -1.0, -3.0, -(3 - 2) * (-1 + 0.5) / 4, 0.0],
            [math.nan, 1.0, math.nan, math.nan, 1.0],
        ]
    )
    np.testing.assert_array_equal(out, expected)


def test_output_shape_dtype_and_names(cleveland: pd.DataFrame) -> None:
    transformer = feature_engineer(SPEC).fit(cleveland)
    out = transformer.transform(cleveland)
    assert out.shape == (303, 19)
    assert out.dtype == np.float64
    names = transformer.get_feature_names_out()
    assert list(names) == [*RAW_FEATURES, *ENGINEERED_FEATURES]
    assert len(names) == 19


def test_column_order_and_extra_columns_do_not_matter(cleveland: pd.DataFrame) -> None:
    ordered = feature_engineer(SPEC).fit_transform(cleveland[list(RAW_FEATURES)])
    shuffled = cleveland.sample(frac=1.0, axis=1, random_state=3).assign(extra="ignored")
    assert list(shuffled.columns) != list(cleveland.columns)
    np.testing.assert_array_equal(feature_engineer(SPEC).fit_transform(shuffled), ordered)


def test_array_input_in_raw_order_equals_dataframe_input(cleveland: pd.DataFrame) -> None:
    frame_out = feature_engineer(SPEC).fit_transform(cleveland)
    array_out = feature_engineer(SPEC).fit_transform(cleveland[list(RAW_FEATURES)].to_numpy())
    np.testing.assert_array_equal(array_out, frame_out)


def test_wrong_column_count_is_a_clear_error(cleveland: pd.DataFrame) -> None:
    with pytest.raises(
        ValueError, match=r"expected 2-D input with 13 columns .*got shape \(5, 12\)"
    ):
        feature_engineer(SPEC).fit(cleveland[list(RAW_FEATURES[:12])].to_numpy()[:5])
    with pytest.raises(ValueError, match="got shape"):
        feature_engineer(SPEC).fit(cleveland).transform(np.zeros(13))


def test_missing_dataframe_column_is_named(cleveland: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="missing input columns: thalach, oldpeak"):
        feature_engineer(SPEC).fit(cleveland.drop(columns=["thalach", "oldpeak"]))


def test_clone_and_params_behave_like_an_sklearn_estimator(cleveland: pd.DataFrame) -> None:
    original = feature_engineer(SPEC)
    assert original.get_params() == {
        "columns": RAW_FEATURES,
        "expressions": tuple((n, f.expression) for n, f in SPEC.features.items()),
    }
    copy = clone(original)
    assert copy is not original
    assert copy.get_params() == original.get_params()
    assert copy.set_params() is copy
    fitted = feature_engineer(SPEC).fit(cleveland)
    assert fitted.n_features_in_ == 13
    assert not hasattr(clone(fitted), "n_features_in_")  # clone drops the fitted state
    imputer = raw_imputer(SPEC).fit(cleveland)
    assert list(imputer.feature_names_in_) == list(RAW_FEATURES)
    assert not hasattr(clone(imputer), "statistics_")
    assert isinstance(clone(imputer), RawImputer)


def test_pipeline_fits_and_predicts_with_missing_ca_and_thal(cleveland: pd.DataFrame) -> None:
    assert cleveland[["ca", "thal"]].isna().any(axis=None)
    pipeline = build_pipeline(SPEC, LogisticRegression(max_iter=2000))
    assert [name for name, _ in pipeline.steps] == ["impute", "features", "preprocess", "model"]
    X, y = cleveland[list(RAW_FEATURES)], cleveland["target"]
    pipeline.fit(X, y)
    missing = X[X[["ca", "thal"]].isna().any(axis=1)]
    probabilities = pipeline.predict_proba(missing)[:, 1]
    assert len(probabilities) == 6
    assert np.isfinite(probabilities).all()
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    assert pipeline.score(X, y) > 0.75  # a real fit, not a constant


def test_model_input_names_one_hot_the_coded_categoricals(cleveland: pd.DataFrame) -> None:
    pipeline = build_pipeline(SPEC, LogisticRegression(max_iter=2000))
    pipeline.fit(cleveland[list(RAW_FEATURES)], cleveland["target"])
    names = model_input_names(pipeline)
    # 15 numeric/binary/ordinal columns + one-hot of cp (4) restecg (3) slope (3) thal (3)
    assert len(names) == 15 + 4 + 3 + 3 + 3
    assert "risk_score" in names
    assert "cp" not in names
    assert {"cp_1.0", "cp_4.0", "thal_7.0"} <= set(names)
    assert pipeline.named_steps["model"].coef_.shape == (1, len(names))
