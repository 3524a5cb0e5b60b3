"""Batch scoring: a file of patients in, a file of scores out, with a verified package's ONNX model.

- Streams the input in chunks (pyarrow batches for parquet, pandas chunks for CSV and the raw UCI
  format), so memory stays flat whatever the file size.
- Validates every row with the API's rules (heartml.coding: UCI codes and clinical ranges; only
  ca, thal, chol and trestbps may be missing, and 0 chol/trestbps means missing), vectorised per
  column. Invalid rows go to a rejects file with their row number and reasons; rows with missing
  values are scored (the pipeline imputes them) and flagged in the `imputed` column.
- The same chunk function runs locally or on Dask workers (`engine="dask"`), so both engines give
  identical results; the client writes the partitions in input order.

Only a problem with the file itself (unreadable, a required column absent, a line with too many
fields) stops the run, with one line naming it; a bad row never does.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import math
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from queue import Full, Queue
from typing import Any, Literal, TypeAlias, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from heartml.coding import FILE_COLUMNS, RAW_COLUMNS, RAW_FEATURES
from heartml.errors import DataError
from heartml.onnx_runtime import OnnxModel

T = TypeVar("T")
Engine = Literal["local", "dask"]
Progress = Callable[[int, int | None], None]  # (rows just processed, total rows if known)

DEFAULT_CHUNK_SIZE = 100_000
ROW_COLUMN = "row"  # 1-based data row of the input (header and blank lines not counted)
REASONS_COLUMN = "reasons"
IMPUTED_COLUMN = "imputed"
SCORE_COLUMNS = (IMPUTED_COLUMN, "probability", "prediction", "risk_level", "model_version")
# The API's rule: only these may be absent (UCI files leave them out; 0 chol/trestbps = absent).
MAY_BE_MISSING: tuple[str, ...] = tuple(
    c.name for c in RAW_COLUMNS if c.missing_zero or c.name in ("ca", "thal")
)
# Probability bands for people, the API's (heartml.serving.schemas.risk_level, checked by a test);
# the yes/no prediction uses the package's threshold instead.
RISK_BANDS: tuple[tuple[float, str], ...] = ((0.3, "low"), (0.6, "moderate"), (math.inf, "high"))
INPUT_SUFFIXES = (".csv", ".parquet", ".data")
OUTPUT_SUFFIXES = (".csv", ".parquet")
MISSING_TEXT = ("?",)  # UCI's marker, on top of pandas' usual NA strings and empty fields

_RISK_LABELS = pa.array([label for _, label in RISK_BANDS], pa.string())
_LABEL_TYPE = pa.dictionary(pa.int8(), pa.string())  # few distinct values: stored as codes
_RISK_EDGES = np.array([edge for edge, _ in RISK_BANDS[:-1]])
# Every combination of missing fields, indexed by its bit mask (bit i = MAY_BE_MISSING[i]).
_IMPUTED_LABELS = pa.array(
    [
        ",".join(name for bit, name in enumerate(MAY_BE_MISSING) if code >> bit & 1)
        for code in range(1 << len(MAY_BE_MISSING))
    ],
    pa.string(),
)


class BatchError(DataError):
    """The input file (not one row of it) cannot be scored; the message names the problem."""


# --------------------------------------------------------------------------------------------
# The model a worker needs: small and picklable, loaded once per process


@dataclass(frozen=True)
class ScoringModel:
    onnx: bytes = field(repr=False)
    sha256: str
    threshold: float
    version: str  # written into every output row, e.g. heart_disease_logistic_regression/3

    def load(self) -> OnnxModel:
        with _MODELS_LOCK:
            model = _MODELS.get(self.sha256)
            if model is None:
                model = _MODELS[self.sha256] = OnnxModel.from_bytes(self.onnx)
            return model


_MODELS: dict[str, OnnxModel] = {}
_MODELS_LOCK = threading.Lock()


def load_package(directory: Path) -> tuple[ScoringModel, dict[str, Any]]:
    """A package's ONNX model, after every file matched its sha256 (PackagingError otherwise)."""
    from heartml.packaging import ONNX_FILE, PackagingError, verify_checksums

    if not directory.is_dir():
        raise PackagingError(f"{directory}: not a package folder")
    manifest = verify_checksums(directory)
    serving_file = str(manifest.get("serving_file", ONNX_FILE))
    onnx = (directory / serving_file).read_bytes()
    digest = hashlib.sha256(onnx).hexdigest()
    if digest != manifest["files"].get(serving_file, {}).get("sha256"):
        # Read once more after verification: a file swapped in between is refused too.
        raise PackagingError(f"{serving_file}: changed while it was being loaded")
    model = ScoringModel(
        onnx=onnx,
        sha256=digest,
        threshold=float(manifest.get("threshold", 0.5)),
        version=f"{manifest.get('model_name', directory.name)}/{manifest.get('version', '?')}",
    )
    model.load()  # fail here, not on the first chunk, if onnxruntime refuses it
    return model, manifest


