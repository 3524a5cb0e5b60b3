"""The Open Inference Protocol (KServe v2): an inference request -> records, in JSON or with
Triton's binary tensor data extension (heartml.serving.open_inference_response writes the
response).

Inputs, either form:
- one tensor named `input` (the ONNX graph's input) of shape [n, k], the k raw columns in the
  spec's order (the model metadata's `parameters.columns`);
- one tensor per column, named by the column, of shape [n] or [n, 1] (any order).
FP64 is the documented datatype; FP32, FP16 and the integer types are read too (an integer
tensor's JSON data must hold integers). In JSON, `null` or NaN is an unknown value; in a binary
tensor, NaN. Every value is then judged by the served contract (heartml.serving.rows).

The request's `outputs` (default: all) name the outputs to answer with, each as binary data or
JSON (heartml.serving.open_inference_response).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from heartml.documents.base import JsonObject
from heartml.onnx_names import INPUT_NAME, LABEL_OUTPUT, PROBABILITIES_OUTPUT
from heartml.serving.contract import Contract
from heartml.serving.rows import InputError, Records, kind_of, parse_json

HEADER_LENGTH = b"inference-header-content-length"
# The numeric datatypes read, as little-endian numpy dtypes (the protocol's byte order).
DATATYPES = {
    "FP64": "<f8",
    "FP32": "<f4",
    "FP16": "<f2",
    "INT8": "i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "UINT8": "u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
}
OUTPUTS = (PROBABILITIES_OUTPUT, LABEL_OUTPUT)
_ABSENT = object()  # an optional field left out (a JSON null is a value, and not an object)
EXTENSIONS = ["binary_tensor_data"]


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    records: Records
    outputs: list[tuple[str, bool]]  # (name, as binary data), in the order to answer


def header_length(raw_headers: Sequence[tuple[bytes, bytes]]) -> int | None:
    """Inference-Header-Content-Length, the size of the JSON part of a binary request."""
    for name, value in raw_headers:
        if name == HEADER_LENGTH:
            if not value.isdigit():
                raise InputError(
                    f"Inference-Header-Content-Length must be a number of bytes; got {value.decode('latin-1')!r}"
                )
            return int(value)
    return None


def parse_request(body: bytes, json_length: int | None, contract: Contract) -> InferRequest:
    """An inference request's id, records and requested outputs; InputError when malformed."""
    binary = b""
    if json_length is not None:
        if not 0 < json_length <= len(body):
            raise InputError(
                f"Inference-Header-Content-Length is {json_length} but the body has {len(body)} "
                "bytes"
            )
        body, binary = body[:json_length], body[json_length:]
    if not body or body.isspace():
        raise InputError("the request body is empty: send an inference request with inputs")
    request = parse_json(body)
    if json_length is None and type(request) is dict and len(request) == 1:
        simple = _one_json_tensor(request.get("inputs"), contract)
        if simple is not None:
            return InferRequest(None, simple, [(name, False) for name in OUTPUTS])
    if type(request) is not dict:
        raise InputError(f"the inference request must be a JSON object; got {kind_of(request)}")
    request_id = request.get("id", _ABSENT)
    if request_id is _ABSENT:
        request_id = None
    elif type(request_id) is not str:
        raise InputError(f"id must be a string; got {kind_of(request_id)}")
    parameters = _object(request.get("parameters", _ABSENT), "parameters")
    inputs = request.get("inputs")
    if type(inputs) is not list or not inputs:
        got = "an empty array" if inputs == [] else kind_of(inputs)
        raise InputError(f"inputs must be a non-empty array of tensors; got {got}")
    tensors = _tensors(inputs, binary)
    records = _records(tensors, contract)
    binary_default = parameters.get("binary_data_output", False)
    if type(binary_default) is not bool:
        raise InputError("parameters.binary_data_output must be true or false")
    outputs = _outputs(request.get("outputs", _ABSENT), binary_default)
    return InferRequest(request_id, records, outputs)


def _one_json_tensor(inputs: Any, contract: Contract) -> Records | None:
    """The records of the common request, `{"inputs": [one FP64 tensor "input" [n, k] with flat
    JSON data]}`, checked in one pass; None for anything else (the general path reads it, and
    words any problem)."""
    if type(inputs) is not list or len(inputs) != 1:
        return None
    tensor = inputs[0]
    if type(tensor) is not dict or len(tensor) != 4 or tensor.get("name") != INPUT_NAME:
        return None
    shape, data, names = tensor.get("shape"), tensor.get("data"), contract.names
    k = len(names)
    if (
        tensor.get("datatype") != "FP64"
        or type(shape) is not list
        or len(shape) != 2
        or shape[1] != k
        or type(shape[0]) is not int
        or shape[0] < 1
        or type(data) is not list
        or len(data) != shape[0] * k
    ):
        return None
    if list in map(type, data):  # nested data: the general path flattens it
        return None
    if shape[0] == 1:
        return Records([dict(zip(names, data, strict=True))], _row)
    rows = [data[i : i + k] for i in range(0, len(data), k)]
    return Records([dict(zip(names, row, strict=True)) for row in rows], _row)


def _object(value: Any, where: str) -> JsonObject:
    """An optional object field: {} when absent; a JSON null is not an object."""
    if value is _ABSENT:
        return {}
    if type(value) is not dict:
        raise InputError(f"{where} must be a JSON object; got {kind_of(value)}")
    return value


