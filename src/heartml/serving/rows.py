"""Records from the other protocols' payloads (MLflow's scoring protocol, the Open Inference
Protocol) checked by the served contract, and scored the way /predict and /predict/batch score.

A record is a dict of field name -> JSON value. It takes /predict's fast check
(heartml.serving.fast_check.checked_row); one it refuses goes through the contract's pydantic
model, whose errors are worded by heartml.serving.errors.describe_error: a value gets the same
verdict and the same words through every door. Here a NaN means unknown, like null: MLflow's
client and Triton's write a missing value as NaN (Python's json.dumps), and a binary tensor has
no null.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from heartml.errors import FieldProblem, HeartmlError
from heartml.serving.contract import Contract
from heartml.serving.errors import describe_error
from heartml.serving.fast_check import checked_row
from heartml.serving.loaded_model import LoadedModel
from heartml.serving.routes.bodies import THREADPOOL_ROWS
from heartml.serving.service import Service

MAX_LISTED = 10  # problems spelled out in one answer; the rest are counted


class InputError(HeartmlError):
    """A payload the served model cannot take; the message says where, what and what is allowed.

    `value_problem`: the payload has the right shape but a value or a column is refused (MLflow
    answers those with INVALID_PARAMETER_VALUE, the payload's shape with BAD_REQUEST)."""

    def __init__(self, message: str, *, value_problem: bool = False) -> None:
        super().__init__(message)
        self.value_problem = value_problem


def parse_json(body: bytes) -> Any:
    """The JSON document in `body`: orjson, else the standard library, which also reads the
    NaN that MLflow's and Triton's clients write for a missing value (and Infinity, which the
    contract then refuses as not a number)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        reason = str(exc)
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError
        raise InputError(f"the request body is not valid JSON: {reason}") from None


def unknown_nan(value: Any) -> Any:
    """NaN -> None (unknown); anything else as it is."""
    return None if type(value) is float and value != value else value


def kind_of(value: Any) -> str:
    """A JSON value's kind, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return f"an array of {len(value)} items"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _worded(prefix: str, item: FieldProblem) -> str:
    field, message = item["field"], item["message"]
    if message.startswith(field + " "):  # "ca is missing: send ..."
        return prefix + message
    return f"{prefix}{field}: {message}"


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs ~1 µs more
class Records:
    """A payload's records, in order, and where each one is: `where(i)` is the prefix that
    places record i in the payload for a message (`dataframe_records[3].`, `CSV line 5, `)."""

    items: list[Any]
    where: Callable[[int], str]


def record_rows(records: Records, contract: Contract) -> list[list[float]]:
    """The model rows of `records` (NaN = unknown), or InputError naming every problem (up to
    MAX_LISTED of them)."""
    rows: list[list[float]] = []
    problems: list[str] = []
    count = 0
    where = records.where
    for index, record in enumerate(records.items):
        row = checked_row(record, contract)
        if row is not None:
            rows.append(row)
            continue
        if not isinstance(record, dict):
            count += 1
            if len(problems) < MAX_LISTED:
                place = where(index)
                place = place[:-1] if place.endswith(".") else place.rstrip(", ")
                problems.append(
                    f"{place}: must be a JSON object with the fields {contract.fields_text}; "
                    f"got {kind_of(record)}"
                )
            continue
        cleaned = {name: unknown_nan(value) for name, value in record.items()}
        row = checked_row(cleaned, contract)
        if row is not None:
            rows.append(row)
            continue
        try:
            rows.append(contract.record_row(contract.record.model_validate(cleaned)))
        except ValidationError as exc:
            for error in exc.errors():
                count += 1
                if len(problems) < MAX_LISTED:
                    problems.append(_worded(where(index), describe_error(error, False, contract)))
    if problems:
        more = f" (and {count - len(problems)} more)" if count > len(problems) else ""
        raise InputError("; ".join(problems) + more, value_problem=True)
    return rows


async def score_rows(
    service: Service, model: LoadedModel, rows: list[list[float]], request_id: str
) -> tuple[list[float], list[int]]:
    """P(positive) and the 0/1 decision at the package threshold for each row, recorded in the
    metrics, the drift window and the prediction log: one row is micro-batched with /predict's
    (Service.predict_one), many are one ONNX call (in the thread pool above THREADPOOL_ROWS)."""
    if len(rows) == 1:
        probability, prediction = await service.predict_one(model, rows[0], request_id)
        return [probability], [prediction]
    matrix = np.array(rows, dtype=np.float64)
    if len(rows) > THREADPOOL_ROWS:
        scored = await run_in_threadpool(model.probabilities, matrix)
        probabilities, predictions = service.record(model, matrix, scored, request_id)
    else:
        probabilities, predictions = service.predict(model, matrix, request_id)
    service.metrics.batch_size.observe(len(rows))
    return probabilities.tolist(), predictions.tolist()