# --------------------------------------------------------------------------------------------
# Validation: the API's rules, one numpy mask per column


def _parse_text(value: Any) -> float:
    """One field that pandas could not read as a number: a number, NaN if missing, else None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    text = str(value).strip()
    if text in ("", *MISSING_TEXT):
        return math.nan
    if "_" in text:  # float() accepts "1_000"; a data file should not
        raise ValueError(text)
    return float(text)


Chunk: TypeAlias = pd.DataFrame | pa.Table | pa.RecordBatch  # CSV: pandas; parquet: Arrow
Column: TypeAlias = pd.Series | pa.Array | pa.ChunkedArray


def _names(chunk: Chunk) -> list[str]:
    return list(chunk.columns) if isinstance(chunk, pd.DataFrame) else list(chunk.schema.names)


def _column(chunk: Chunk, name: str) -> Column:
    return chunk[name] if isinstance(chunk, pd.DataFrame) else chunk.column(name)


def _objects(values: Column) -> np.ndarray:
    """The fields as Python objects (str, numbers; None or NaN where empty)."""
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype=object, na_value=np.nan)
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)


def _to_arrow(values: Column) -> pa.Array | pa.ChunkedArray:
    array = pa.array(values, from_pandas=True) if isinstance(values, pd.Series) else values
    if pa.types.is_large_string(array.type):  # readers disagree on the width; keep one
        array = array.cast(pa.string())
    return array


def _numeric(values: Column) -> tuple[np.ndarray, np.ndarray]:
    """A column -> (float64 values, mask of fields that are text but not a number)."""
    if isinstance(values, pd.Series):
        if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
            floats = values.to_numpy(dtype=np.float64, na_value=np.nan)
            return floats, np.zeros(len(values), bool)
    elif any(
        check(values.type)
        for check in (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean)
    ) or pa.types.is_decimal(values.type):
        floats = values.cast(pa.float64()).to_numpy(zero_copy_only=False)
        return np.asarray(floats, dtype=np.float64), np.zeros(len(values), bool)
    raw = _objects(values)
    parsed = np.empty(len(raw), dtype=np.float64)
    bad = np.zeros(len(raw), dtype=bool)
    for i, value in enumerate(raw):
        try:
            parsed[i] = _parse_text(value)
        except (TypeError, ValueError):
            parsed[i], bad[i] = math.nan, True
    return parsed, bad


def _number_text(value: float) -> str:
    if math.isnan(value):
        return ""
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(float(value))


@dataclass
class ChunkValidation:
    given: list[np.ndarray]  # per feature, float64 as written (0 chol stays 0; missing = NaN)
    matrix: np.ndarray  # [n, 13] C-ordered, what the model sees: 0 chol/trestbps -> NaN
    valid: np.ndarray  # [n] bool
    reasons: np.ndarray  # [n_invalid] str, aligned with np.flatnonzero(~valid)
    missing_code: np.ndarray  # [n] uint8 bit mask over MAY_BE_MISSING
    text: dict[str, np.ndarray]  # column -> raw fields of the invalid rows (where not numbers)


def validate_frame(frame: Chunk) -> ChunkValidation:
    """Check every feature of every row; the frame must hold the 13 RAW_FEATURES columns."""
    n = len(frame)
    given: list[np.ndarray] = []
    matrix = np.empty((n, len(RAW_COLUMNS)), dtype=np.float64)
    invalid = np.zeros(n, dtype=bool)
    missing_code = np.zeros(n, dtype=np.uint8)
    problems: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
    raw_text: dict[str, np.ndarray] = {}
    for j, column in enumerate(RAW_COLUMNS):
        parsed, not_number = _numeric(_column(frame, column.name))
        given.append(parsed)
        if column.missing_zero:
            parsed = np.where(parsed == 0, np.nan, parsed)
        matrix[:, j] = parsed
        missing = np.isnan(parsed)
        if column.codes:
            allowed = np.isin(parsed, np.fromiter(column.codes, dtype=np.float64))
        else:
            allowed = (parsed >= column.minimum) & (parsed <= column.maximum)
        # NaN is neither allowed nor out of rule: it is missing (or text, flagged on its own).
        out_of_rule = ~allowed & ~missing
        required = missing & ~not_number if column.name not in MAY_BE_MISSING else None
        bad = out_of_rule | not_number
        if required is not None:
            bad |= required
        if bad.any():
            invalid |= bad
            problems.append(
                (j, not_number, required if required is not None else _NONE, out_of_rule)
            )
            if not_number.any():
                raw_text[column.name] = _objects(_column(frame, column.name))
        if column.name in MAY_BE_MISSING:
            bit = MAY_BE_MISSING.index(column.name)
            missing_code |= (missing & ~not_number).view(np.uint8) << bit

    rows = np.flatnonzero(invalid)
    reasons = np.full(len(rows), "", dtype=object)
    for j, not_number, absent, out_of_rule in problems:
        spec = RAW_COLUMNS[j]
        name = spec.name
        # Only the rows this column broke: few, or (a broken file) as many as it has.
        for position in np.flatnonzero(not_number[rows]):
            written = str(raw_text[name][rows[position]]).strip()
            _add(reasons, position, f"{name}={written!r}: not a number, expected {spec.allowed}")
        if len(absent):
            for position in np.flatnonzero(absent[rows]):
                _add(reasons, position, f"{name}: missing, required: {spec.allowed}")
        for position in np.flatnonzero(out_of_rule[rows]):
            value = _number_text(given[j][rows[position]])
            _add(reasons, position, f"{name}={value}: not allowed, expected {spec.allowed}")
    text = {name: column[rows] for name, column in raw_text.items()}
    return ChunkValidation(given, matrix, ~invalid, reasons, missing_code, text)


_NONE = np.zeros(0, dtype=bool)


def _add(reasons: np.ndarray, position: Any, reason: str) -> None:
    reasons[position] = f"{reasons[position]}; {reason}" if reasons[position] else reason


def _labels(codes: np.ndarray, dictionary: pa.Array) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int8, copy=False)), dictionary)


def risk_levels(probability: np.ndarray) -> pa.DictionaryArray:
    return _labels(np.searchsorted(_RISK_EDGES, probability, side="right"), _RISK_LABELS)


# --------------------------------------------------------------------------------------------
# One chunk (or Dask partition): validate, score, build the output and the rejects


@dataclass
class ScoredChunk:
    rows: int  # rows read
    scored: pa.Table  # valid rows, without the `row` column (added when the offset is known)
    positions: np.ndarray  # 0-based position in the chunk of every scored row
    rejects: pa.Table  # reasons and the input fields as text, without the `row` column
    reject_positions: np.ndarray  # 0-based position in the chunk of every rejected row
    imputed: int  # scored rows that had a missing value


def score_frame(frame: Chunk, model: ScoringModel) -> ScoredChunk:
    """The chunk function shared by both engines: a pure function of the frame and the model."""
    check = validate_frame(frame)
    valid = check.valid
    bad = np.flatnonzero(~valid)
    n = len(frame)
    # Every row goes through the model (each row is scored on its own, and a NaN or an odd value
    # cannot fail the graph); dropping the few invalid rows from the finished table is cheaper
    # than gathering the valid ones out of every input array.
    probability = model.load().predict_proba(check.matrix) if n else np.empty(0)
    arrays: list[pa.Array | pa.ChunkedArray] = []
    fields: list[pa.Field] = []
    for name in _names(frame):
        if name in RAW_FEATURES:
            values = check.given[RAW_FEATURES.index(name)]
            # A valid row has every required feature, so only these four columns can be null;
            # declaring the others required saves the encoder their null bookkeeping.
            nullable = name in MAY_BE_MISSING
            array = pa.array(values, mask=np.isnan(values)) if nullable else pa.array(values)
            fields.append(pa.field(name, pa.float64(), nullable=nullable))
        else:
            array = _to_arrow(_column(frame, name))
            fields.append(pa.field(name, array.type))
        arrays.append(array)
    arrays += [
        _labels(check.missing_code, _IMPUTED_LABELS),
        pa.array(probability),
        pa.array((probability >= model.threshold).astype(np.int8)),
        risk_levels(probability),
        _labels(np.zeros(n, dtype=np.int8), pa.array([model.version])),
    ]
    fields += [
        pa.field(name, array.type, nullable=False)
        for name, array in zip(SCORE_COLUMNS, arrays[-5:], strict=True)
    ]
    scored = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    if len(bad):
        scored = scored.filter(pa.array(valid))
        positions = np.flatnonzero(valid)
    else:
        positions = np.arange(n)
    imputed = int(np.count_nonzero(check.missing_code[valid]))
    return ScoredChunk(n, scored, positions, _rejects(frame, check, bad), bad, imputed)


def _rejects(frame: Chunk, check: ChunkValidation, bad: np.ndarray) -> pa.Table:
    """The invalid rows: reasons, then every input field as text. Numbers are written from
    their parsed value, so both engines write the same file whatever types their readers chose."""
    columns: dict[str, pa.Array] = {REASONS_COLUMN: pa.array(check.reasons, pa.string())}
    for name in _names(frame):
        if name in RAW_FEATURES:
            text = _numbers_text(check.given[RAW_FEATURES.index(name)][bad])
            if name in check.text:  # show what was written where it was not a number
                raw = check.text[name]
                is_text = np.array([_is_text(v) for v in raw], dtype=bool)
                text[is_text] = [str(v).strip() for v in raw[is_text]]
            columns[name] = pa.array(text, pa.string(), from_pandas=True)
        else:
            passthrough = _to_arrow(_column(frame, name)).take(pa.array(bad))
            try:
                columns[name] = passthrough.cast(pa.string())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                columns[name] = pa.array(
                    [None if v is None else str(v) for v in passthrough.to_pylist()], pa.string()
                )
    return pa.table(columns)


def _numbers_text(values: np.ndarray) -> np.ndarray:
    """63.0 -> "63", 2.3 -> "2.3", NaN -> None (an empty field)."""
    text = values.astype(str).astype(object)
    whole = np.isfinite(values) & (np.abs(values) < 1e15)
    whole[whole] = values[whole] == np.round(values[whole])
    text[whole] = values[whole].astype(np.int64).astype(str)
    text[np.isnan(values)] = None
    return text


def _absent(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _is_text(value: Any) -> bool:
    if _absent(value) or not isinstance(value, str):
        return False
    try:
        _parse_text(value)
    except ValueError:
        return True
    return False


# --------------------------------------------------------------------------------------------
# Reading: format detection and chunked readers


@dataclass(frozen=True)
class InputFormat:
    kind: Literal["csv", "parquet"]
    header: bool
    names: tuple[str, ...] | None  # for headerless files
    columns: tuple[str, ...]  # every input column, in order


def _first_line(path: Path) -> str:
    with path.open("r", encoding="utf-8-sig", errors="replace") as handle:
        for line in handle:
            if line.strip():
                return line.rstrip("\r\n")
    raise BatchError(f"{path}: no data rows")


def _looks_numeric(field_text: str) -> bool:
    try:
        _parse_text(field_text)
    except ValueError:
        return False
    return True


def detect_format(path: Path) -> InputFormat:
    suffix = path.suffix.lower()
    if suffix not in INPUT_SUFFIXES:
        raise BatchError(
            f"{path}: unsupported input type {suffix or '(none)'}; use {', '.join(INPUT_SUFFIXES)}"
        )
    if not path.is_file():
        raise BatchError(f"{path}: no such file")
    if suffix == ".parquet":
        try:
            schema = pq.read_schema(path)
        except (OSError, pa.ArrowException) as exc:
            raise BatchError(f"{path}: not a readable parquet file ({exc})") from None
        columns = tuple(schema.names)
        _require_features(path, columns)
        return InputFormat("parquet", True, None, columns)
    fields = [f.strip() for f in next(csv.reader([_first_line(path)]))]
    if suffix == ".data" or all(_looks_numeric(f) for f in fields):
        # The raw UCI format: no header; 13 features, or 14 with the diagnosis `num` (kept as is).
        if len(fields) == len(RAW_FEATURES):
            names: tuple[str, ...] = RAW_FEATURES
        elif len(fields) == len(FILE_COLUMNS):
            names = FILE_COLUMNS
        else:
            raise BatchError(
                f"{path}: line 1 has {len(fields)} fields; a file without a header must have "
                f"{len(RAW_FEATURES)} ({', '.join(RAW_FEATURES)}) or {len(FILE_COLUMNS)} (+ num)"
            )
        return InputFormat("csv", False, names, names)
    if len(set(fields)) != len(fields):
        duplicated = sorted({f for f in fields if fields.count(f) > 1})
        raise BatchError(f"{path}: column {duplicated[0]!r} appears more than once in the header")
    _require_features(path, tuple(fields))
    return InputFormat("csv", True, None, tuple(fields))


def _require_features(path: Path, columns: tuple[str, ...]) -> None:
    taken = sorted(set(columns) & {ROW_COLUMN, *SCORE_COLUMNS})
    if taken:
        raise BatchError(
            f"{path}: column {taken[0]!r} would collide with an output column of that name "
            "(a file scored before?); rename or drop it"
        )
    absent = [name for name in RAW_FEATURES if name not in columns]
    if absent:
        raise BatchError(
            f"{path}: no column {', '.join(repr(a) for a in absent)}; the input needs the "
            f"{len(RAW_FEATURES)} UCI columns ({', '.join(RAW_FEATURES)})"
        )


def _csv_options(fmt: InputFormat) -> dict[str, Any]:
    extras = [name for name in fmt.columns if name not in RAW_FEATURES]
    return {
        "header": 0 if fmt.header else None,
        "names": list(fmt.names) if fmt.names else None,
        "na_values": list(MISSING_TEXT),
        "encoding": "utf-8-sig",  # a spreadsheet's byte-order mark is not part of the header
        "skipinitialspace": True,
        "dtype": dict.fromkeys(extras, object),  # pass other columns through as text
    }


def _read_error(path: Path, exc: Exception) -> BatchError:
    text = " ".join(str(exc).split())
    return BatchError(f"{path}: cannot be read as {path.suffix.lstrip('.')} ({text})")


def iter_chunks(path: Path, fmt: InputFormat, chunk_size: int) -> Iterator[Chunk]:
    if fmt.kind == "parquet":
        # Arrow record batches as they come: no pandas conversion, and pass-through columns
        # reach the output untouched.
        yield from pq.ParquetFile(path).iter_batches(batch_size=chunk_size)
        return
    try:
        reader = pd.read_csv(path, chunksize=chunk_size, **_csv_options(fmt))
        with reader:
            yield from reader
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise _read_error(path, exc) from None


def count_rows(path: Path, fmt: InputFormat) -> int:
    """Rows in the input, for the progress bar (CSV: lines, without the header)."""
    if fmt.kind == "parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    lines += last != b"\n"
    return max(lines - int(fmt.header), 0)


# --------------------------------------------------------------------------------------------
# Writing: output (parquet or CSV) and rejects (CSV), atomically


class _OutputWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.kind = path.suffix.lower().lstrip(".")
        self.tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
        self.writer: Any = None
        self.schema: pa.Schema | None = None

    def write(self, table: pa.Table) -> None:
        if self.writer is None:
            self.schema = table.schema
            if self.kind == "parquet":
                # Measured on 1M rows: dictionary encoding only for the labels (elsewhere it
                # costs more time than it saves space), byte-stream-split floats (snappy then
                # compresses them well, and faster), statistics only where a reader would
                # filter: about half the encoding time of the defaults, at a similar size.
                labels = [f.name for f in self.schema if pa.types.is_dictionary(f.type)]
                floats = [f.name for f in self.schema if pa.types.is_floating(f.type)]
                self.writer = pq.ParquetWriter(
                    self.tmp,
                    self.schema,
                    compression="snappy",
                    use_dictionary=labels,
                    use_byte_stream_split=floats,
                    write_statistics=[ROW_COLUMN, "probability"],
                )
            else:
                self.writer = pa_csv.CSVWriter(self.tmp, self.schema)
        elif table.schema != self.schema:
            assert self.schema is not None
            table = _conform(table, self.schema)
        if table.num_rows:
            self.writer.write_table(table)

    def commit(self) -> None:
        assert self.writer is not None, "commit after at least one chunk"
        self.writer.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self.writer is not None:
            with contextlib.suppress(Exception):  # the partial file is removed anyway
                self.writer.close()
        self.tmp.unlink(missing_ok=True)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A later chunk may type a pass-through column differently (all-null, int vs float)."""
    columns = []
    for target in schema:
        column = table.column(target.name)
        if column.type != target.type:
            try:
                column = column.cast(target.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise BatchError(
                    f"column {target.name!r} changes type within the file ({target.type} then "
                    f"{column.type}); write it with one type"
                ) from None
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


class _RejectsWriter:
    def __init__(self, path: Path, columns: tuple[str, ...]) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
        self.schema = pa.schema(
            [
                pa.field(ROW_COLUMN, pa.int64()),
                pa.field(REASONS_COLUMN, pa.string()),
                *(pa.field(name, pa.string()) for name in columns),
            ]
        )
        # Written even when nothing is rejected: an empty file says so, a missing one does not.
        self.writer = pa_csv.CSVWriter(self.tmp, self.schema)

    def write(self, rejects: pa.Table) -> None:
        if rejects.num_rows:
            self.writer.write_table(rejects.select(self.schema.names).cast(self.schema))

    def commit(self) -> None:
        self.writer.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self.writer.close()
        finally:
            self.tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# The driver: both engines, file to file


@dataclass
class ScoreSummary:
    input: Path
    output: Path
    rejects: Path
    engine: str
    rows: int = 0
    scored: int = 0
    rejected: int = 0
    imputed: int = 0
    seconds: float = 0.0
    partitions: int = 0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else math.nan


def default_rejects_path(output: Path) -> Path:
    return output.with_name(output.name + ".rejects.csv")


def score_file(
    input_path: Path,
    output_path: Path,
    model: ScoringModel,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    rejects_path: Path | None = None,
    engine: Engine = "local",
    scheduler: str | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> ScoreSummary:
    """Score a CSV, parquet or raw UCI file into `output_path` (.csv or .parquet).

    engine="dask": partitions are scored on the cluster at `scheduler` (a LocalCluster with
    `workers` processes when None); the input path must be readable by the workers.
    """
    if chunk_size < 1:
        raise BatchError(f"chunk size must be at least 1, got {chunk_size}")
    if output_path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise BatchError(f"{output_path}: output must end in {' or '.join(OUTPUT_SUFFIXES)}")
    if output_path.resolve() == input_path.resolve():
        raise BatchError(f"{output_path}: the output would overwrite the input")
    rejects_path = rejects_path or default_rejects_path(output_path)
    fmt = detect_format(input_path)
    report = progress or (lambda _done, _total: None)
    total = count_rows(input_path, fmt)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    rejects_path.parent.mkdir(parents=True, exist_ok=True)
    summary = ScoreSummary(input_path, output_path, rejects_path, engine)
    writer = _OutputWriter(output_path)
    rejects = _RejectsWriter(rejects_path, fmt.columns)
    started = time.perf_counter()
    try:
        if engine == "local":
            # Three stages in three threads: reading, scoring and writing overlap, since parquet
            # and CSV decoding, onnxruntime and the parquet encoder all release the GIL.
            frames = _prefetched(iter_chunks(input_path, fmt, chunk_size))
            chunks: Iterator[ScoredChunk] = _prefetched(
                score_frame(frame, model) for frame in frames
            )
        elif engine == "dask":
            chunks = _dask_chunks(input_path, fmt, chunk_size, model, scheduler, workers)
        else:
            raise BatchError(f"engine {engine!r}: allowed: local, dask")
        for chunk in chunks:
            _emit(chunk, summary, writer, rejects)
            report(chunk.rows, total)
        if summary.rows == 0:
            raise BatchError(f"{input_path}: no data rows")
        writer.commit()
        rejects.commit()
    except BaseException:
        writer.abort()
        rejects.abort()
        raise
    summary.seconds = time.perf_counter() - started
    return summary


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_DONE = object()


def _prefetched(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Run an iterator in a background thread, up to `depth` items ahead of its consumer."""
    queue: Queue[Any] = Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(_Failure(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="heartml-batch-stage", daemon=True)
    thread.start()
    try:
        while True:
            item = queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join()


def _emit(
    chunk: ScoredChunk, summary: ScoreSummary, writer: _OutputWriter, rejects: _RejectsWriter
) -> None:
    offset = summary.rows + 1  # rows are numbered from 1
    table = chunk.scored.add_column(
        0, pa.field(ROW_COLUMN, pa.int64(), nullable=False), pa.array(chunk.positions + offset)
    )
    writer.write(table)
    if chunk.rejects.num_rows:
        rejects.write(
            chunk.rejects.add_column(0, ROW_COLUMN, pa.array(chunk.reject_positions + offset))
        )
    summary.rows += chunk.rows
    summary.scored += table.num_rows
    summary.rejected += chunk.rejects.num_rows
    summary.imputed += chunk.imputed
    summary.partitions += 1


def _dask_chunks(
    path: Path,
    fmt: InputFormat,
    chunk_size: int,
    model: ScoringModel,
    scheduler: str | None,
    workers: int | None,
) -> Iterator[ScoredChunk]:
    """Partitions scored on the workers, yielded in input order (a bounded window in flight)."""
    import dask
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    with dask.config.set({"dataframe.convert-string": False}):
        if fmt.kind == "parquet":
            frame = dd.read_parquet(str(path), split_row_groups=True, dtype_backend="pyarrow")
        else:
            options = _csv_options(fmt)
            # Every field as text: a partition cannot then disagree with dask's inferred types,
            # and _numeric parses the text exactly as the local engine does.
            options["dtype"] = object
            frame = dd.read_csv(str(path), blocksize=_csv_blocksize(path, chunk_size), **options)
        parts = frame.to_delayed()
    score = dask.delayed(score_partition, pure=True)
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=workers or min(4, os.cpu_count() or 1),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        )
    try:
        with Client(cluster if cluster is not None else scheduler) as client:
            window = 2 * max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
            pending: deque[Any] = deque()
            for part in parts:
                pending.append(client.compute(score(part, model, fmt.kind == "parquet")))
                if len(pending) >= window:
                    yield _result(pending.popleft(), path)
            while pending:
                yield _result(pending.popleft(), path)
    finally:
        if cluster is not None:
            cluster.close()


def score_partition(frame: pd.DataFrame, model: ScoringModel, parquet: bool) -> ScoredChunk:
    """A Dask partition. Parquet partitions go back to Arrow, as the local engine reads them, so
    that both engines run the same code on the same values."""
    if parquet:
        return score_frame(pa.Table.from_pandas(frame, preserve_index=False), model)
    return score_frame(frame, model)


def _result(future: Any, path: Path) -> ScoredChunk:
    try:
        chunk: ScoredChunk = future.result()
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise _read_error(path, exc) from None
    return chunk


def _csv_blocksize(path: Path, chunk_size: int) -> int:
    """Bytes per partition so that a partition holds about `chunk_size` rows."""
    with path.open("rb") as handle:
        sample = handle.read(1 << 16)
    lines = max(sample.count(b"\n"), 1)
    per_row = max(len(sample) / lines, 1.0)
    return max(int(per_row * chunk_size), 1 << 12)


def newest_package_or_fail(packages_dir: Path) -> Path:
    from heartml.packaging import PackagingError, newest_package

    found = newest_package(packages_dir)
    if found is None:
        raise PackagingError(
            f"no package under {packages_dir}: run `heartml package` first or pass --package"
        )
    return found
