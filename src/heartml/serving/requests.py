"""The request models of a served model, built with pydantic from its dataset spec.

`PatientRecord` (one record), `PredictRequest` (the body of /predict and /predict/explain: a
record and its optional `site`) and `BatchRequest`, each field with its OpenAPI schema and
description, and the generic models used while no spec is known. heartml.serving.contract
gathers them into a model's Contract.

Every value is judged by heartml.spec.rules (`judge_json`), the policy that Task 1 and batch
scoring apply too, and every problem is worded by `rules.problem_message`: a row gets the same
verdict and the same message through every door. A field left out of the body is always a 422
(a forgotten field is never silently imputed); an explicit `null`, or a value the spec lists in
`missing_values`, means unknown and is allowed unless the column is `required`.
"""

from __future__ import annotations

import functools
import math
from typing import Annotated, Any

from pydantic import (
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PlainValidator,
    RootModel,
    Strict,
    WithJsonSchema,
    create_model,
)
from pydantic_core import PydanticCustomError

from heartml.documents.base import JsonObject
from heartml.sites import SITE_ERROR, SITE_MAX, SITE_PATTERN, SITE_RULE, is_site, site_message
from heartml.spec import Column, DatasetSpec, rules

RECORD_MODEL = "PatientRecord"  # the OpenAPI component of one record, whatever the dataset
REQUEST_MODEL = "PredictRequest"  # the body of /predict and /predict/explain: a record + site
BATCH_MODEL = "BatchRequest"


def readable_number(value: float) -> float | int:
    """18.0 -> 18 in documents people read; 2.3 stays 2.3."""
    return int(value) if float(value).is_integer() else value


def allowed_text(column: Column) -> str:
    """What a field accepts, in words (the rules' text, plus null where the column allows it)."""
    return column.allowed + ("" if column.required else ", or null when unknown")


def _shown(value: Any) -> Any:
    """A received value short enough for a message (a 1 MiB string is not repeated back)."""
    text = repr(value)
    if len(text) <= 80:
        return value
    if isinstance(value, str):
        return value[:80] + "…"
    if isinstance(value, dict | list):
        return f"<a JSON {'object' if isinstance(value, dict) else 'array'} of {len(value)} items>"
    return text[:80] + "…"


def _judge(column: Column) -> Any:
    def judge(value: Any) -> float:
        try:
            number, problem = rules.judge_json(column, value)
        except OverflowError:  # an integer beyond float64: like a file's "1e999", not a number
            number, problem = math.nan, rules.NOT_A_NUMBER
        if problem is None:
            return number
        message = rules.problem_message(column, problem, _shown(value))
        raise PydanticCustomError(problem, "{message}", {"message": message})

    return judge


def _judge_site(value: Any) -> str | None:
    if value is None or is_site(value):
        return value
    raise PydanticCustomError(SITE_ERROR, "{message}", {"message": site_message(_shown(value))})


SITE_DESCRIPTION = (
    "Where the prediction is made (a hospital, a ward): not a model input. The site's active "
    "calibration, if it has one, turns the model's probability into the site's own (see "
    f"`calibration` in the answer); {SITE_RULE}. Absent or null: HEARTML_SERVE_SITE, if set."
)
# The `site` of a request body: optional, checked by SITE_PATTERN (one rule for every door).
SiteField = Annotated[
    Any,
    PlainValidator(_judge_site),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": SITE_MAX, "pattern": f"^{SITE_PATTERN.pattern}$"},
                {"type": "null"},
            ]
        }
    ),
]


def site_field() -> Any:
    return (SiteField, Field(default=None, description=SITE_DESCRIPTION, examples=["A"]))


def field_schema(column: Column) -> JsonObject:
    """The JSON schema of a field's value: its range or codes, the values that mean "not
    measured" and null where the column may be unknown."""
    optional = not column.required
    missing: list[JsonValue] = (
        [readable_number(v) for v in column.missing_values] if optional else []
    )
    if column.codes is not None:
        return {"enum": [*column.codes, *missing, *([None] if optional else [])]}
    assert column.range is not None
    number: JsonObject = {"type": "number", "minimum": readable_number(column.range[0])}
    number["maximum"] = readable_number(column.range[1])
    options: list[JsonValue] = [number]
    if missing:
        options.append({"enum": missing, "description": "not measured: the same as null"})
    if optional:
        options.append({"type": "null"})
    return number if len(options) == 1 else {"anyOf": options}


