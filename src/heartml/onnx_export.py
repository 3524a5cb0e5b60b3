"""Exporting a fitted heartml pipeline to ONNX, with scikit-learn parity checks.

The exported graph takes the dataset's raw columns (the spec's order, NaN for missing) as one
input `input` [None, k] of float64, and returns `label` [None] (int64) and `probabilities`
[None, 2] (float64, no ZipMap). The column order is written into the model's metadata.

Why float64 input (measured on the 303 Cleveland rows, max |Δp| against sklearn):

    input      random_forest  logistic_regression  gradient_boosting  svm (Platt)
    float32    3.3e-02        1.2e-07              1.0e-07            2.5e-07
    float64    7.8e-07        2.2e-16              1.4e-07            2.4e-07

With float32 input the features are computed in float32 while sklearn computes them in float64;
a tree split sitting between two neighbouring training values then goes the other way for some
rows (a whole tree's vote, 1/n_estimators). Casting raw values to float32 also changes them
(oldpeak 2.3 -> 2.2999999523), so float64 is the only input type that keeps the model's inputs
exact. The price is small: onnxruntime's ai.onnx.ml `Imputer` has no float64 kernel, so
SimpleImputer is converted here with IsNaN/Where instead.

sklearn's own trees compare float32(X) with their thresholds, and skl2onnx's float32 tree
converters reproduce exactly that comparison, whereas feeding them float64 does not (their
thresholds are stored as float32). So the graph is built from two conversions joined by a Cast:
preprocessing in float64 (bit-exact), then the estimator in the dtype sklearn itself predicts in.
What remains of the float64 row is float32 arithmetic inside onnxruntime's ai.onnx.ml kernels:
tree leaf weights summed in float32, and SVMClassifier's kernel sums.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier

from heartml import __version__
from heartml.features import RawImputer
from heartml.onnx_features import register_converters, tensor_type
from heartml.onnx_runtime import (
    INPUT_COLUMNS_KEY,
    INPUT_NAME,
    LABEL_OUTPUT,
    PROBABILITIES_OUTPUT,
    OnnxModel,
)

# ai.onnx 21 is the newest opset that every onnxruntime the project allows (>= 1.18) executes;
# skl2onnx only needs ai.onnx.ml <= 3 for the operators used here.
TARGET_OPSET: dict[str, int] = {"": 21, "ai.onnx.ml": 3}

# Estimators that cast X to float32 before comparing it with their split thresholds.
_FLOAT32_ESTIMATORS = (
    DecisionTreeClassifier,
    ExtraTreeClassifier,
    RandomForestClassifier,
    ExtraTreesClassifier,
    GradientBoostingClassifier,
)

# --- SimpleImputer for any float type ------------------------------------------------------


def _convert_simple_imputer(scope: Any, operator: Any, container: Any) -> None:
    """Where(IsNaN(x), statistic, x): onnxruntime's ai.onnx.ml Imputer only runs float32 (and
    stores the statistics as float32), so the stock converter cannot serve a float64 graph."""
    imputer: SimpleImputer = operator.raw_operator
    if len(operator.inputs) != 1:
        raise NotImplementedError("SimpleImputer with several ONNX inputs is not supported")
    if imputer.add_indicator:
        raise NotImplementedError("SimpleImputer(add_indicator=True) is not supported")
    if not (isinstance(imputer.missing_values, float) and np.isnan(imputer.missing_values)):
        raise NotImplementedError("only SimpleImputer(missing_values=np.nan) is supported")
    statistics = np.asarray(imputer.statistics_, dtype=np.float64)
    if np.isnan(statistics).any():
        # sklearn drops all-missing columns then; the graph would keep them.
        raise NotImplementedError("SimpleImputer saw a column with no values at fit time")
    dtype, element_type = tensor_type(operator.inputs[0].type)
    source = operator.inputs[0].full_name
    fill = scope.get_unique_variable_name("imputer_statistics")
    container.add_initializer(
        fill, element_type, [1, statistics.size], statistics.astype(dtype).tolist()
    )
    missing = scope.get_unique_variable_name("imputer_missing")
    container.add_node("IsNaN", [source], [missing], name=scope.get_unique_operator_name("IsNaN"))
    container.add_node(
        "Where",
        [missing, fill, source],
        [operator.outputs[0].full_name],
        name=scope.get_unique_operator_name("Where"),
    )


# --- conversion ----------------------------------------------------------------------------


def input_columns(transformers: BaseEstimator) -> tuple[str, ...]:
    """The raw columns a fitted pipeline (or its transformer part) takes, in order."""
    first = transformers[0] if isinstance(transformers, Pipeline) else transformers
    if not isinstance(first, RawImputer):
        raise TypeError("expected a heartml pipeline that starts with its RawImputer")
    return tuple(first.columns)


def transformers_to_onnx(
    transformers: BaseEstimator, dtype: type[np.floating[Any]] = np.float64
) -> onnx.ModelProto:
    """Fitted transformer(s) taking the k raw columns -> ONNX with input `input` [None, k].

    float64 by default (see the module docstring); float32 exists for comparisons.
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    register_converters()
    if np.dtype(dtype) not in (np.float64, np.float32):
        raise TypeError(f"dtype must be float64 or float32, not {dtype}")
    onnx_type = DoubleTensorType if np.dtype(dtype) == np.float64 else FloatTensorType
    return convert_sklearn(
        transformers,
        initial_types=[(INPUT_NAME, onnx_type([None, len(input_columns(transformers))]))],
        target_opset=TARGET_OPSET,
        # Per conversion, not registered: other skl2onnx users keep the stock imputer.
        custom_conversion_functions={SimpleImputer: _convert_simple_imputer},
    )


