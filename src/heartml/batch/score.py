"""One chunk (or Dask partition): validate, score, build the output rows and the rejects.

`score_frame` is a pure function of the chunk and the model, shared by both engines, so the
local and the Dask engine give the same output. Labels (the imputed fields, the risk level, the
model version) are dictionary-encoded: few distinct values, stored as small codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from heartml.batch.contract import (
    IMPUTED_SEPARATOR,
    RAW_PROBABILITY_COLUMN,
    REASONS_COLUMN,
    SCORE_COLUMNS,
    Contract,
)
from heartml.batch.model import ScoringModel
from heartml.batch.parse import to_arrow
from heartml.batch.validate import Chunk, ChunkValidation, column, names, validate_frame
from heartml.calibration.document import apply

LABEL_INDEX = pa.int32()


@dataclass
class ScoredChunk:
    rows: int  # rows read
    scored: pa.Table  # valid rows, without the `row` column (added when the offset is known)
    positions: np.ndarray  # 0-based position in the chunk of every scored row
    rejects: pa.Table  # reasons and the input fields as text, without the `row` column
    reject_positions: np.ndarray  # 0-based position in the chunk of every rejected row
    imputed: int  # scored rows that had an unknown value


def labels(codes: np.ndarray, dictionary: pa.Array) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(
        pa.array(codes.astype(np.int32, copy=False), LABEL_INDEX), dictionary
    )


def risk_levels(probability: np.ndarray, contract: Contract) -> pa.DictionaryArray:
    """The spec's risk band of each probability (a band holds p < its `below`)."""
    bands = np.searchsorted(contract.risk_edges, probability, side="right")
    return labels(bands, contract.risk_labels)


def imputed_labels(
    unknown: np.ndarray, imputed: np.ndarray, contract: Contract
) -> pa.DictionaryArray:
    """Per row, the names of its unknown fields ("slope,oldpeak,thalach,exang"; "" for none).

    `unknown` holds one row per optional column, `imputed` their OR. The rows with an unknown
    field (few) are packed into one bit pattern each; only the patterns present are turned
    into text. The dictionary is "" and then the patterns in order of first appearance: a
    reader joining the chunks' dictionaries (pyarrow, pandas) then gets the same categories
    however the file was cut into chunks, so both engines' outputs read back equal.
    """
    codes = np.zeros(len(imputed), dtype=np.int32)
    rows = np.flatnonzero(imputed)
    if len(rows) == 0:
        return labels(codes, pa.array([""], pa.string()))
    packed = np.packbits(unknown[:, rows].T, axis=1)
    patterns, first, inverse = np.unique(packed, axis=0, return_index=True, return_inverse=True)
    rank = np.empty(len(patterns), dtype=np.int32)
    rank[np.argsort(first, kind="stable")] = np.arange(1, len(patterns) + 1, dtype=np.int32)
    codes[rows] = rank[inverse.reshape(-1)]
    names_ = contract.optional_names
    text = [""] * (len(patterns) + 1)
    for pattern, code in zip(patterns, rank.tolist(), strict=True):
        bits = np.unpackbits(pattern, count=len(names_)).astype(bool)
        text[code] = IMPUTED_SEPARATOR.join(n for n, hit in zip(names_, bits, strict=True) if hit)
    return labels(codes, pa.array(text, pa.string()))


def score_frame(frame: Chunk, model: ScoringModel) -> ScoredChunk:
    """Validate and score a chunk with the package's model and dataset spec."""
    contract = model.contract()
    check = validate_frame(frame, contract, model.column_order())
    valid = check.valid
    bad = np.flatnonzero(~valid)
    n = len(frame)
    # Every row goes through the model (each row is scored on its own, and a NaN or an odd value
    # cannot fail the graph); dropping the few invalid rows from the finished table is cheaper
    # than gathering the valid ones out of every input array.
    probability = model.load().predict_proba(check.matrix) if n else np.empty(0)
    raw = probability
    if model.calibration is not None:
        probability = apply(model.calibration, raw)
    position = {name: j for j, name in enumerate(contract.names)}
    arrays: list[pa.Array | pa.ChunkedArray] = []
    fields: list[pa.Field] = []
    for name in names(frame):
        j = position.get(name)
        if j is not None:
            values = check.given[j]
            # A valid row has every required column, so only the optional ones can be null;
            # declaring the others required saves the encoder their null bookkeeping.
            nullable = not contract.columns[j].required
            array = pa.array(values, mask=np.isnan(values)) if nullable else pa.array(values)
            fields.append(pa.field(name, pa.float64(), nullable=nullable))
        else:
            array = to_arrow(column(frame, name))
            fields.append(pa.field(name, array.type))
        arrays.append(array)
    arrays += [
        imputed_labels(check.unknown, check.imputed, contract),
        pa.array(probability),
        pa.array((probability >= model.threshold).astype(np.int8)),
        risk_levels(probability, contract),
        labels(np.zeros(n, dtype=np.int32), pa.array([model.version], pa.string())),
    ]
    fields += [
        pa.field(name, array.type, nullable=False)
        for name, array in zip(SCORE_COLUMNS, arrays[-5:], strict=True)
    ]
    if model.calibration is not None:  # the model's own, beside the calibrated probability
        at = len(arrays) - 3
        arrays.insert(at, pa.array(raw))
        fields.insert(at, pa.field(RAW_PROBABILITY_COLUMN, pa.float64(), nullable=False))
    scored = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    if len(bad):
        scored = scored.filter(pa.array(valid))
        positions = np.flatnonzero(valid)
    else:
        positions = np.arange(n)
    imputed = int(np.count_nonzero(check.imputed))
    return ScoredChunk(
        n, scored, positions, rejects_table(frame, check, bad, contract), bad, imputed
    )


def rejects_table(
    frame: Chunk, check: ChunkValidation, bad: np.ndarray, contract: Contract
) -> pa.Table:
    """The invalid rows: reasons, then every input field as text. Numbers are written from
    their parsed value, so both engines write the same file whatever types their readers chose;
    a field that is not a number is written as it was."""
    columns: dict[str, pa.Array] = {REASONS_COLUMN: pa.array(check.reasons, pa.string())}
    position = {name: j for j, name in enumerate(contract.names)}
    for name in names(frame):
        j = position.get(name)
        if j is not None:
            text = numbers_text(check.given[j][bad])
            written = check.texts.get(name)
            if written:
                for k, row in enumerate(bad.tolist()):
                    text[k] = written.get(row, text[k])
            columns[name] = pa.array(text, pa.string(), from_pandas=True)
        else:
            passthrough = to_arrow(column(frame, name)).take(pa.array(bad))
            try:
                columns[name] = passthrough.cast(pa.string())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                columns[name] = pa.array(
                    [None if v is None else str(v) for v in passthrough.to_pylist()], pa.string()
                )
    return pa.table(columns)


def numbers_text(values: np.ndarray) -> np.ndarray:
    """63.0 -> "63", 2.3 -> "2.3", NaN -> None (an empty field)."""
    text = values.astype(str).astype(object)
    whole = np.isfinite(values) & (np.abs(values) < 1e15)
    whole[whole] = values[whole] == np.round(values[whole])
    text[whole] = values[whole].astype(np.int64).astype(str)
    text[np.isnan(values)] = None
    return text