def field_description(column: Column) -> str:
    parts = [column.description.rstrip(".") + ".", f"Allowed: {allowed_text(column)}."]
    if column.required:
        parts.append("Required: never null.")
    else:
        if column.missing_values:
            shown = ", ".join(rules.number_text(v) for v in column.missing_values)
            parts.append(f"{shown} also means not measured.")
        parts.append(
            "An unknown value is imputed by the model (as in training) and named in the "
            "answer's `imputed_fields`."
        )
    return " ".join(parts)


def record_model(spec: DatasetSpec) -> type[BaseModel]:
    # (type, Field) per name; Any because mypy matches a ** of any narrower type against
    # create_model's own keywords (__config__, __doc__, ...) as well
    fields: dict[str, Any] = {}
    for column in spec.raw_columns:
        example = int(column.example) if column.coded else readable_number(column.example)
        annotated = Annotated[
            Any, PlainValidator(_judge(column)), WithJsonSchema(field_schema(column))
        ]
        fields[column.name] = (
            annotated,
            Field(title=column.label, description=field_description(column), examples=[example]),
        )
    record: JsonObject = {**spec.example_record()}
    config = ConfigDict(extra="forbid", json_schema_extra={"examples": [record]})
    doc = (
        f"One {spec.record_title} ({spec.title}): {len(fields)} fields, each a JSON number, "
        "and each present (null where unknown and allowed). A field left out is refused, never "
        "imputed."
    )
    model: type[BaseModel] = create_model(RECORD_MODEL, __config__=config, __doc__=doc, **fields)
    return model


def request_model(spec: DatasetSpec, record: type[BaseModel]) -> type[BaseModel]:
    """The record plus its optional `site` ("site" is a reserved name: no column has it)."""
    example: JsonObject = {**spec.example_record(), "site": "A"}
    model: type[BaseModel] = create_model(
        REQUEST_MODEL,
        __base__=record,
        __doc__=f"One {spec.record_title} record, as `{RECORD_MODEL}`, and optionally its site.",
        site=site_field(),
    )
    model.model_config["json_schema_extra"] = {"examples": [example]}
    model.model_rebuild(force=True)
    return model


def batch_model(spec: DatasetSpec, record: type[BaseModel]) -> type[BaseModel]:
    example: JsonObject = {"records": [{**spec.example_record()}]}
    config = ConfigDict(extra="forbid", json_schema_extra={"examples": [example]})
    records = Field(
        min_length=1,
        description=f"The {spec.record_title}s to score; at most HEARTML_SERVE_BATCH_LIMIT "
        "(default 1000) per request, more is refused with 413.",
    )
    model: type[BaseModel] = create_model(
        BATCH_MODEL,
        __config__=config,
        records=(list[record], records),  # type: ignore[valid-type]
        site=site_field(),
    )
    return model


_GenericValue = Annotated[float | None, Strict(), AllowInfNan(False)]


class _GenericRequest(BaseModel):
    """A record's fields as extras (each a JSON number or null), beside an optional site."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, _GenericValue]
    site: SiteField = Field(default=None, description=SITE_DESCRIPTION)


@functools.cache
def generic_models() -> tuple[type[BaseModel], type[BaseModel], type[BaseModel]]:
    """(record, request, batch) for when no spec is known (no model loaded, no project spec): an
    object of JSON numbers or nulls. Bad input is still refused with a 422 before the 503 that
    says a model is missing, and /docs describes what it can."""
    request = create_model(
        REQUEST_MODEL,
        __base__=_GenericRequest,
        __doc__="One record (the served model's input fields, each a JSON number or null) and "
        "optionally its site. No model is loaded yet: /model/info names the fields once one is.",
    )
    record = create_model(
        RECORD_MODEL,
        __base__=RootModel[dict[str, _GenericValue]],
        __doc__="One record: the served model's input fields, each a JSON number (null where "
        "unknown and allowed). No model is loaded yet: /model/info names the fields once one is.",
    )
    batch = create_model(
        BATCH_MODEL,
        __config__=ConfigDict(extra="forbid"),
        records=(list[record], Field(min_length=1)),
        site=site_field(),
    )
    return record, request, batch