def _tensors(inputs: list[Any], binary: bytes) -> list[tuple[str, list[int], list[Any]]]:
    """(name, shape, flat values) per input; binary data consumed in input order."""
    tensors = []
    offset = 0
    for index, tensor in enumerate(inputs):
        where = f"inputs[{index}]"
        if type(tensor) is not dict:
            raise InputError(f"{where} must be a tensor object; got {kind_of(tensor)}")
        name, shape, datatype = tensor.get("name"), tensor.get("shape"), tensor.get("datatype")
        if type(name) is not str:
            raise InputError(f"{where}.name must be a string; got {kind_of(name)}")
        where = f"inputs[{index}] ({name})"
        if type(shape) is not list or not all(type(n) is int and n >= 0 for n in shape):
            raise InputError(f"{where}.shape must be an array of non-negative integers")
        if type(datatype) is not str or datatype not in DATATYPES:
            raise InputError(
                f"{where}.datatype {datatype!r} is not read here; send FP64 (or FP32, FP16, "
                "INT8-64, UINT8-64)"
            )
        size = math.prod(shape)
        parameters = _object(tensor.get("parameters", _ABSENT), f"{where}.parameters")
        binary_size = parameters.get("binary_data_size")
        if binary_size is not None:
            if "data" in tensor:
                raise InputError(f"{where} has both data and parameters.binary_data_size")
            if type(binary_size) is not int or binary_size < 0:
                raise InputError(f"{where}.parameters.binary_data_size must be a byte count")
            dtype = np.dtype(DATATYPES[datatype])
            if binary_size != size * dtype.itemsize or offset + binary_size > len(binary):
                raise InputError(
                    f"{where}: binary_data_size {binary_size} does not hold {size} {datatype} "
                    f"values ({size * dtype.itemsize} bytes) of the {len(binary) - offset} left"
                )
            chunk = np.frombuffer(binary, dtype, count=size, offset=offset)
            offset += binary_size
            values = chunk.astype(np.float64).tolist()
        else:
            values = _flat(tensor.get("data"), where)
            if len(values) != size:
                raise InputError(
                    f"{where} has {len(values)} values for its shape {shape} ({size} values)"
                )
            if not datatype.startswith("FP"):
                for value in values:
                    if type(value) is float and not value.is_integer():
                        raise InputError(f"{where}: {datatype} data must be integers; got {value}")
        tensors.append((name, shape, values))
    if offset != len(binary):
        raise InputError(
            f"the body has {len(binary) - offset} bytes of binary data that no input claims"
        )
    return tensors


def _flat(data: Any, where: str) -> list[Any]:
    """A tensor's JSON data, row-major: flat, or nested arrays (flattened)."""
    if type(data) is not list:
        raise InputError(f"{where}.data must be an array of values; got {kind_of(data)}")
    if not any(type(item) is list for item in data):
        return data
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if type(item) is list:
                if len(stack) > 32:
                    raise InputError(f"{where}.data is nested too deeply")
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def _records(tensors: list[tuple[str, list[int], list[Any]]], contract: Contract) -> Records:
    names = contract.names
    k = len(names)
    if len(tensors) == 1 and tensors[0][0] == INPUT_NAME:
        _, shape, values = tensors[0]
        if len(shape) != 2 or shape[1] != k or shape[0] < 1:
            raise InputError(
                f"inputs[0] ({INPUT_NAME}) must have the shape [n, {k}] (n rows of "
                f"{contract.fields_text}); got {shape}"
            )
        rows = [values[i : i + k] for i in range(0, len(values), k)]
        return Records([dict(zip(names, row, strict=True)) for row in rows], _row)
    by_name: dict[str, list[Any]] = {}
    for index, (name, shape, values) in enumerate(tensors):
        where = f"inputs[{index}] ({name})"
        if name not in contract.columns:
            raise InputError(
                f"{where} is not an input of this model: send one tensor {INPUT_NAME!r} of "
                f"shape [n, {k}], or one tensor per column ({contract.fields_text})",
                value_problem=True,
            )
        if name in by_name:
            raise InputError(f"{where}: the input {name!r} is sent twice", value_problem=True)
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)) or shape[0] < 1:
            raise InputError(f"{where} must have the shape [n] or [n, 1]; got {shape}")
        by_name[name] = values
    missing = [name for name in names if name not in by_name]
    if missing:
        raise InputError(
            f"inputs lack {', '.join(missing)}: one tensor per column is needed "
            f"({contract.fields_text})",
            value_problem=True,
        )
    counts = {len(values) for values in by_name.values()}
    if len(counts) != 1:
        shown = ", ".join(f"{name}: {len(values)}" for name, values in by_name.items())
        raise InputError(f"every input needs the same number of rows (got {shown})")
    columns = [by_name[name] for name in names]
    return Records([dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)], _row)


def _row(index: int) -> str:
    return f"row {index}, "


def _outputs(requested: Any, binary_default: bool) -> list[tuple[str, bool]]:
    if requested is _ABSENT:
        return [(name, binary_default) for name in OUTPUTS]
    if type(requested) is not list:
        raise InputError(f"outputs must be an array of requested outputs; got {kind_of(requested)}")
    chosen: dict[str, bool] = {}
    for index, output in enumerate(requested):
        name = output.get("name") if type(output) is dict else None
        if name not in OUTPUTS:
            raise InputError(
                f"outputs[{index}].name must be one of {', '.join(OUTPUTS)}; got {name!r}"
                if type(output) is dict
                else f"outputs[{index}] must be an object"
            )
        parameters = _object(output.get("parameters", _ABSENT), f"outputs[{index}].parameters")
        binary = parameters.get("binary_data", binary_default)
        if type(binary) is not bool:
            raise InputError(f"outputs[{index}].parameters.binary_data must be true or false")
        chosen.setdefault(name, binary)
    return list(chosen.items())
