"""The dataset spec: one validated declaration of a dataset's columns, target and features.

`configs/datasets/<name>.yaml` is read into `DatasetSpec` (heartml.spec.files); everything else
(the Task 1 schema, the FeatureEngineer and its ONNX graph, the API's request model, batch
validation, the package's model config, drift statistics, the web form) is derived from it.
Light imports only (pydantic, yaml, numpy): the prediction service reads the spec of the
package it serves.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from functools import cached_property
from typing import Annotated, Any

import yaml
from pydantic import BeforeValidator, Field, field_validator, model_validator

from heartml.choices import ALGORITHMS
from heartml.spec import expressions
from heartml.spec.expressions import ExpressionError, Node
from heartml.spec.parts import (
    NAME_PATTERN,
    Column,
    Feature,
    RiskBand,
    Source,
    Target,
    _identifier,
    _Strict,
    parse_rule,
)


def _named(entries: Any, what: str) -> Any:
    """`{name: entry}` mappings keep their key as the entry's name; feature entries may be a
    bare expression string."""
    if not isinstance(entries, dict):
        return entries
    named = {}
    for key, entry in entries.items():
        if what == "feature" and isinstance(entry, str):
            entry = {"expression": entry}
        if isinstance(entry, dict):
            entry = {**entry, "name": str(key)}
        named[str(key)] = entry
    return named


class DatasetSpec(_Strict):
    name: str
    title: str
    description: str = ""
    model_name_prefix: str = Field(description="registered models: <prefix>_<algorithm>")
    package_prefix: str = Field(description="packages/<prefix>_<algorithm>_v<version>/")
    experiment: str = Field(description="MLflow experiment")
    processed_stem: str = Field("dataset", description="data/processed/<stem>.parquet")
    record_title: str = Field("patient", description="what one row is, in words")
    source: Source
    missing_markers: tuple[str, ...] = Field(
        ("", "?"), description="texts that mean 'not recorded' in every data file"
    )
    columns: Annotated[dict[str, Column], BeforeValidator(lambda v: _named(v, "column"))]
    target: Target
    features: Annotated[dict[str, Feature], BeforeValidator(lambda v: _named(v, "feature"))] = (
        Field(default_factory=dict)
    )
    one_hot: tuple[str, ...] = ()
    risk_bands: tuple[RiskBand, ...] = Field(min_length=1)
    subgroups: tuple[str, ...] = Field((), description="coded columns or binned features")
    missing_blocks: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="groups of columns often missing together"
    )
    limitations: tuple[str, ...] = Field(
        (), description="what a reader of the model card must know about the data, in words"
    )

    @field_validator("name", "model_name_prefix", "package_prefix", "processed_stem")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(f"{value!r}: use lower-case letters, digits and _")
        if value in ALGORITHMS:
            raise ValueError(f"{value!r} is an algorithm's name")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DatasetSpec:
        names = list(self.columns)
        for name in names:
            _identifier(name, "column")
        _identifier(self.target.column, "target column")
        if self.target.column in self.columns:
            raise ValueError(f"target column {self.target.column!r} is also an input column")
        for name in self.features:
            _identifier(name, "feature")
            if name in self.columns:
                raise ValueError(f"feature {name!r}: the name is already a raw column")
        self.parsed_features  # noqa: B018 -- parse now: errors name the feature and the token
        self.positive_rule  # noqa: B018
        for name in self.one_hot:
            if name not in self.columns or not self.columns[name].coded:
                raise ValueError(f"one_hot: {name!r} is not a coded column")
        for name in self.subgroups:
            feature = self.features.get(name)
            if not (
                (name in self.columns and self.columns[name].coded)
                or (feature is not None and feature.labels)
            ):
                raise ValueError(f"subgroups: {name!r} is not a coded column or a labelled bins")
        for block, members in self.missing_blocks.items():
            for name in members:
                if name not in self.columns:
                    raise ValueError(f"missing_blocks.{block}: unknown column {name!r}")
                if self.columns[name].required:
                    raise ValueError(f"missing_blocks.{block}: {name!r} is required")
        edges = [band.below for band in self.risk_bands]
        if edges[-1] is not None or any(edge is None for edge in edges[:-1]):
            raise ValueError("risk_bands: every band but the last has `below`; the last has none")
        inner = [edge for edge in edges if edge is not None]
        if any(b <= a for a, b in itertools.pairwise(inner)):
            raise ValueError("risk_bands: `below` must increase")
        if self.source.format == "headerless_csv":
            expected = (*self.columns, self.target.column)
            if set(self.source.columns or ()) != set(expected):
                raise ValueError(
                    "source.columns must list every column and the target column exactly once"
                )
        return self

    # -- derived facts ------------------------------------------------------------------------

    @property
    def raw_names(self) -> tuple[str, ...]:
        return tuple(self.columns)

    @property
    def raw_columns(self) -> tuple[Column, ...]:
        return tuple(self.columns.values())

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(self.features)

    @property
    def all_features(self) -> tuple[str, ...]:
        """What FeatureEngineer outputs: the raw columns, then the engineered features."""
        return (*self.columns, *self.features)

    @property
    def optional_names(self) -> tuple[str, ...]:
        """Columns that may be unknown at scoring time (imputed by the model)."""
        return tuple(name for name, column in self.columns.items() if not column.required)

    @cached_property
    def parsed_features(self) -> dict[str, Node]:
        parsed = {}
        for name, feature in self.features.items():
            try:
                parsed[name] = expressions.parse(feature.expression, set(self.columns))
            except ExpressionError as exc:
                raise ValueError(
                    f"feature {name!r} = {feature.expression!r}: {exc} (at {exc.token!r})"
                ) from None
            if feature.labels is not None:
                node = parsed[name]
                if (
                    not isinstance(node, expressions.Bins)
                    or len(feature.labels) != len(node.edges) + 1
                ):
                    raise ValueError(
                        f"feature {name!r}: labels need a bins(...) expression with one label "
                        "per bin (edges + 1)"
                    )
        return parsed

    @cached_property
    def positive_rule(self) -> tuple[str, tuple[float, ...]]:
        """(operator, operands) of the target rule, e.g. ('>', (0,)) or ('in', (1, 2))."""
        return parse_rule(self.target.positive, self.target.column)

    def risk_level(self, probability: float) -> str:
        for band in self.risk_bands:
            if band.below is None or probability < band.below:
                return band.label
        return self.risk_bands[-1].label  # NaN: never reached by a valid probability

    @property
    def risk_bands_text(self) -> str:
        parts, low = [], 0.0
        for band in self.risk_bands:
            if band.below is None:
                parts.append(f"{band.label}: p >= {low:g}")
            elif low == 0:
                parts.append(f"{band.label}: p < {band.below:g}")
            else:
                parts.append(f"{band.label}: {low:g} <= p < {band.below:g}")
            low = band.below or low
        return "; ".join(parts)

    def example_record(self) -> dict[str, float]:
        return {
            name: int(column.example) if column.coded else column.example
            for name, column in self.columns.items()
        }

    def subgroup_labels(self, name: str) -> dict[int, str]:
        """code -> label of a subgroup variable (a coded column or a labelled bins feature)."""
        if name in self.columns:
            return dict(self.columns[name].codes or {})
        labels = self.features[name].labels or ()
        return dict(enumerate(labels))

    def spec_hash(self) -> str:
        """sha256 of the canonical JSON form: equal specs hash equally, whatever the YAML."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def to_yaml(self) -> str:
        """The spec as YAML (what packages and MLflow runs carry); loads back equal."""
        data = self.model_dump(mode="json", exclude_defaults=False)
        for table in ("columns", "features"):
            for entry in data[table].values():
                entry.pop("name", None)
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
