"""ONNX export: the whole fitted pipeline, RawImputer and FeatureEngineer included (compiled from
the spec's expressions), scores like scikit-learn."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from heartml.choices import ALGORITHMS
from heartml.config import ModelConfig
from heartml.data.parse import parse_records
from heartml.features import build_pipeline, feature_engineer
from heartml.models import make_estimator
from heartml.onnx_export import TARGET_OPSET, parity, pipeline_to_onnx, transformers_to_onnx
from heartml.onnx_runtime import INPUT_COLUMNS_KEY, OnnxModel, inference_session
from heartml.spec import load_spec
from oracles import HEART_SPEC_FILE

pytestmark = pytest.mark.task4

SPEC = load_spec(HEART_SPEC_FILE)
RAW_FEATURES = SPEC.raw_names

REPO_ROOT = Path(__file__).resolve().parents[2]
RAW_FILE = REPO_ROOT / "data" / "raw" / "processed.cleveland.data"
TOLERANCE = 1e-5
# Small but real: enough trees/iterations that every converter path is exercised.
FAST_PARAMS: dict[str, dict[str, int | float | str | bool | None]] = {
    "random_forest": {"n_estimators": 50, "n_jobs": 1},
    "logistic_regression": {"max_iter": 2000},
    "gradient_boosting": {"n_estimators": 40, "subsample": 0.8},
    "svm": {"kernel": "rbf", "C": 1.0},
}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return parse_records(RAW_FILE.read_bytes(), SPEC).frame


@pytest.fixture(scope="module", params=ALGORITHMS)
def exported(request: pytest.FixtureRequest, frame: pd.DataFrame) -> tuple[Pipeline, OnnxModel]:
    algorithm = request.param
    estimator = make_estimator(algorithm, ModelConfig(params=FAST_PARAMS[algorithm]), seed=0)
    pipeline = build_pipeline(SPEC, estimator).fit(frame[list(RAW_FEATURES)], frame["target"])
    model = OnnxModel.from_bytes(pipeline_to_onnx(pipeline).SerializeToString())
    return pipeline, model


def test_pipeline_parity_on_all_rows(
    exported: tuple[Pipeline, OnnxModel], frame: pd.DataFrame
) -> None:
    pipeline, model = exported
    assert frame[["ca", "thal"]].isna().any().all()  # the real file's missing values are in play
    assert parity(pipeline, model, frame) <= TOLERANCE
    # Labels too: the graph's own `label` output, not only the thresholded probability.
    (labels,) = model.session.run(["label"], {"input": frame[list(RAW_FEATURES)].to_numpy()})
    np.testing.assert_array_equal(labels, pipeline.predict(frame[list(RAW_FEATURES)]))


def test_graph_interface(exported: tuple[Pipeline, OnnxModel]) -> None:
    _, model = exported
    (graph_input,) = model.session.get_inputs()
    assert (graph_input.name, graph_input.type, graph_input.shape[1]) == (
        "input",
        "tensor(double)",
        len(RAW_FEATURES),
    )
    outputs = {o.name: o.type for o in model.session.get_outputs()}
    assert outputs == {"label": "tensor(int64)", "probabilities": "tensor(double)"}  # no ZipMap
    meta = model.session.get_modelmeta().custom_metadata_map
    assert meta[INPUT_COLUMNS_KEY] == ",".join(RAW_FEATURES)


def test_missing_values_score_the_same(
    exported: tuple[Pipeline, OnnxModel], frame: pd.DataFrame
) -> None:
    pipeline, model = exported
    rows = frame[list(RAW_FEATURES)].iloc[:4].copy()
    rows.loc[rows.index[0], ["ca", "thal", "chol"]] = np.nan
    rows.loc[rows.index[1], ["trestbps", "chol"]] = np.nan
    rows.loc[rows.index[2], ["age"]] = np.nan  # every engineered feature but cp*exang goes NaN
    rows.loc[rows.index[3], list(RAW_FEATURES)] = np.nan
    expected = pipeline.predict_proba(rows)[:, 1]
    actual = model.predict_proba(rows)
    assert np.isfinite(actual).all()
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOLERANCE)


def test_unknown_category_is_ignored_like_sklearn(
    exported: tuple[Pipeline, OnnxModel], frame: pd.DataFrame
) -> None:
    pipeline, model = exported
    rows = frame[list(RAW_FEATURES)].iloc[:2].copy()
    rows["cp"], rows["thal"] = 9.0, 5.0  # never seen in training: all-zero one-hot blocks
    np.testing.assert_allclose(
        model.predict_proba(rows), pipeline.predict_proba(rows)[:, 1], rtol=0, atol=TOLERANCE
    )


def test_column_order_of_a_dataframe_does_not_matter(
    exported: tuple[Pipeline, OnnxModel], frame: pd.DataFrame
) -> None:
    _, model = exported
    raw = frame[list(RAW_FEATURES)]
    shuffled = raw[list(reversed(RAW_FEATURES))].assign(extra=1.0)
    np.testing.assert_array_equal(model.predict_proba(shuffled), model.predict_proba(raw))
    np.testing.assert_array_equal(model.predict_proba(raw.to_numpy()), model.predict_proba(raw))


EDGE_AGES = [40.0, 41.0, 50.0, 60.0, 61.0, 39.0, 40.5, 60.000001, np.nan]
EDGE_AGE_GROUPS = [0.0, 1.0, 1.0, 2.0, 3.0, 0.0, 1.0, 3.0, np.nan]


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    # Plain onnxruntime: a transformer-only graph has no `probabilities` for OnnxModel.
    return inference_session(model.SerializeToString())


def _edge_rows(frame: pd.DataFrame) -> pd.DataFrame:
    rows = frame[list(RAW_FEATURES)].iloc[[0] * len(EDGE_AGES)].reset_index(drop=True)
    rows["age"] = EDGE_AGES
    return pd.concat([frame[list(RAW_FEATURES)], rows], ignore_index=True)


def test_imputer_and_feature_graph_equal_sklearn_bit_for_bit(frame: pd.DataFrame) -> None:
    raw = _edge_rows(frame)
    fitted = build_pipeline(SPEC, None)[:2].fit(raw)  # RawImputer -> FeatureEngineer
    session = _session(transformers_to_onnx(fitted))
    matrix = raw.to_numpy(dtype=np.float64)
    (actual,) = session.run(None, {"input": matrix})
    expected = fitted.transform(raw)
    assert actual.shape == (len(raw), 19)
    # Bit for bit: the same float64 operations in the same order.
    np.testing.assert_array_equal(actual, expected)
    # Right-closed bins: 40 is young (0), 41 middle-aged (1), 60 senior (2), 61 elderly (3).
    age_group = actual[len(frame) :, len(RAW_FEATURES)]
    imputed_age = np.where(np.isnan(EDGE_AGES), fitted[0].statistics_[0], EDGE_AGES)
    expected_groups = np.where(
        np.isnan(EDGE_AGES), np.digitize(imputed_age, [40, 50, 60], right=True), EDGE_AGE_GROUPS
    )
    np.testing.assert_array_equal(age_group, expected_groups)


def test_feature_engineer_converter_also_runs_in_float32(frame: pd.DataFrame) -> None:
    raw = _edge_rows(frame)
    steps = build_pipeline(SPEC, None)[:2].fit(raw)
    model = transformers_to_onnx(steps, dtype=np.float32)
    session = _session(model)
    (actual,) = session.run(None, {"input": raw.to_numpy(dtype=np.float32)})
    assert actual.dtype == np.float32
    # Against the float32-rounded inputs: float32(60.000001) is 60, a senior, not elderly.
    expected = steps.transform(raw.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_wrong_column_count_is_a_clear_error(exported: tuple[Pipeline, OnnxModel]) -> None:
    _, model = exported
    with pytest.raises(
        ValueError, match=r"expected 2-D input with 13 columns .*got shape \(2, 12\)"
    ):
        model.predict_proba(np.zeros((2, 12)))
    with pytest.raises(ValueError, match=r"got shape \(13,\)"):
        model.predict_proba(np.zeros(13))
    with pytest.raises(ValueError, match="missing input columns: thal"):
        model.predict_proba(pd.DataFrame(np.zeros((1, 12)), columns=list(RAW_FEATURES[:-1])))


def test_the_graph_names_its_columns_and_a_mismatch_is_refused(frame: pd.DataFrame) -> None:
    pipeline = build_pipeline(
        SPEC, make_estimator("logistic_regression", ModelConfig(params={"max_iter": 2000}), seed=0)
    ).fit(frame[list(RAW_FEATURES)], frame["target"])
    model = pipeline_to_onnx(pipeline)
    assert OnnxModel.from_bytes(model.SerializeToString()).columns == RAW_FEATURES
    # A frame is read by those names, whatever its own column order.
    reordered = pipeline_to_onnx(pipeline)
    onnx.helper.set_model_props(reordered, {INPUT_COLUMNS_KEY: ",".join(RAW_FEATURES[:-1])})
    with pytest.raises(ValueError, match="input has 13 columns, its metadata names 12"):
        OnnxModel.from_bytes(reordered.SerializeToString())
    del model.metadata_props[:]
    with pytest.raises(ValueError, match="not a heartml graph"):
        OnnxModel.from_bytes(model.SerializeToString())


def test_from_path_and_opsets(
    exported: tuple[Pipeline, OnnxModel], frame: pd.DataFrame, tmp_path: Path
) -> None:
    pipeline, _ = exported
    model = pipeline_to_onnx(pipeline)
    for entry in model.opset_import:
        assert entry.version <= TARGET_OPSET.get(entry.domain, 1), entry
    path = tmp_path / "model.onnx"
    path.write_bytes(model.SerializeToString())
    loaded = OnnxModel.from_path(path, intra_op_num_threads=2)
    assert parity(pipeline, loaded, frame) <= TOLERANCE
    assert parity(pipeline, model, frame) <= TOLERANCE  # a ModelProto is accepted too


def test_unfitted_or_non_pipeline_input_is_refused(frame: pd.DataFrame) -> None:
    with pytest.raises(TypeError, match="Pipeline"):
        pipeline_to_onnx(feature_engineer(SPEC))  # type: ignore[arg-type]
    unfitted = build_pipeline(SPEC, make_estimator("logistic_regression", ModelConfig(), seed=0))
    with pytest.raises(ValueError, match="not fitted"):
        pipeline_to_onnx(unfitted)


def test_serving_side_does_not_load_the_training_stack() -> None:
    # A fresh interpreter: this test process has sklearn loaded already.
    code = (
        "import sys, heartml.onnx_runtime; "
        "bad = sorted(m for m in ('sklearn', 'skl2onnx', 'pandas') if m in sys.modules); "
        "import heartml.onnx_export; "
        "bad += ['skl2onnx (export import)'] if 'skl2onnx' in sys.modules else []; "
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == ""
