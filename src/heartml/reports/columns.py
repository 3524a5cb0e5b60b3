"""What the reports know about a dataset, built from its spec: column labels and units, class
names, the label rule, subgroup labels, what one row is called.

The only module of heartml.reports that reads the dataset spec's fields: every page, figure and
card takes a `DatasetView` and says what the spec says, so a new dataset needs no change here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from heartml.data.parse import positive
from heartml.spec import TARGET, DatasetSpec
from heartml.spec.expressions import Bins, Col


@dataclass(frozen=True)
class ReportColumn:
    name: str
    label: str  # plain words
    unit: str  # "" when the values are codes or counts
    kind: str  # the spec's kind: "number" | "binary" | "coded"
    codes: dict[int, str]  # code -> meaning, in the spec's order; empty for numbers
    missing_values: tuple[float, ...] = ()  # values data files write where nothing was measured

    @property
    def axis_label(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label

    @property
    def numeric(self) -> bool:
        return self.kind == "number"


@dataclass(frozen=True)
class DatasetView:
    """The spec as the reports speak of it. Build it with `DatasetView.from_spec(spec)`."""

    title: str
    description: str
    record: str  # one row, in words ("patient")
    columns: tuple[ReportColumn, ...]  # the model's input columns, in the spec's order
    label_column: str  # the source's label column ("num"), from which TARGET is derived
    label_values: tuple[int, ...]  # what the label column may hold
    positive_values: frozenset[int]  # the label values that make a row positive
    rule: str  # the target rule as the spec writes it ("num > 0")
    class_names: dict[int, str]  # target value -> words
    engineered: tuple[str, ...] = ()
    one_hot: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()  # columns the model imputes when unknown
    missing_blocks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    subgroup_names: dict[str, str] = field(default_factory=dict)  # variable -> words
    bin_ranges: dict[str, dict[str, str]] = field(default_factory=dict)  # feature -> label -> text
    citation: str = ""
    licence: str = ""

    @classmethod
    def from_spec(cls, spec: DatasetSpec) -> DatasetView:
        allowed = tuple(int(value) for value in spec.target.allowed)
        # The spec's own rule decides which label values are positive (heartml.data.parse).
        hits = positive(spec, np.asarray(allowed, dtype=np.float64))
        columns = tuple(
            ReportColumn(
                name,
                column.label,
                column.unit,
                column.kind,
                dict(column.codes or {}),
                tuple(column.missing_values),
            )
            for name, column in spec.columns.items()
        )
        return cls(
            title=spec.title,
            description=spec.description,
            record=spec.record_title,
            columns=columns,
            label_column=spec.target.column,
            label_values=allowed,
            positive_values=frozenset(v for v, hit in zip(allowed, hits, strict=True) if hit),
            rule=spec.target.positive,
            class_names={0: spec.target.negative_label, 1: spec.target.positive_label},
            engineered=spec.feature_names,
            one_hot=tuple(spec.one_hot),
            optional=spec.optional_names,
            missing_blocks={block: tuple(names) for block, names in spec.missing_blocks.items()},
            subgroup_names={name: _variable_words(spec, name) for name in spec.subgroups},
            bin_ranges=_bin_ranges(spec),
            citation=" ".join(spec.source.citation.split()),
            licence=spec.source.licence,
        )

    # -- words for rows, classes and the label ------------------------------------------------

    @property
    def records(self) -> str:
        return plural(self.record)

    @property
    def positive_label(self) -> str:
        return self.class_names[1]

    @property
    def negative_label(self) -> str:
        return self.class_names[0]

    @property
    def positive_rule(self) -> str:
        """When a row is positive: the spec's rule, or `col = v` for a single value."""
        return self._values_text(self.positive_values, self.rule.replace("==", "="))

    @property
    def negative_rule(self) -> str:
        negatives = frozenset(self.label_values) - self.positive_values
        return self._values_text(negatives, f"not {self.positive_rule}")

    def _values_text(self, values: frozenset[int], otherwise: str) -> str:
        return f"{self.label_column} = {next(iter(values))}" if len(values) == 1 else otherwise

    @property
    def graded_label(self) -> bool:
        """The label column holds more than the two classes (UCI's num 0-4)."""
        return len(self.label_values) > 2

    # -- columns --------------------------------------------------------------------------------

    @cached_property
    def by_name(self) -> Mapping[str, ReportColumn]:
        return {column.name: column for column in self.columns}

    @property
    def numeric_columns(self) -> tuple[ReportColumn, ...]:
        return tuple(column for column in self.columns if column.numeric)

    @property
    def coded_columns(self) -> tuple[ReportColumn, ...]:
        return tuple(column for column in self.columns if not column.numeric)

    def label(self, name: str) -> str:
        """Plain words for any column of the data, the label column and the target included."""
        column = self.by_name.get(name)
        if column is not None:
            return column.label
        if name == TARGET:
            return capitalised(self.positive_label)
        if name == self.label_column:
            return "Source label"
        return name

    def axis_label(self, name: str) -> str:
        """The label with the unit where the column has one (and the rule for the label)."""
        column = self.by_name.get(name)
        if column is not None:
            return column.axis_label
        if name == TARGET:
            return f"{self.label(name)} (1 when {self.positive_rule})"
        if name == self.label_column:
            return f"{self.label(name)} ({self.positive_rule}: {self.positive_label})"
        return name

    def feature_label(self, name: str) -> str:
        """A model feature in words with its code name; engineered features keep their own name."""
        column = self.by_name.get(name)
        return f"{column.label} ({name})" if column else name

    # -- subgroups ------------------------------------------------------------------------------

    @property
    def subgroups_text(self) -> str:
        """`sex and age group`: the subgroup variables, for a sentence."""
        return " and ".join(uncapitalised(words) for words in self.subgroup_names.values())

    def subgroup_label(self, key: str) -> str:
        """`sex=female` -> `Sex: female`; `age_group=young` -> `Age ≤ 40 (young)`; else the key."""
        variable, _, value = key.partition("=")
        column = self.by_name.get(variable)
        if column is not None and value in column.codes.values():
            return f"{column.label}: {value}"
        ranges = self.bin_ranges.get(variable, {})
        if value in ranges:
            return f"{ranges[value]} ({value.replace('_', ' ')})"
        return key

    def block_title(self, block: str) -> str:
        return capitalised(block.replace("_", " "))


