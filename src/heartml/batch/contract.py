"""What batch scoring derives from a package's dataset spec, computed once per process.

Nothing here names a column: the columns, which of them may be unknown, what counts as missing,
the field order of header-less files and the risk bands all come from the spec the package
carries (heartml.spec). The output file's own columns are named here, once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from heartml.errors import DataError
from heartml.spec import Column, DatasetSpec, spec_from_text

ROW_COLUMN = "row"  # 1-based data row of the input (header and blank lines not counted)
REASONS_COLUMN = "reasons"
IMPUTED_COLUMN = "imputed"
PROBABILITY_COLUMN = "probability"
PREDICTION_COLUMN = "prediction"
RISK_COLUMN = "risk_level"
# With a site calibration applied (`heartml score --site`): the model's own probability, beside
# the calibrated `probability`.
RAW_PROBABILITY_COLUMN = "model_probability"
SCORE_COLUMNS = (
    IMPUTED_COLUMN,
    PROBABILITY_COLUMN,
    PREDICTION_COLUMN,
    RISK_COLUMN,
    "model_version",
)
OUTPUT_COLUMNS = frozenset({ROW_COLUMN, *SCORE_COLUMNS, RAW_PROBABILITY_COLUMN})
IMPUTED_SEPARATOR = ","  # "slope,oldpeak": the imputed fields of a row, in the spec's order


class BatchError(DataError):
    """The input file (not one row of it) cannot be scored; the message names the problem."""


@dataclass(frozen=True)
class Contract:
    """A dataset spec, in the shape the chunk functions use."""

    spec: DatasetSpec
    columns: tuple[Column, ...]  # the raw input columns, in the spec's order
    names: tuple[str, ...]
    markers: tuple[str, ...]  # texts that mean "not recorded" (the spec's, and only those)
    optional: tuple[int, ...]  # positions (in `columns`) of the columns that may be unknown
    headerless: tuple[tuple[str, ...], ...]  # field orders a file without a header may have
    risk_edges: np.ndarray = field(repr=False)
    risk_labels: pa.Array = field(repr=False)

    @property
    def optional_names(self) -> tuple[str, ...]:
        return tuple(self.names[j] for j in self.optional)

    def model_order(self, model_columns: tuple[str, ...]) -> np.ndarray:
        """Position in `columns` of each column the ONNX graph takes, in the graph's order."""
        if sorted(model_columns) != sorted(self.names):
            raise BatchError(
                "the package's model takes the columns "
                f"{', '.join(model_columns)}; its dataset spec declares {', '.join(self.names)}"
            )
        return np.array([self.names.index(name) for name in model_columns], dtype=np.intp)


def contract(spec: DatasetSpec) -> Contract:
    names = spec.raw_names
    target = spec.target.column
    # A header-less file has the source's field order: the features alone, or with the label.
    full = spec.source.columns or (*names, target)
    bands = spec.risk_bands
    return Contract(
        spec=spec,
        columns=spec.raw_columns,
        names=names,
        markers=spec.missing_markers,
        optional=tuple(j for j, column in enumerate(spec.raw_columns) if not column.required),
        headerless=(tuple(name for name in full if name != target), tuple(full)),
        risk_edges=np.array([band.below for band in bands[:-1]], dtype=np.float64),
        risk_labels=pa.array([band.label for band in bands], pa.string()),
    )


_CONTRACTS: dict[str, Contract] = {}
_LOCK = threading.Lock()


def contract_from_text(spec_text: str) -> Contract:
    """The contract of a package's dataset_spec.yaml, parsed once per process (Dask workers
    receive the text, which pickles small, and parse it on their first partition)."""
    with _LOCK:
        found = _CONTRACTS.get(spec_text)
        if found is None:
            found = _CONTRACTS[spec_text] = contract(spec_from_text(spec_text))
        return found
