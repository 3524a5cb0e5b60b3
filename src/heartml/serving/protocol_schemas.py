"""The OpenAPI documents of MLflow's scoring protocol and the Open Inference Protocol: their
response and error models, and their request bodies, derived from the served contract.

The request bodies are described exactly enough that every body the schema allows is scored
(schemathesis holds the server to that): MLflow's `dataframe_split` shows the spec's column
order, `instances`/`inputs` their record forms, and an inference request one row (`[1, k]`, or
one `[1]` tensor per column). The other shapes the servers take (any column order, columns of
equal length, n rows, binary tensors) are in the descriptions: JSON Schema cannot say "as many
rows as `shape[0]`" or "columns of equal length".
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, JsonValue

from heartml.documents.base import JsonObject
from heartml.onnx_names import INPUT_NAME
from heartml.serving.contract import Contract
from heartml.serving.mlflow_scoring import FORMATS, PARAMS
from heartml.serving.requests import RECORD_MODEL, field_schema

MLFLOW_REQUEST = "MlflowScoringRequest"
INFERENCE_REQUEST = "InferenceRequest"
OUTPUT_NAMES = ("probabilities", "label")
OUTPUT_DATATYPES = {"probabilities": "FP64", "label": "INT64"}


class MlflowPredictions(BaseModel):
    predictions: list[list[float]] = Field(
        description="Per record, [P(class 0), P(class 1)]: what `mlflow models serve` answers "
        "for a version logged with predict_proba"
    )


class MlflowError(BaseModel):
    error_code: str = Field(
        description="MLflow's code: BAD_REQUEST (the payload's shape), INVALID_PARAMETER_VALUE "
        "(a refused column or value), TEMPORARILY_UNAVAILABLE (no model yet), ..."
    )
    message: str = Field(description="What is wrong, where, and what is allowed")
    request_id: str


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class ServerLive(BaseModel):
    live: bool


class ServerReady(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1: any number of rows")


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: dict[str, str | float | bool] = Field(
        description="`columns`: the input columns in tensor order (comma-separated); "
        "`threshold`: the probability at or above which `label` is 1"
    )


class OutputTensor(BaseModel):
    name: Literal["probabilities", "label"]
    datatype: Literal["FP64", "INT64"]
    shape: list[int]
    data: list[float] | None = Field(
        default=None, description="Row-major; absent when sent as binary data"
    )
    parameters: dict[str, int] | None = Field(
        default=None, description="`binary_data_size` when the tensor follows the JSON in binary"
    )


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = Field(default=None, description="The request's id, when it had one")
    outputs: list[OutputTensor]


class InferenceError(BaseModel):
    error: str = Field(description="What is wrong, where, and what is allowed")
    request_id: str


def _ref(name: str) -> JsonObject:
    return {"$ref": f"#/components/schemas/{name}"}


def mlflow_request_schema(contract: Contract) -> JsonObject:
    """The JSON body of POST /invocations for the served contract."""
    record, names = _ref(RECORD_MODEL), list(contract.names)
    columns: list[JsonValue] = [*names]
    row: JsonObject = {
        "type": "array",
        "prefixItems": [field_schema(contract.columns[name]) for name in names],
        "minItems": len(names),
        "maxItems": len(names),
    }
    records: JsonObject = {"type": "array", "items": record, "minItems": 1}
    shapes: dict[str, JsonValue] = {
        "dataframe_split": {
            "type": "object",
            "properties": {
                "columns": {"const": columns, "description": "Any order; here the spec's"},
                "data": {"type": "array", "items": row, "minItems": 1},
                "index": {"type": "array", "description": "Ignored"},
            },
            "required": ["columns", "data"],
            "additionalProperties": False,
        },
        "dataframe_records": records,
        "instances": {"anyOf": [records, record]},
        "inputs": {"anyOf": [records, record]},
    }
    variants: list[JsonValue] = [
        {
            "type": "object",
            "properties": {key: shapes[key], PARAMS: {"type": "object"}},
            "required": [key],
            "additionalProperties": False,
        }
        for key in FORMATS
    ]
    return {
        "title": MLFLOW_REQUEST,
        "description": "Exactly one of MLflow's input fields (and optionally `params`, ignored). "
        "Also taken: `dataframe_split` with the columns in any order, and `instances`/`inputs` "
        'as columns: `{"age": [63, 41], "sex": [1, 0], ...}` (every column the same length).',
        "oneOf": variants,
        "examples": [{"dataframe_split": {"columns": columns, "data": [_example(contract)]}}],
    }


def _example(contract: Contract) -> list[JsonValue]:
    """The spec's example record as one row, in the contract's column order."""
    record = contract.spec.example_record()
    return [record[name] for name in contract.names]


def inference_request_schema(contract: Contract) -> JsonObject:
    """The JSON body of POST /v2/models/{name}/infer for the served contract (one row shown)."""
    names = list(contract.names)
    numeric: JsonObject = {
        "enum": ["FP64"],
        "description": "FP32, FP16 and the integer types are also read",
    }
    tensor: JsonObject = {
        "type": "object",
        "properties": {
            "name": {"const": INPUT_NAME},
            "shape": {"const": [1, len(names)], "description": "[n, k] for n rows"},
            "datatype": numeric,
            "data": {
                "type": "array",
                "prefixItems": [field_schema(contract.columns[name]) for name in names],
                "minItems": len(names),
                "maxItems": len(names),
                "description": "Row-major, the columns in the order of the model's metadata "
                "(`parameters.columns`); null or NaN where unknown and allowed",
            },
            "parameters": {"type": "object"},
        },
        "required": ["name", "shape", "datatype", "data"],
    }
    per_column: list[JsonValue] = [
        {
            "type": "object",
            "properties": {
                "name": {"const": name},
                "shape": {"const": [1], "description": "[n] (or [n, 1]) for n rows"},
                "datatype": numeric,
                "data": {
                    "type": "array",
                    "prefixItems": [field_schema(contract.columns[name])],
                    "minItems": 1,
                    "maxItems": 1,
                },
                "parameters": {"type": "object"},
            },
            "required": ["name", "shape", "datatype", "data"],
        }
        for name in names
    ]
    one: JsonObject = {"type": "array", "prefixItems": [tensor], "minItems": 1, "maxItems": 1}
    columns: JsonObject = {
        "type": "array",
        "prefixItems": per_column,
        "minItems": len(names),
        "maxItems": len(names),
        "description": "One tensor per column (in any order)",
    }
    output: JsonObject = {
        "type": "object",
        "properties": {
            "name": {"enum": list(OUTPUT_NAMES)},
            "parameters": {
                "type": "object",
                "properties": {"binary_data": {"type": "boolean"}},
            },
        },
        "required": ["name"],
    }
    return {
        "title": INFERENCE_REQUEST,
        "description": f"One FP64 tensor `{INPUT_NAME}` of shape [n, {len(names)}] in the "
        f"column order {contract.fields_text}, or one tensor per column of shape [n]. Binary "
        "tensor data (Triton's extension: the header Inference-Header-Content-Length, each "
        "input's `parameters.binary_data_size`) is read too.",
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "parameters": {
                "type": "object",
                "properties": {"binary_data_output": {"type": "boolean"}},
            },
            "inputs": {"oneOf": [one, columns]},
            "outputs": {"type": "array", "items": output},
        },
        "required": ["inputs"],
        "examples": [
            {
                "inputs": [
                    {
                        "name": INPUT_NAME,
                        "shape": [1, len(names)],
                        "datatype": "FP64",
                        "data": _example(contract),
                    }
                ]
            }
        ],
    }


def document_protocols(
    schema: dict[str, Any], contract: Contract | None, served: tuple[str, str] | None
) -> None:
    """Add the protocols' request bodies for `contract` to an OpenAPI document, and name the
    served model (`served`: its name and version) as the only value of the v2 path parameters."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    if contract is None:
        components[MLFLOW_REQUEST] = {"type": "object", "description": "No model is loaded yet"}
        components[INFERENCE_REQUEST] = {"type": "object", "description": "No model is loaded yet"}
    else:
        components[MLFLOW_REQUEST] = mlflow_request_schema(contract)
        components[INFERENCE_REQUEST] = inference_request_schema(contract)
    if served is None:
        return
    values = dict(zip(("name", "version"), served, strict=True))
    for path, item in schema.get("paths", {}).items():
        if not path.startswith("/v2/models/"):
            continue
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path" and parameter.get("name") in values:
                    parameter["schema"] = {
                        "type": "string",
                        "enum": [values[parameter["name"]]],
                        "description": "The served model's (any other is a 404)",
                    }
