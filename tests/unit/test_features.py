"""FeatureEngineer: the seed's six engineered features, computed inside the sklearn Pipeline."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from heartml.coding import ENGINEERED_FEATURES, RAW_FEATURES
from heartml.features import ALL_FEATURES, FeatureEngineer, build_pipeline, model_input_names

pytestmark = pytest.mark.task2

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
    out = FeatureEngineer().fit_transform(pd.DataFrame([record]))
    return dict(zip(ALL_FEATURES, out[0], strict=True))


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


def test_missing_cholesterol_gives_missing_ratio_and_risk_score() -> None:
    row = engineered({**FIRST_PATIENT, "chol": math.nan})
    assert math.isnan(row["chol_age_ratio"])
    assert math.isnan(row["risk_score"])
    assert row["heart_rate_reserve"] == pytest.approx(-7)
    assert row["age_group"] == 3.0


def test_output_shape_dtype_and_names(cleveland: pd.DataFrame) -> None:
    transformer = FeatureEngineer().fit(cleveland)
    out = transformer.transform(cleveland)
    assert out.shape == (303, 19)
    assert out.dtype == np.float64
    names = transformer.get_feature_names_out()
    assert list(names) == [*RAW_FEATURES, *ENGINEERED_FEATURES]
    assert len(names) == 19


def test_column_order_and_extra_columns_do_not_matter(cleveland: pd.DataFrame) -> None:
    ordered = FeatureEngineer().fit_transform(cleveland[list(RAW_FEATURES)])
    shuffled = cleveland.sample(frac=1.0, axis=1, random_state=3).assign(extra="ignored")
    assert list(shuffled.columns) != list(cleveland.columns)
    np.testing.assert_array_equal(FeatureEngineer().fit_transform(shuffled), ordered)


def test_array_input_in_raw_order_equals_dataframe_input(cleveland: pd.DataFrame) -> None:
    frame_out = FeatureEngineer().fit_transform(cleveland)
    array_out = FeatureEngineer().fit_transform(cleveland[list(RAW_FEATURES)].to_numpy())
    np.testing.assert_array_equal(array_out, frame_out)


def test_wrong_column_count_is_a_clear_error(cleveland: pd.DataFrame) -> None:
    with pytest.raises(
        ValueError, match=r"expected 2-D input with 13 columns .*got shape \(5, 12\)"
    ):
        FeatureEngineer().fit(cleveland[list(RAW_FEATURES[:12])].to_numpy()[:5])
    with pytest.raises(ValueError, match="got shape"):
        FeatureEngineer().fit(cleveland).transform(np.zeros(13))


def test_missing_dataframe_column_is_named(cleveland: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="missing input columns: thalach, oldpeak"):
        FeatureEngineer().fit(cleveland.drop(columns=["thalach", "oldpeak"]))


def test_clone_and_params_behave_like_an_sklearn_estimator(cleveland: pd.DataFrame) -> None:
    original = FeatureEngineer()
    assert original.get_params() == {}
    copy = clone(original)
    assert copy is not original
    assert copy.get_params() == original.get_params()
    assert copy.set_params() is copy
    fitted = FeatureEngineer().fit(cleveland)
    assert fitted.n_features_in_ == 13
    assert list(fitted.feature_names_in_) == list(RAW_FEATURES)
    assert not hasattr(clone(fitted), "n_features_in_")  # clone drops the fitted state


def test_pipeline_fits_and_predicts_with_missing_ca_and_thal(cleveland: pd.DataFrame) -> None:
    assert cleveland[["ca", "thal"]].isna().any(axis=None)
    pipeline = build_pipeline(LogisticRegression(max_iter=2000))
    X, y = cleveland[list(RAW_FEATURES)], cleveland["target"]
    pipeline.fit(X, y)
    missing = X[X[["ca", "thal"]].isna().any(axis=1)]
    probabilities = pipeline.predict_proba(missing)[:, 1]
    assert len(probabilities) == 6
    assert np.isfinite(probabilities).all()
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    assert pipeline.score(X, y) > 0.75  # a real fit, not a constant


def test_model_input_names_one_hot_the_coded_categoricals(cleveland: pd.DataFrame) -> None:
    pipeline = build_pipeline(LogisticRegression(max_iter=2000))
    pipeline.fit(cleveland[list(RAW_FEATURES)], cleveland["target"])
    names = model_input_names(pipeline)
    # 15 numeric/binary/ordinal columns + one-hot of cp (4) restecg (3) slope (3) thal (3)
    assert len(names) == 15 + 4 + 3 + 3 + 3
    assert "risk_score" in names
    assert "cp" not in names
    assert {"cp_1.0", "cp_4.0", "thal_7.0"} <= set(names)
    assert pipeline.named_steps["model"].coef_.shape == (1, len(names))
