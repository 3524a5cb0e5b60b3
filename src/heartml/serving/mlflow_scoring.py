"""MLflow's scoring protocol (`mlflow models serve`'s POST /invocations): its payloads -> records.

MLflow documents four JSON inputs and CSV; each becomes the served contract's records here
(heartml.serving.rows checks and scores them):

- `{"dataframe_split": {"columns": [...], "data": [[...], ...]}}` (pandas' split orient; an
  `index` is allowed and ignored; the columns in any order),
- `{"dataframe_records": [{...}, ...]}`,
- `{"instances": ...}` or `{"inputs": ...}`: a list of records, one record (an object of single
  values) or columns (an object of equal-length lists),
- `text/csv`: a header line with the column names, then one line per record (what
  `DataFrame.to_csv(index=False)` writes; an empty field or a spec marker such as `?` is
  unknown),

plus an optional `params` object, which this model has no use for (MLflow ignores it too).

Answers match `mlflow models serve` of the same registered version, which is logged with
`predict_proba`: `{"predictions": [[P(0), P(1)], ...]}`. Deliberate differences: values are
judged by the dataset spec (heartml.spec.rules), so a string, a boolean, a value outside the
spec's range or codes, an extra column or an unknown top-level key is a 400 with this project's
words where MLflow would coerce, extrapolate or ignore it; parquet is not read (no pyarrow in the
serving image).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from heartml.serving.contract import Contract
from heartml.serving.rows import InputError, Records, kind_of, parse_json
from heartml.spec import rules

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
PARAMS = "params"
JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"
SUPPORTED_TYPES = (JSON_TYPE, CSV_TYPE)
REQUIRED = (
    "send a JSON object with exactly one of the input fields dataframe_split, dataframe_records, "
    "instances, inputs (and optionally params), or CSV with Content-Type: text/csv"
)


class UnsupportedMediaType(InputError):
    """A Content-Type this door does not read (415)."""


def media_type(content_type: str) -> str:
    """JSON_TYPE or CSV_TYPE for a request's Content-Type, else UnsupportedMediaType. As MLflow:
    `charset` must be utf-8 and no other parameter is allowed."""
    if content_type == JSON_TYPE:  # what nearly every client sends
        return JSON_TYPE
    kind, *parameters = (part.strip() for part in content_type.split(";"))
    kind = kind.lower()
    if kind not in SUPPORTED_TYPES:
        got = f"Content-Type: {content_type}" if content_type else "no Content-Type"
        raise UnsupportedMediaType(
            f"send the body as {JSON_TYPE} or {CSV_TYPE} (got {got}); "
            "application/vnd.apache.parquet is not read by this server"
        )
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() != "charset":
            raise UnsupportedMediaType(
                f"unrecognized Content-Type parameter {name.strip()!r}: only charset=utf-8"
            )
        if value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(f"the body must be UTF-8 (got charset={value.strip()})")
    return kind


def json_records(body: bytes, contract: Contract) -> Records:
    """The records of a JSON payload, or InputError saying what is wrong with its shape."""
    if not body or body.isspace():
        raise InputError(f"the request body is empty: {REQUIRED}")
    data = parse_json(body)
    if type(data) is not dict:
        raise InputError(f"{REQUIRED}; got {kind_of(data)}")
    if len(data) == 1 and "dataframe_split" in data:  # the common case, first
        return split_records(data["dataframe_split"], contract)
    unknown = [key for key in data if key not in FORMATS and key != PARAMS]
    if unknown:
        raise InputError(
            f"{', '.join(repr(key) for key in unknown)} is not an input field of MLflow's "
            f"scoring protocol: {REQUIRED}"
        )
    present = [key for key in FORMATS if key in data]
    if len(present) != 1:
        got = ", ".join(present) if present else "none"
        raise InputError(f"{REQUIRED}; got {got}")
    if PARAMS in data and type(data[PARAMS]) is not dict:
        raise InputError(f"params must be a JSON object; got {kind_of(data[PARAMS])}")
    (key,) = present
    value = data[key]
    if key == "dataframe_split":
        return split_records(value, contract)
    if key == "dataframe_records":
        return Records(_record_list(key, value), lambda i: f"{key}[{i}].")
    return tensor_records(key, value)


def _record_list(key: str, value: Any) -> list[Any]:
    if type(value) is not list or not value:
        got = "an empty array" if value == [] else kind_of(value)
        raise InputError(f"{key} must be a non-empty JSON array of records (objects); got {got}")
    return value


def check_columns(columns: list[str], contract: Contract, where: str) -> None:
    """Every column of the model, each once, and no other; InputError naming the problem."""
    names = contract.names
    if len(columns) == len(names) and columns == list(names):
        return
    seen: set[str] = set()
    for column in columns:
        if column == "":
            raise InputError(
                f"{where} has a column without a name (a pandas index? write the frame with "
                "index=False)",
                value_problem=True,
            )
        if column in seen:
            raise InputError(f"{where}: {column!r} appears twice", value_problem=True)
        seen.add(column)
        if column not in contract.columns:
            raise InputError(
                f"{where}: {column!r} is not an accepted column; the accepted columns are: "
                f"{contract.fields_text}",
                value_problem=True,
            )
    missing = [name for name in names if name not in seen]
    if missing:
        raise InputError(
            f"{where} lacks {', '.join(missing)}: every input field is needed "
            f"({contract.fields_text}; null where unknown and allowed)",
            value_problem=True,
        )


def _split_where(index: int) -> str:
    return f"dataframe_split.data[{index}]."


def split_records(value: Any, contract: Contract) -> Records:
    """`dataframe_split` (pandas' split orient) -> records keyed by column name."""
    names = contract.names
    if type(value) is dict and len(value) == 2:  # what MLflow's client sends, checked first
        columns, data = value.get("columns"), value.get("data")
        if (
            type(columns) is list
            and len(columns) == len(names)
            and tuple(columns) == names
            and type(data) is list
            and data
            and all(type(row) is list and len(row) == len(names) for row in data)
        ):
            return Records([dict(zip(names, row, strict=True)) for row in data], _split_where)
    key = "dataframe_split"
    if type(value) is not dict:
        raise InputError(f"{key} must be a JSON object with columns and data; got {kind_of(value)}")
    extra = [name for name in value if name not in ("columns", "data", "index")]
    if extra:
        raise InputError(f"{key} takes columns, data and index; {extra[0]!r} is not one of them")
    columns, data = value.get("columns"), value.get("data")
    if type(columns) is not list or not all(type(name) is str for name in columns):
        raise InputError(
            f"{key}.columns must be the list of column names ({contract.fields_text}); "
            f"got {kind_of(columns)}"
        )
    if "index" in value and type(value["index"]) is not list:
        raise InputError(f"{key}.index must be a JSON array; got {kind_of(value['index'])}")
    check_columns(columns, contract, f"{key}.columns")
    rows = _record_list(f"{key}.data", data)
    width = len(columns)
    for index, row in enumerate(rows):
        if type(row) is not list or len(row) != width:
            got = f"{len(row)} values" if type(row) is list else kind_of(row)
            raise InputError(
                f"{key}.data[{index}] must be an array of {width} values, one per column; got {got}"
            )
    records = [dict(zip(columns, row, strict=True)) for row in rows]
    return Records(records, _split_where)


def tensor_records(key: str, value: Any) -> Records:
    """`instances` / `inputs`: a list of records, one record, or columns of equal length."""
    if type(value) is list:
        records = _record_list(key, value)
        return Records(records, lambda i: f"{key}[{i}].")
    if type(value) is not dict or not value:
        raise InputError(
            f"{key} must be a JSON array of records, one record (an object of values) or "
            f"columns (an object of equal-length arrays); got {kind_of(value)}"
        )
    lists = [name for name, column in value.items() if type(column) is list]
    if not lists:
        return Records([value], lambda _i: f"{key}.")
    if len(lists) != len(value):
        scalar = next(name for name in value if name not in lists)
        raise InputError(
            f"{key} mixes arrays ({lists[0]!r}) and single values ({scalar!r}): send one value "
            "per field (one record) or one array per field (columns)"
        )
    lengths = {name: len(value[name]) for name in lists}
    if len(set(lengths.values())) != 1:
        shown = ", ".join(f"{name}: {length}" for name, length in lengths.items())
        raise InputError(f"{key}: every column needs the same number of values (got {shown})")
    count = next(iter(lengths.values()))
    if count == 0:
        raise InputError(f"{key}: the columns are empty; send at least one value each")
    records = [{name: value[name][i] for name in lists} for i in range(count)]
    return Records(records, lambda i: f"row {i} of {key}, ")


def csv_records(body: bytes, contract: Contract) -> Records:
    """A CSV body: a header line naming the columns, then one line per record. A field that is
    one of the spec's missing markers (empty, `?`, `NaN`, ...) is unknown; any other text is
    read as rules.parse_text reads a data file's field, or refused as not a number."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"the CSV body is not UTF-8: {exc}") from None
    lines = csv.reader(io.StringIO(text))
    try:
        header = next(lines, None)
        if not header or not "".join(header).strip():
            raise InputError(
                "the CSV body is empty: send a header line with the column names "
                f"({contract.fields_text}) and one line per record"
            )
        columns = [name.strip() for name in header]
        check_columns(columns, contract, "the CSV header")
        markers = frozenset(contract.spec.missing_markers)
        records = []
        line_numbers = []
        for fields in lines:
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # a blank line
            if len(fields) != len(columns):
                raise InputError(
                    f"CSV line {lines.line_num} has {len(fields)} fields for {len(columns)} columns"
                )
            records.append(
                {
                    name: _csv_value(field, markers)
                    for name, field in zip(columns, fields, strict=True)
                }
            )
            line_numbers.append(lines.line_num)
    except csv.Error as exc:
        raise InputError(f"the CSV body cannot be read: {exc}") from None
    if not records:
        raise InputError("the CSV body has a header but no records")
    return Records(records, lambda i: f"CSV line {line_numbers[i]}, ")


def _csv_value(field: str, markers: frozenset[str]) -> Any:
    try:
        value = rules.parse_text(field, markers)  # NaN for a marker
    except rules.NotANumber:
        return field.strip()  # the contract refuses it in its own words ("... is not a number")
    return None if value != value else value
