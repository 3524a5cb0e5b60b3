"""The response of the Open Inference Protocol (KServe v2): scores -> output tensors, in JSON
or with Triton's binary tensor data extension (heartml.serving.open_inference reads requests).

Outputs: `probabilities` FP64 [n, 2] (P(class 0), P(class 1)) and `label` INT64 [n] (the 0/1
decision at the package threshold, as /predict's `prediction`), all unless `outputs` names some.
An output is sent as binary data when its `parameters.binary_data` is true, or when the request's
`parameters.binary_data_output` is (what tritonclient asks for when it names no outputs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NotRequired, TypedDict

import numpy as np
import orjson

from heartml.onnx_names import PROBABILITIES_OUTPUT
from heartml.serving.open_inference import DATATYPES, InferRequest


class OutputTensorBody(TypedDict):
    """An output tensor of the response (documented as protocol_schemas.OutputTensor)."""

    name: str
    datatype: str
    shape: list[int]
    parameters: NotRequired[dict[str, int]]  # binary_data_size, when sent as binary data
    data: NotRequired[Sequence[float]]  # row-major, when sent as JSON


class InferResponseBody(TypedDict):
    """The response's JSON part (documented as protocol_schemas.InferenceResponse)."""

    model_name: str
    model_version: str
    id: NotRequired[str]
    outputs: list[OutputTensorBody]


def encode_response(
    model_name: str,
    model_version: str,
    request: InferRequest,
    probabilities: list[float],
    labels: list[int],
) -> tuple[bytes, int | None]:
    """The response body, and the length of its JSON part when binary outputs follow it."""
    n = len(probabilities)
    outputs: list[OutputTensorBody] = []
    chunks: list[bytes] = []
    for name, binary in request.outputs:
        values: Sequence[float]
        if name == PROBABILITIES_OUTPUT:
            shape, datatype = [n, 2], "FP64"
            flat: list[float] = []
            for p in probabilities:
                flat += (1.0 - p, p)
            values = flat
        else:
            shape, datatype, values = [n], "INT64", labels
        tensor: OutputTensorBody = {"name": name, "datatype": datatype, "shape": shape}
        if binary:
            raw = np.asarray(values, dtype=DATATYPES[datatype]).tobytes()
            tensor["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            tensor["data"] = values
        outputs.append(tensor)
    response: InferResponseBody = (  # the keys in this order: the id, when sent, before outputs
        {"model_name": model_name, "model_version": model_version, "outputs": outputs}
        if request.id is None
        else {
            "model_name": model_name,
            "model_version": model_version,
            "id": request.id,
            "outputs": outputs,
        }
    )
    header = orjson.dumps(response)
    if not chunks:
        return header, None
    return b"".join([header, *chunks]), len(header)
