"""The dataset spec: one validated declaration of a dataset's columns, target and features.

`configs/datasets/<name>.yaml` is read into `DatasetSpec`; everything else (the Task 1 schema,
the FeatureEngineer and its ONNX graph, the API's request model, batch validation, the package's
model config, drift statistics, the web form) is derived from it. Light imports only (pydantic,
yaml, numpy): the prediction service reads the spec of the package it serves.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from heartml.errors import ConfigError
from heartml.spec import expressions
from heartml.spec.expressions import ExpressionError, Node

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
TARGET = "target"  # the derived 0/1 label column in every processed dataset
ROW_ID = "row_id"  # 1-based line of the raw file, kept through every output
# Column names that processed data, batch output or the API already use for something else.
RESERVED_NAMES = frozenset(
    {
        TARGET,
        ROW_ID,
        "row",
        "reasons",
        "imputed",
        "probability",
        "prediction",
        "risk_level",
        "model_version",
        "site",
    }
)
SKLEARN_LOADERS = ("breast_cancer",)  # sklearn.datasets loaders whose data ships with sklearn
ALGORITHM_NAMES = ("random_forest", "logistic_regression", "gradient_boosting", "svm")


class SpecError(ConfigError):
    """The dataset spec is not valid; one line naming the file, the entry and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _identifier(value: str, what: str) -> str:
    if not NAME_PATTERN.match(value):
        raise ValueError(f"{what} {value!r}: use lower-case letters, digits and _")
    if value in RESERVED_NAMES:
        raise ValueError(f"{what} {value!r}: the name is reserved")
    return value


def _codes(value: Any) -> Any:
    # YAML keys 0/1 arrive as ints, but quoted ones as strings: accept both, keep ints.
    if isinstance(value, dict):
        try:
            return {int(key): label for key, label in value.items()}
        except (TypeError, ValueError):
            raise ValueError("codes are whole numbers: {0: label, 1: label}") from None
    return value


class Column(_Strict):
    """One raw input column."""

    name: str = ""  # filled from the mapping key
    kind: Literal["number", "binary", "coded"]
    label: str = Field(min_length=1, description="plain words, for people")
    description: str = Field(min_length=1, description="one line: meaning and unit")
    unit: str = ""
    range: tuple[float, float] | None = None
    codes: Annotated[dict[int, str], BeforeValidator(_codes)] | None = None
    required: bool = Field(
        False, description="never unknown: a row without it is rejected instead of imputed"
    )
    missing_values: tuple[float, ...] = Field(
        (), description="values that data files write where nothing was measured (UCI: 0)"
    )
    example: float
    group: str = Field("", description="form section (e.g. 'exercise test')")
    step: float | None = Field(None, gt=0, description="form step; default 1 or 0.1")
    source_name: str | None = Field(None, description="the column's name in the source data")

    @model_validator(mode="after")
    def _consistent(self) -> Column:
        if self.kind == "number":
            if self.range is None or self.codes is not None:
                raise ValueError("a number column has a range [min, max] and no codes")
            low, high = self.range
            if not low < high:
                raise ValueError(f"range {list(self.range)}: min must be below max")
        else:
            if self.codes is None or self.range is not None:
                raise ValueError(f"a {self.kind} column has codes and no range")
            if self.kind == "binary" and len(self.codes) != 2:
                raise ValueError("a binary column has exactly two codes")
            if len(self.codes) < 2:
                raise ValueError("a coded column has at least two codes")
        if not self.allows(self.example):
            raise ValueError(f"example {self.example:g} is not allowed ({self.allowed})")
        return self

    @property
    def coded(self) -> bool:
        return self.codes is not None

    def allows(self, value: float) -> bool:
        if self.codes is not None:
            return value in self.codes
        assert self.range is not None
        return self.range[0] <= value <= self.range[1]

    @property
    def allowed(self) -> str:
        """What the column accepts, in words (every door's messages use this text)."""
        if self.codes is not None:
            return "one of " + ", ".join(f"{code} ({label})" for code, label in self.codes.items())
        assert self.range is not None
        unit = f" {self.unit}" if self.unit else ""
        return f"a number from {self.range[0]:g} to {self.range[1]:g}{unit}"

    @property
    def form_step(self) -> float:
        if self.step is not None:
            return self.step
        return 1.0 if float(self.example).is_integer() else 0.1


