"""Scoring a packaged ONNX model with onnxruntime: the serving side of the ONNX export.

Deliberately imports only numpy and onnxruntime (no scikit-learn, no skl2onnx),
so that the prediction service starts fast and ships without the training stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

# The contract between onnx_export (which writes it) and this module (which reads it).
from heartml.onnx_names import INPUT_COLUMNS_KEY as INPUT_COLUMNS_KEY
from heartml.onnx_names import INPUT_NAME as INPUT_NAME
from heartml.onnx_names import LABEL_OUTPUT as LABEL_OUTPUT
from heartml.onnx_names import PROBABILITIES_OUTPUT as PROBABILITIES_OUTPUT

_NUMPY_DTYPES: dict[str, type[np.floating[Any]]] = {
    "tensor(double)": np.float64,
    "tensor(float)": np.float32,
}


def raw_matrix(
    data: Any, columns: tuple[str, ...], dtype: type[np.floating[Any]] = np.float64
) -> np.ndarray:
    """A DataFrame (columns by name) or a 2-D array (`columns` order) -> [n, k] array.

    Same rules and messages as heartml.features.raw_matrix, so both paths reject the same inputs.
    """
    if hasattr(data, "columns") and hasattr(data, "loc"):  # a DataFrame, without importing pandas
        missing = [name for name in columns if name not in data.columns]
        if missing:
            raise ValueError(f"missing input columns: {', '.join(missing)}")
        matrix = data.loc[:, list(columns)].to_numpy(dtype=dtype, na_value=np.nan)
    else:
        matrix = np.asarray(data, dtype=dtype)
    if matrix.ndim != 2 or matrix.shape[1] != len(columns):
        raise ValueError(
            f"expected 2-D input with {len(columns)} columns ({', '.join(columns)}), "
            f"got shape {matrix.shape}"
        )
    return np.ascontiguousarray(matrix)


# onnxruntime's NoopElimination drops `x + c`, `x - c`, `x * c`, `x / c` when it takes the
# double constant c for 0 or 1, and it does so for a c that is only 0 or 1 in float32 (found by
# the feature-grammar property test: `a + 1e-100` gave a, not a + 1e-100, at a = 0). The graph
# must compute exactly what numpy computes, so every heartml session turns that pass off.
DISABLED_OPTIMIZERS = ["NoopElimination"]


def inference_session(content: bytes, *, intra_op_num_threads: int = 1) -> ort.InferenceSession:
    """The one way heartml opens an ONNX graph in onnxruntime (CPU)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_num_threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(
        content,
        sess_options=options,
        providers=["CPUExecutionProvider"],
        disabled_optimizers=DISABLED_OPTIMIZERS,
    )


class OnnxModel:
    """An exported heartml pipeline loaded in onnxruntime (CPU): raw columns in, P(class=1) out.

    `columns` is the raw column order the graph was exported with (from its metadata).
    """

    def __init__(self, session: ort.InferenceSession) -> None:
        inputs, outputs = session.get_inputs(), [o.name for o in session.get_outputs()]
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME:
            raise ValueError(f"expected one ONNX input named {INPUT_NAME!r}, got {inputs}")
        if PROBABILITIES_OUTPUT not in outputs:
            raise ValueError(f"ONNX model has no {PROBABILITIES_OUTPUT!r} output: {outputs}")
        if inputs[0].type not in _NUMPY_DTYPES:
            raise ValueError(f"unsupported ONNX input type {inputs[0].type}")
        columns = session.get_modelmeta().custom_metadata_map.get(INPUT_COLUMNS_KEY)
        if not columns:
            raise ValueError(
                f"ONNX model has no {INPUT_COLUMNS_KEY!r} metadata: not a heartml graph"
            )
        width = inputs[0].shape[1] if len(inputs[0].shape) == 2 else None
        self.columns: tuple[str, ...] = tuple(columns.split(","))
        if isinstance(width, int) and width != len(self.columns):
            raise ValueError(
                f"ONNX input has {width} columns, its metadata names {len(self.columns)}"
            )
        self.session = session
        self.dtype = _NUMPY_DTYPES[inputs[0].type]

    @classmethod
    def from_bytes(cls, content: bytes, *, intra_op_num_threads: int = 1) -> OnnxModel:
        """Load from serialized ONNX.

        One intra-op thread is the default because serving scores one row per request, where
        thread start-up costs more than it saves; raise it for large batches.
        """
        return cls(inference_session(content, intra_op_num_threads=intra_op_num_threads))

    @classmethod
    def from_path(cls, path: str | Path, *, intra_op_num_threads: int = 1) -> OnnxModel:
        return cls.from_bytes(Path(path).read_bytes(), intra_op_num_threads=intra_op_num_threads)

    def predict_proba(self, data: Any) -> np.ndarray:
        """P(class=1) for each row, float64, shape [n]; NaN marks a missing input value."""
        matrix = raw_matrix(data, self.columns, self.dtype)
        (probabilities,) = self.session.run([PROBABILITIES_OUTPUT], {INPUT_NAME: matrix})
        return np.asarray(probabilities, dtype=np.float64)[:, 1]
