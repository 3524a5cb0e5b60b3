"""The pieces of a dataset spec: columns, features, the target, the source, risk bands.

Each is a strict pydantic model that checks itself; heartml.spec.model puts them together.
"""

from __future__ import annotations

import ast
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from heartml.errors import ConfigError

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
        "model_probability",
        "calibration",
    }
)
SKLEARN_LOADERS = ("breast_cancer",)  # sklearn.datasets loaders whose data ships with sklearn


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


def parse_rule(text: str, column: str) -> tuple[str, tuple[float, ...]]:
    """The target rule's (operator, operands): 'num > 0' -> ('>', (0.0,))."""
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