def _variable_words(spec: DatasetSpec, name: str) -> str:
    if name in spec.columns:
        return spec.columns[name].label
    return capitalised(name.replace("_", " "))


def _bin_ranges(spec: DatasetSpec) -> dict[str, dict[str, str]]:
    """For each labelled bins(x, [edges]) feature: bin label -> `X ≤ 40`, `X 41–50`, `X > 60`.

    Bins are right-closed (an edge belongs to the bin below it). For a whole-number column (age in
    years) the bin above an edge starts at edge + 1; otherwise the range says `over`/`up to`."""
    ranges: dict[str, dict[str, str]] = {}
    for name, feature in spec.features.items():
        node = spec.parsed_features[name]
        if not feature.labels or not isinstance(node, Bins):
            continue
        column = spec.columns.get(node.operand.name) if isinstance(node.operand, Col) else None
        subject = column.label if column is not None else name
        edges = node.edges
        whole = (
            column is not None
            and column.kind == "number"
            and column.form_step == 1
            and all(float(edge).is_integer() for edge in edges)
        )
        texts = {}
        for i, label in enumerate(feature.labels):
            if i == 0:
                text = f"≤ {edges[0]:g}"
            elif i == len(edges):
                text = f"> {edges[-1]:g}"
            elif whole:
                text = f"{edges[i - 1] + 1:g}–{edges[i]:g}"
            else:
                text = f"over {edges[i - 1]:g}, up to {edges[i]:g}"
            texts[label] = f"{subject} {text}"
        ranges[name] = texts
    return ranges


def plural(noun: str) -> str:
    """`patient` -> `patients`, `tumour sample` -> `tumour samples`, `biopsy` -> `biopsies`."""
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u"):
        return noun[:-1] + "ies"
    return noun + "s"


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def uncapitalised(text: str) -> str:
    """`Sex` -> `sex`, but `ST depression` stays (an initialism keeps its capitals)."""
    return text[:1].lower() + text[1:] if text[1:2].islower() else text
