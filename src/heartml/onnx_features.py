"""ONNX converters for the spec-driven steps: RawImputer and FeatureEngineer.

ONE generic compiler turns a parsed feature expression (heartml.spec.expressions) into ONNX
operators: a column is a Gather, + - * / are Add/Sub/Mul/Div, unary minus is Neg, a number is a
[1, 1] initializer, and bins(x, edges) is Greater -> Cast -> ReduceSum with a missing x put back
as NaN. Each operation is the same IEEE float64 operation, in the same order, as the numpy
evaluator, so the graph and FeatureEngineer agree bit for bit; there is no per-feature code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto

from heartml.features import FeatureEngineer, RawImputer
from heartml.spec.expressions import BinOp, Bins, Col, Const, Neg, Node

_ONNX_OPS = {"+": "Add", "-": "Sub", "*": "Mul", "/": "Div"}
_RAW_IMPUTER_ALIAS = "HeartmlRawImputer"
_FEATURE_ENGINEER_ALIAS = "HeartmlFeatureEngineer"


def tensor_type(variable_type: Any) -> tuple[type[np.floating[Any]], int]:
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    if isinstance(variable_type, DoubleTensorType):
        return np.float64, TensorProto.DOUBLE
    if isinstance(variable_type, FloatTensorType):
        return np.float32, TensorProto.FLOAT
    raise TypeError(f"heartml's converters take float or double tensors, not {variable_type}")


class _Builder:
    """Adds initializers and nodes to a skl2onnx container with unique names."""

    def __init__(self, scope: Any, container: Any, dtype: Any, element_type: int) -> None:
        self.scope, self.container = scope, container
        self.dtype, self.element_type = dtype, element_type

    def constant(self, name: str, values: Any, numpy_type: Any = None, onnx_type: int = 0) -> str:
        array = np.asarray(values, dtype=numpy_type or self.dtype)
        unique = self.scope.get_unique_variable_name(name)
        self.container.add_initializer(
            unique, onnx_type or self.element_type, list(array.shape), array.ravel().tolist()
        )
        return unique

    def node(self, op_type: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        output = output or self.scope.get_unique_variable_name(f"fe_{op_type.lower()}")
        self.container.add_node(
            op_type, inputs, [output], name=self.scope.get_unique_operator_name(op_type), **attrs
        )
        return output

    def column(self, source: str, index: int) -> str:
        indices = self.constant("fe_index", [index], np.int64, TensorProto.INT64)
        return self.node("Gather", [source, indices], axis=1)  # [N, 1]: stays 2-D

    def nan_where(self, condition: str, values: str) -> str:
        return self.node("Where", [condition, self.constant("fe_nan", [[np.nan]]), values])


def compile_expression(builder: _Builder, node: Node, columns: dict[str, str]) -> str:
    """The ONNX output name of `node`, given the [N, 1] tensor of every raw column."""
    if isinstance(node, Const):
        return builder.constant("fe_const", [[node.value]])
    if isinstance(node, Col):
        return columns[node.name]
    if isinstance(node, Neg):
        return builder.node("Neg", [compile_expression(builder, node.operand, columns)])
    if isinstance(node, Bins):
        value = compile_expression(builder, node.operand, columns)
        above = builder.node("Greater", [value, builder.constant("fe_edges", [list(node.edges)])])
        count = builder.node(
            "ReduceSum",
            [
                builder.node("Cast", [above], to=builder.element_type),
                builder.constant("fe_axis", [1], np.int64, TensorProto.INT64),
            ],
            keepdims=1,
        )
        # Greater(NaN, edge) is false: a missing value would count 0 bins; say missing instead.
        return builder.nan_where(builder.node("IsNaN", [value]), count)
    assert isinstance(node, BinOp)
    left = compile_expression(builder, node.left, columns)
    right = compile_expression(builder, node.right, columns)
    return builder.node(_ONNX_OPS[node.op], [left, right])


# -- skl2onnx parsers, shape calculators and converters ----------------------------------------


def _declare(scope: Any, model: Any, inputs: list[Any], alias: str, width: int) -> list[Any]:
    """Declare a 2-D output at parse time: the ColumnTransformer after these steps selects
    columns by index and needs the shape before shape calculators run."""
    operator = scope.declare_local_operator(alias, model)
    operator.inputs = inputs
    output_type = inputs[0].type.__class__([None, width])
    operator.outputs.append(scope.declare_local_variable(alias.lower(), output_type))
    return list(operator.outputs)


def _parse_raw_imputer(
    scope: Any, model: RawImputer, inputs: list[Any], custom_parsers: Any = None
) -> list[Any]:
    return _declare(scope, model, inputs, _RAW_IMPUTER_ALIAS, len(model.columns))


def _parse_feature_engineer(
    scope: Any, model: FeatureEngineer, inputs: list[Any], custom_parsers: Any = None
) -> list[Any]:
    width = len(model.columns) + len(model.expressions)
    return _declare(scope, model, inputs, _FEATURE_ENGINEER_ALIAS, width)


def _shape(operator: Any) -> None:
    input_type = operator.inputs[0].type
    tensor_type(input_type)
    expected = len(operator.raw_operator.columns)
    width = input_type.shape[1] if len(input_type.shape) == 2 else None
    if width is not None and width != expected:
        raise ValueError(
            f"{type(operator.raw_operator).__name__} takes {expected} columns, the ONNX input has {width}"
        )
    out_width = operator.outputs[0].type.shape[1]
    operator.outputs[0].type = input_type.__class__([input_type.shape[0], out_width])


def _convert_raw_imputer(scope: Any, operator: Any, container: Any) -> None:
    """Where(IsNaN(x), statistics, x): RawImputer.transform, in any float type."""
    imputer: RawImputer = operator.raw_operator
    builder = _Builder(scope, container, *tensor_type(operator.inputs[0].type))
    source = operator.inputs[0].full_name
    fill = builder.constant("raw_statistics", [imputer.statistics_.tolist()])
    builder.node(
        "Where", [builder.node("IsNaN", [source]), fill, source], operator.outputs[0].full_name
    )


def _convert_feature_engineer(scope: Any, operator: Any, container: Any) -> None:
    engineer: FeatureEngineer = operator.raw_operator
    builder = _Builder(scope, container, *tensor_type(operator.inputs[0].type))
    raw = operator.inputs[0].full_name
    columns = {name: builder.column(raw, index) for index, name in enumerate(engineer.columns)}
    values = [compile_expression(builder, node, columns) for _, node in engineer.parsed()]
    if not values:
        builder.node("Identity", [raw], operator.outputs[0].full_name)
        return
    engineered = values[0] if len(values) == 1 else builder.node("Concat", values, axis=1)
    # A division by zero (or an overflow) is missing, as FeatureEngineer makes it: one
    # IsInf/Where over the whole engineered block (two nodes per feature cost ~15% of a row).
    finite = builder.nan_where(builder.node("IsInf", [engineered]), engineered)
    builder.node("Concat", [raw, finite], operator.outputs[0].full_name, axis=1)


_registered = False


def register_converters() -> None:
    """Teach skl2onnx about RawImputer and FeatureEngineer (once per process)."""
    global _registered
    if _registered:
        return
    from skl2onnx import update_registered_converter

    update_registered_converter(
        RawImputer, _RAW_IMPUTER_ALIAS, _shape, _convert_raw_imputer, parser=_parse_raw_imputer
    )
    update_registered_converter(
        FeatureEngineer,
        _FEATURE_ENGINEER_ALIAS,
        _shape,
        _convert_feature_engineer,
        parser=_parse_feature_engineer,
    )
    _registered = True
