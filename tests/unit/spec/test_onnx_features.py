"""Property: the numpy features and the compiled ONNX features are equal in float64, bit for bit,
for both shipped specs and for random expressions drawn from the grammar."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer
from sklearn.pipeline import Pipeline

from heartml.data.parse import parse_records
from heartml.features import FeatureEngineer, RawImputer, build_pipeline
from heartml.onnx_export import transformers_to_onnx
from heartml.onnx_runtime import inference_session
from heartml.spec import DatasetSpec, load_spec
from heartml.spec.expressions import Bins
from oracles import HEART_SPEC_FILE, REPO_ROOT

pytestmark = pytest.mark.task2

HEART = load_spec(HEART_SPEC_FILE)
BREAST = load_spec(REPO_ROOT / "configs" / "datasets" / "breast_cancer.yaml")
PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


def training_rows(spec: DatasetSpec) -> pd.DataFrame:
    if spec is HEART:
        return parse_records((REPO_ROOT / spec.source.shipped_copy).read_bytes(), spec).frame
    frame = load_breast_cancer(as_frame=True).frame
    return frame.rename(columns={c.source_name: n for n, c in spec.columns.items()})


class Compiled:
    """A spec's RawImputer -> FeatureEngineer, fitted, and its ONNX graph in onnxruntime."""

    def __init__(self, spec: DatasetSpec) -> None:
        self.spec = spec
        self.steps = build_pipeline(spec, None)[:2].fit(training_rows(spec))
        graph = transformers_to_onnx(self.steps).SerializeToString()
        self.session = inference_session(graph)

    def both(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        (onnx_out,) = self.session.run(None, {"input": rows})
        return self.steps.transform(rows), onnx_out


COMPILED = {spec.name: Compiled(spec) for spec in (HEART, BREAST)}


def edges_of(spec: DatasetSpec, column: str) -> list[float]:
    """Every bin edge a feature applies to this column: values exactly on an edge are the
    likeliest place for two implementations to disagree."""
    return [
        edge
        for node in spec.parsed_features.values()
        if isinstance(node, Bins) and getattr(node.operand, "name", None) == column
        for edge in node.edges
    ]


def value_strategy(spec: DatasetSpec, name: str) -> st.SearchStrategy[float]:
    column = spec.columns[name]
    if column.codes is not None:
        values: st.SearchStrategy[float] = st.sampled_from(sorted(float(c) for c in column.codes))
    else:
        low, high = column.range or (0.0, 1.0)
        special = [low, high, *edges_of(spec, name), *column.missing_values]
        values = st.one_of(
            st.sampled_from(special), st.floats(low, high, allow_nan=False, allow_infinity=False)
        )
    if not column.required:
        values = st.one_of(values, st.just(math.nan))  # a null where the spec allows one
    return values


def rows_strategy(spec: DatasetSpec) -> st.SearchStrategy[np.ndarray]:
    row = st.tuples(*(value_strategy(spec, name) for name in spec.raw_names))
    return st.lists(row, min_size=1, max_size=20).map(lambda r: np.array(r, dtype=np.float64))


@pytest.mark.parametrize("name", ["uci_heart", "breast_cancer"])
def test_shipped_specs_numpy_and_onnx_features_are_identical(name: str) -> None:
    compiled = COMPILED[name]

    @PROPERTY
    @given(rows=rows_strategy(compiled.spec))
    def check(rows: np.ndarray) -> None:
        numpy_out, onnx_out = compiled.both(rows)
        assert onnx_out.shape == (len(rows), len(compiled.spec.all_features))
        np.testing.assert_array_equal(onnx_out, numpy_out)

    check()


# -- random expressions from the grammar ----------------------------------------------------

COLUMNS = ("a", "b", "c")
numbers = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["0", "0.1", "1e-300", "1e300", "-0.0"]),
)


def expressions() -> st.SearchStrategy[str]:
    leaves = st.one_of(st.sampled_from(COLUMNS), numbers)

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        binary = st.tuples(inner, st.sampled_from("+-*/"), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        )
        negated = inner.map(lambda e: f"-({e})")
        edges = st.lists(st.floats(-100, 100, allow_nan=False), min_size=1, max_size=4, unique=True)
        binned = st.tuples(inner, edges).map(
            lambda t: f"bins({t[0]}, [{', '.join(repr(e) for e in sorted(t[1]))}])"
        )
        return st.one_of(binary, negated, binned)

    tree = st.recursive(leaves, extend, max_leaves=8)
    # The grammar refuses expressions without a column; add one when the draw has none.
    return tree.map(lambda e: e if re.search(r"\b[abc]\b", e) else f"({e}) + a")


column_values = st.one_of(
    st.floats(-200, 200, allow_nan=False),
    st.sampled_from([0.0, -0.0, 1e-300, 1e300, 40.0, math.nan]),
)


def compile_random(expression: str) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    imputer = RawImputer(columns=COLUMNS, coded=(False,) * 3).fit(np.ones((2, 3)))
    # An imputer that fills NaN with NaN: the raw NaNs reach the expression, the harder case.
    imputer.statistics_ = np.full(3, np.nan)
    engineer = FeatureEngineer(columns=COLUMNS, expressions=(("f", expression),))
    steps = Pipeline([("impute", imputer), ("features", engineer.fit(np.ones((2, 3))))])
    graph = transformers_to_onnx(steps).SerializeToString()
    session = inference_session(graph)

    def both(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        (onnx_out,) = session.run(None, {"input": rows})
        return steps.transform(rows), onnx_out

    return both


@PROPERTY
@given(
    expression=expressions(),
    rows=st.lists(st.tuples(column_values, column_values, column_values), min_size=1, max_size=8),
)
def test_random_expressions_agree_bit_for_bit(expression: str, rows: list) -> None:
    matrix = np.array(rows, dtype=np.float64)
    numpy_out, onnx_out = compile_random(expression)(matrix)
    np.testing.assert_array_equal(onnx_out[:, -1], numpy_out[:, -1], err_msg=expression)


def test_tiny_constants_are_not_taken_for_zero() -> None:
    """onnxruntime's NoopElimination turned `a + 1e-100` into `a` (heartml turns it off)."""
    numpy_out, onnx_out = compile_random("a + 1e-100")(np.array([[0.0, 1.0, 1.0]]))
    assert numpy_out[0, -1] == onnx_out[0, -1] == 1e-100
