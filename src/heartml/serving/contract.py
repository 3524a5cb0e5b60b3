"""The input contract of a served model, derived from the dataset spec its package carries.

Everything the API says about its inputs comes from here: the request model (`record`, built
with pydantic from the spec's columns), the batch model, the fast check's rules (used by
heartml.serving.schemas), the OpenAPI schema of each field, the fields of `/model/info` (which
the web form is built from), the risk bands and the words for imputed values. A hot reload to a
package with another spec brings another Contract; each request is validated with the contract
of the model that scores it.

Every value is judged by heartml.spec.rules (`judge_json`), the policy that Task 1 and batch
scoring apply too, and every problem is worded by `rules.problem_message`: a row gets the same
verdict and the same message through every door. A field left out of the body is always a 422
(a forgotten field is never silently imputed); an explicit `null`, or a value the spec lists in
`missing_values`, means unknown and is allowed unless the column is `required`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypedDict

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

from heartml.catalog import spec_path
from heartml.documents.base import JsonObject
from heartml.settings import Settings
from heartml.sites import SITE_ERROR, SITE_MAX, SITE_PATTERN, SITE_RULE, is_site, site_message
from heartml.spec import Column, DatasetSpec, SpecError, load_spec, rules

log = logging.getLogger("heartml.serving")

RECORD_MODEL = "PatientRecord"  # the OpenAPI component of one record, whatever the dataset
REQUEST_MODEL = "PredictRequest"  # the body of /predict and /predict/explain: a record + site
BATCH_MODEL = "BatchRequest"
# (name, minimum, maximum, codes or None, may be unknown, values meaning "not measured")
RowRule = tuple[str, float, float, frozenset[int] | None, bool, tuple[float, ...]]


class DatasetBody(TypedDict):
    """/model/info `dataset` (documented as heartml.serving.schemas.DatasetInfo)."""

    name: str
    title: str
    description: str
    record_title: str
    positive_label: str
    negative_label: str


class CodeBody(TypedDict):
    code: int
    label: str


class FieldBody(TypedDict):
    """One of /model/info `fields` (documented as heartml.serving.schemas.InputField)."""

    name: str
    label: str
    description: str
    kind: Literal["number", "binary", "coded"]
    unit: str
    minimum: float | None
    maximum: float | None
    codes: list[CodeBody] | None
    required: bool
    missing_values: list[float]
    example: float
    group: str
    step: float
    allowed: str


class RiskLevelBody(TypedDict):
    """One of /model/info `risk_levels` (documented as heartml.serving.schemas.RiskLevelInfo)."""

    label: str
    minimum: float
    below: float | None


def _number(value: float) -> float | int:
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
    missing: list[JsonValue] = [_number(v) for v in column.missing_values] if optional else []
    if column.codes is not None:
        return {"enum": [*column.codes, *missing, *([None] if optional else [])]}
    assert column.range is not None
    number: JsonObject = {"type": "number", "minimum": _number(column.range[0])}
    number["maximum"] = _number(column.range[1])
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


def _record_model(spec: DatasetSpec) -> type[BaseModel]:
    # (type, Field) per name; Any because mypy matches a ** of any narrower type against
    # create_model's own keywords (__config__, __doc__, ...) as well
    fields: dict[str, Any] = {}
    for column in spec.raw_columns:
        example = int(column.example) if column.coded else _number(column.example)
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


def _request_model(spec: DatasetSpec, record: type[BaseModel]) -> type[BaseModel]:
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


def _batch_model(spec: DatasetSpec, record: type[BaseModel]) -> type[BaseModel]:
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


def inputs_hash(spec: DatasetSpec) -> str:
    """Changes when what a client sends or is told changes: the columns, the bands, the labels
    (not when only an engineered feature does)."""
    shown = {
        "title": spec.title,
        "record_title": spec.record_title,
        "columns": {name: column.model_dump(mode="json") for name, column in spec.columns.items()},
        "target": spec.target.model_dump(mode="json"),
        "risk_bands": [band.model_dump(mode="json") for band in spec.risk_bands],
    }
    return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, eq=False)
class Contract:
    """What a served model accepts and how the API describes it (one per loaded spec)."""

    spec: DatasetSpec
    names: tuple[str, ...]
    columns: dict[str, Column]
    key: str  # inputs_hash: equal keys, equal request contracts
    spec_hash: str
    record: type[BaseModel]  # one record's fields (a batch's records, the other protocols')
    request: type[BaseModel]  # /predict's body: `record` and an optional `site`
    batch: type[BaseModel]
    row_rules: tuple[RowRule, ...]
    # The fast check tests "not measured" values only where a value is refused: right when no
    # such value is also an allowed one (UCI's 0 is not a cholesterol), else it is off.
    fast_path: bool
    _bands: tuple[tuple[float, str], ...] = field(init=False, repr=False)
    _notes: dict[tuple[str, ...], str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        bands = tuple((b.below, b.label) for b in self.spec.risk_bands if b.below is not None)
        object.__setattr__(self, "_bands", bands)

    @property
    def fields_text(self) -> str:
        return ", ".join(self.names)

    def record_row(self, record: BaseModel) -> list[float]:
        """A validated record's values in model column order (NaN = unknown)."""
        data = record.__dict__
        return [data[name] for name in self.names]

    def imputed(self, row: list[float]) -> list[str]:
        """The fields of a row that the model imputes (unknown: NaN)."""
        return [name for name, value in zip(self.names, row, strict=True) if value != value]

    def note(self, imputed: list[str]) -> str | None:
        """For people: which values were unknown, and that the estimate is less certain."""
        if not imputed:
            return None
        key = tuple(imputed)
        text = self._notes.get(key)
        if text is None:
            labels = "; ".join(self.columns[name].label for name in imputed)
            them = "it" if len(imputed) == 1 else "them"
            text = (
                f"Not known: {labels}. The model imputed {them} from its training data, so this "
                f"estimate is less certain than one from a complete {self.spec.record_title} "
                "record."
            )
            if len(self._notes) < 4096:  # bounded: one entry per combination seen
                self._notes[key] = text
        return text

    def risk_level(self, probability: float) -> str:
        """The spec's band of a probability (DatasetSpec.risk_level, without its objects: the
        request path asks once per answer)."""
        for below, label in self._bands:
            if probability < below:
                return label
        return self.spec.risk_bands[-1].label

    @property
    def risk_labels(self) -> list[str]:
        return [band.label for band in self.spec.risk_bands]

    def risk_levels(self) -> list[RiskLevelBody]:
        """The bands as data: [minimum, below) each; the last has no upper edge."""
        levels: list[RiskLevelBody] = []
        low = 0.0
        for band in self.spec.risk_bands:
            levels.append({"label": band.label, "minimum": low, "below": band.below})
            low = band.below if band.below is not None else low
        return levels

    def dataset_info(self) -> DatasetBody:
        spec = self.spec
        return {
            "name": spec.name,
            "title": spec.title,
            "description": spec.description,
            "record_title": spec.record_title,
            "positive_label": spec.target.positive_label,
            "negative_label": spec.target.negative_label,
        }

    def fields_info(self) -> list[FieldBody]:
        """Every input field, in model order: what a client needs to build a form."""
        out: list[FieldBody] = []
        for column in self.columns.values():
            out.append(
                {
                    "name": column.name,
                    "label": column.label,
                    "description": column.description,
                    "kind": column.kind,
                    "unit": column.unit,
                    "minimum": _number(column.range[0]) if column.range else None,
                    "maximum": _number(column.range[1]) if column.range else None,
                    "codes": (
                        [{"code": code, "label": label} for code, label in column.codes.items()]
                        if column.codes is not None
                        else None
                    ),
                    "required": column.required,
                    "missing_values": [_number(v) for v in column.missing_values],
                    "example": int(column.example) if column.coded else _number(column.example),
                    "group": column.group,
                    "step": _number(column.form_step),
                    "allowed": allowed_text(column),
                }
            )
        return out