def _predicts_in_float32(model: BaseEstimator) -> bool:
    core = model.estimator if isinstance(model, CalibratedClassifierCV) else model
    return isinstance(core, _FLOAT32_ESTIMATORS)


def _estimator_to_onnx(model: BaseEstimator, n_features: int, float32: bool) -> onnx.ModelProto:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    onnx_type = FloatTensorType if float32 else DoubleTensorType
    return convert_sklearn(
        model,
        initial_types=[("features", onnx_type([None, n_features]))],
        target_opset=TARGET_OPSET,
        options={id(model): {"zipmap": False}},  # plain tensors; ZipMap gives lists of dicts
    )


def _join(
    front: onnx.ModelProto, back: onnx.ModelProto, float32: bool, columns: tuple[str, ...]
) -> onnx.ModelProto:
    """front's single output feeds back's single input (cast to float32 for tree models)."""
    back = onnx.compose.add_prefix(back, "model_")
    (features_out,) = front.graph.output
    (model_in,) = back.graph.input
    label_out, probabilities_out = back.graph.output
    nodes = [*front.graph.node]
    if float32:
        nodes.append(
            helper.make_node("Cast", [features_out.name], [model_in.name], to=TensorProto.FLOAT)
        )
    else:
        nodes.append(helper.make_node("Identity", [features_out.name], [model_in.name]))
    nodes.extend(back.graph.node)
    nodes.append(helper.make_node("Identity", [label_out.name], [LABEL_OUTPUT]))
    # float64 probabilities whatever the estimator computed in, so callers see one type.
    nodes.append(
        helper.make_node(
            "Cast", [probabilities_out.name], [PROBABILITIES_OUTPUT], to=TensorProto.DOUBLE
        )
    )
    label_type = label_out.type.tensor_type.elem_type
    graph = helper.make_graph(
        nodes,
        "heartml_pipeline",
        inputs=list(front.graph.input),
        outputs=[
            helper.make_tensor_value_info(LABEL_OUTPUT, label_type, [None]),
            helper.make_tensor_value_info(PROBABILITIES_OUTPUT, TensorProto.DOUBLE, [None, 2]),
        ],
        initializer=[*front.graph.initializer, *back.graph.initializer],
    )
    # Both halves were written for TARGET_OPSET; each declares the lowest version its nodes need.
    opsets: dict[str, int] = {}
    for entry in (*front.opset_import, *back.opset_import):
        opsets[entry.domain] = max(opsets.get(entry.domain, 0), entry.version)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(domain, v) for domain, v in sorted(opsets.items())],
        producer_name="heartml",
        producer_version=__version__,
        doc_string="heartml pipeline: raw columns (float64, NaN = missing) -> P(positive class)",
    )
    model.ir_version = max(front.ir_version, back.ir_version)
    helper.set_model_props(model, {INPUT_COLUMNS_KEY: ",".join(columns)})
    onnx.checker.check_model(model, full_check=True)
    return model


def pipeline_to_onnx(pipeline: Pipeline) -> onnx.ModelProto:
    """A fitted [FeatureEngineer -> preprocess -> binary classifier] pipeline -> ONNX.

    Input `input` [None, k] float64 in the spec's column order; outputs `label` [None] and
    `probabilities` [None, 2] (float64).
    """
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) < 2:
        raise TypeError("expected a fitted sklearn Pipeline of transformers and a classifier")
    transformers, model = pipeline[:-1], pipeline[-1]
    if not hasattr(model, "classes_"):
        raise ValueError("the pipeline is not fitted")
    if len(model.classes_) != 2:
        raise ValueError(f"expected a binary classifier, got classes {list(model.classes_)}")
    front = transformers_to_onnx(transformers)
    float32 = _predicts_in_float32(model)
    back = _estimator_to_onnx(model, int(model.n_features_in_), float32)
    return _join(front, back, float32, input_columns(transformers))


def parity(
    pipeline: Pipeline, onnx_model: OnnxModel | onnx.ModelProto | bytes, frame: Any
) -> float:
    """max |Δp| between sklearn predict_proba[:, 1] and the ONNX model on frame's raw columns."""
    if not isinstance(onnx_model, OnnxModel):
        content = (
            onnx_model.SerializeToString()
            if isinstance(onnx_model, onnx.ModelProto)
            else onnx_model
        )
        onnx_model = OnnxModel.from_bytes(content)
    raw = frame.loc[:, list(input_columns(pipeline))]
    if len(raw) == 0:
        raise ValueError("parity needs at least one row")
    expected = pipeline.predict_proba(raw)[:, 1]
    actual = onnx_model.predict_proba(raw)
    if not np.isfinite(actual).all():
        return float("inf")
    return float(np.max(np.abs(expected - actual)))
