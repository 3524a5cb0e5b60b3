"""What the reports know about the dataset's columns: labels, units, kinds, codes, subgroups.

The only module of heartml.reports that reads the dataset's coding, so that the reports follow
a change of dataset description by a change here alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from heartml.coding import (
    AGE_GROUP_EDGES,
    AGE_GROUP_LABELS,
    COLUMNS_BY_NAME,
    RAW_COLUMNS,
    SOURCE_COLUMN,
    TARGET,
)

__all__ = [
    "CLASS_NAMES",
    "DATASET_TITLE",
    "SOURCE_COLUMN",
    "TARGET",
    "ReportColumn",
    "axis_label",
    "feature_label",
    "input_columns",
    "label",
    "subgroup_label",
]

DATASET_TITLE = "UCI Heart Disease, Cleveland subset"
CLASS_NAMES = {0: "no disease", 1: "heart disease"}  # target value -> words
_OUTPUT_LABELS = {SOURCE_COLUMN: "Diagnosis, UCI 0-4", TARGET: "Heart disease"}


@dataclass(frozen=True)
class ReportColumn:
    name: str
    label: str  # plain words
    unit: str  # "" when the values are codes or counts
    kind: str  # "numeric" | "binary" | "categorical" | "ordinal"
    codes: dict[int, str]  # code -> meaning, in the dataset's order; empty for numeric columns

    @property
    def axis_label(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label


def input_columns() -> tuple[ReportColumn, ...]:
    """The model's input columns in the data file's order."""
    return tuple(ReportColumn(c.name, c.label, c.unit, c.kind, dict(c.codes)) for c in RAW_COLUMNS)


def label(name: str) -> str:
    """Plain words for any column of the data, the diagnosis and the target included."""
    column = COLUMNS_BY_NAME.get(name)
    return column.label if column else _OUTPUT_LABELS.get(name, name)


def axis_label(name: str) -> str:
    """The label with the unit, where the column has one."""
    column = COLUMNS_BY_NAME.get(name)
    return f"{column.label} ({column.unit})" if column and column.unit else label(name)


def feature_label(name: str) -> str:
    """A model feature in words with its code name; engineered features keep their own name."""
    column = COLUMNS_BY_NAME.get(name)
    return f"{column.label} ({name})" if column else name


def _age_ranges() -> dict[str, str]:
    edges = AGE_GROUP_EDGES
    # Ages are whole years and the bins are right-closed (40 is young), hence lower + 1.
    return {
        group: (
            f"≤ {edges[0]:g}"
            if i == 0
            else f"> {edges[-1]:g}"
            if i == len(edges)
            else f"{edges[i - 1] + 1:g}–{edges[i]:g}"
        )
        for i, group in enumerate(AGE_GROUP_LABELS)
    }


def subgroup_label(key: str) -> str:
    """`sex=female` -> `Sex: female`; `age_group=young` -> `Age ≤ 40 (young)`; else the key."""
    variable, _, value = key.partition("=")
    if variable == "sex":
        return f"Sex: {value}"
    ranges = _age_ranges()
    if variable == "age_group" and value in ranges:
        return f"Age {ranges[value]} ({value.replace('_', ' ')})"
    return key