def build_contract(spec: DatasetSpec) -> Contract:
    """The contract of a spec (builds two pydantic models: a few ms, once per loaded package)."""
    record = _record_model(spec)
    row_rules: list[RowRule] = []
    for column in spec.raw_columns:
        low, high = column.range if column.range is not None else (math.nan, math.nan)
        codes = frozenset(column.codes) if column.codes is not None else None
        row_rules.append(
            (column.name, low, high, codes, not column.required, tuple(column.missing_values))
        )
    fast_path = not any(
        column.allows(value) for column in spec.raw_columns for value in column.missing_values
    )
    return Contract(
        spec=spec,
        names=spec.raw_names,
        columns=dict(spec.columns),
        key=inputs_hash(spec),
        spec_hash=spec.spec_hash(),
        record=record,
        request=_request_model(spec, record),
        batch=_batch_model(spec, record),
        row_rules=tuple(row_rules),
        fast_path=fast_path,
    )


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


def configured_spec(settings: Settings) -> DatasetSpec | None:
    """The project's spec (settings.dataset) if the root has it; a serving image ships packages,
    not the project's configs: None."""
    path = spec_path(settings.resolved_root, settings.dataset)
    if not path.is_file():
        return None
    try:
        return load_spec(path)
    except SpecError as exc:
        log.warning("the configured dataset spec is not valid", extra={"reason": str(exc)})
        return None
