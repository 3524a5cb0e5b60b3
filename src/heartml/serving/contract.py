"""The input contract of a served model, derived from the dataset spec its package carries.

Everything the API says about its inputs comes from here: the request models (built by
heartml.serving.requests), the fast check's rules (used by heartml.serving.fast_check), the
fields of `/model/info` (which the web form is built from), the risk bands and the words for
imputed values. A hot reload to a package with another spec brings another Contract; each request is
validated with the contract of the model that scores it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from typing import Literal, TypedDict

from pydantic import BaseModel

from heartml.catalog import spec_path
from heartml.serving.requests import (
    allowed_text,
    batch_model,
    readable_number,
    record_model,
    request_model,
)
from heartml.settings import Settings
from heartml.spec import Column, DatasetSpec, SpecError, load_spec

log = logging.getLogger("heartml.serving")

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
                    "minimum": readable_number(column.range[0]) if column.range else None,
                    "maximum": readable_number(column.range[1]) if column.range else None,
                    "codes": (
                        [{"code": code, "label": label} for code, label in column.codes.items()]
                        if column.codes is not None
                        else None
                    ),
                    "required": column.required,
                    "missing_values": [readable_number(v) for v in column.missing_values],
                    "example": int(column.example)
                    if column.coded
                    else readable_number(column.example),
                    "group": column.group,
                    "step": readable_number(column.form_step),
                    "allowed": allowed_text(column),
                }
            )
        return out


def build_contract(spec: DatasetSpec) -> Contract:
    """The contract of a spec (builds two pydantic models: a few ms, once per loaded package)."""
    record = record_model(spec)
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
        request=request_model(spec, record),
        batch=batch_model(spec, record),
        row_rules=tuple(row_rules),
        fast_path=fast_path,
    )


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