class Feature(_Strict):
    """One engineered feature: an expression over raw columns."""

    name: str = ""
    expression: str
    description: str = ""
    labels: tuple[str, ...] | None = Field(
        None, description="names of the bins, for a bins(...) feature (reports, subgroups)"
    )


class Target(_Strict):
    column: str = Field(description="the label's column in the source data")
    allowed: tuple[int, ...] = Field(min_length=2, description="values the label column may hold")
    positive: str = Field(description="when a row is positive, e.g. 'num > 0'")
    positive_label: str
    negative_label: str
    source_name: str | None = None


class Source(_Strict):
    format: Literal["headerless_csv", "csv", "sklearn"]
    url: str | None = Field(None, description="downloaded first (with a timeout), if given")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    shipped_copy: str | None = Field(None, description="file under the project root")
    columns: tuple[str, ...] | None = Field(None, description="headerless_csv: field order")
    loader: str | None = Field(None, description=f"sklearn: one of {', '.join(SKLEARN_LOADERS)}")
    citation: str = ""
    licence: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Source:
        if self.format == "headerless_csv" and not self.columns:
            raise ValueError("a headerless_csv source lists its columns in file order")
        if self.format == "sklearn" and self.loader not in SKLEARN_LOADERS:
            raise ValueError(f"loader {self.loader!r}: allowed: {', '.join(SKLEARN_LOADERS)}")
        if self.format != "sklearn" and not (self.url or self.shipped_copy):
            raise ValueError("a file source needs a url or a shipped_copy")
        return self


class RiskBand(_Strict):
    label: str = Field(pattern=r"^[a-z][a-z_]*$")
    below: float | None = Field(None, gt=0, le=1)


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
        if value in ALGORITHM_NAMES:
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
        return _parse_rule(self.target.positive, self.target.column)

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


_COMPARISONS = {">": ">", ">=": ">=", "<": "<", "<=": "<=", "==": "==", "!=": "!="}


def _parse_rule(text: str, column: str) -> tuple[str, tuple[float, ...]]:
    import ast

    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise ValueError(f"target.positive {text!r}: malformed (e.g. '{column} > 0')") from None
    ops = {ast.Gt: ">", ast.GtE: ">=", ast.Lt: "<", ast.LtE: "<=", ast.Eq: "==", ast.NotEq: "!="}
    if (
        isinstance(tree, ast.Compare)
        and len(tree.ops) == 1
        and isinstance(tree.left, ast.Name)
        and tree.left.id == column
    ):
        right = tree.comparators[0]
        if (
            type(tree.ops[0]) in ops
            and isinstance(right, ast.Constant)
            and type(right.value) in (int, float)
        ):
            return ops[type(tree.ops[0])], (float(right.value),)  # type: ignore[arg-type]
        if isinstance(tree.ops[0], ast.In) and isinstance(right, ast.List | ast.Tuple):
            values = [e.value for e in right.elts if isinstance(e, ast.Constant)]
            if len(values) == len(right.elts) and all(type(v) in (int, float) for v in values):
                return "in", tuple(float(v) for v in values)  # type: ignore[arg-type]
    raise ValueError(
        f"target.positive {text!r}: write '{column} <op> number' (op: > >= < <= == !=) or "
        f"'{column} in [numbers]'"
    )


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def parse_spec(raw: Any, source: str) -> DatasetSpec:
    try:
        return DatasetSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise SpecError(f"{source}: {_describe(first)}{more}") from None


def load_spec(path: Path) -> DatasetSpec:
    """Read and validate a spec file; SpecError (one line) on any problem."""
    if not path.is_file():
        raise SpecError(f"dataset spec not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise SpecError(f"{path}: not valid YAML{where}: {problem}") from None
    return parse_spec(raw, str(path))


def spec_from_text(text: str, source: str = "dataset spec") -> DatasetSpec:
    return parse_spec(yaml.safe_load(text), source)
