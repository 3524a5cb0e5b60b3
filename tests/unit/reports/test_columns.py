"""What the reports say about columns, and that only reports/columns.py reads the dataset coding."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from heartml.reports import columns

pytestmark = pytest.mark.task1

REPORTS = Path(columns.__file__).parent


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("sex=female", "Sex: female"),
        ("sex=male", "Sex: male"),
        # Right-closed bins at 40, 50, 60 in whole years (UCI ages are integers).
        ("age_group=young", "Age ≤ 40 (young)"),
        ("age_group=middle_aged", "Age 41–50 (middle aged)"),
        ("age_group=senior", "Age 51–60 (senior)"),
        ("age_group=elderly", "Age > 60 (elderly)"),
        ("age_group=unknown", "age_group=unknown"),
        ("cp=4", "cp=4"),
    ],
)
def test_subgroup_labels(key: str, expected: str) -> None:
    assert columns.subgroup_label(key) == expected


def test_labels_units_and_feature_names() -> None:
    assert columns.label("chol") == "Serum cholesterol"
    assert columns.axis_label("chol") == "Serum cholesterol (mg/dl)"
    assert columns.axis_label("cp") == "Chest pain type"  # codes have no unit
    assert columns.label(columns.TARGET) == "Heart disease"
    assert columns.label("not_a_column") == "not_a_column"
    assert columns.feature_label("thalach") == "Maximum heart rate (thalach)"
    assert columns.feature_label("risk_score") == "risk_score"  # engineered: its own name


def test_input_columns_carry_kinds_and_codes() -> None:
    by_name = {c.name: c for c in columns.input_columns()}
    assert len(by_name) == 13
    assert by_name["thal"].codes == {3: "normal", 6: "fixed defect", 7: "reversible defect"}
    assert by_name["age"].kind == "numeric" and by_name["age"].axis_label == "Age (years)"
    assert not by_name["age"].codes


def test_only_the_columns_module_reads_the_dataset_coding() -> None:
    readers = []
    for path in sorted(REPORTS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            if any(
                name == "heartml.coding" or name.startswith("heartml.coding.") for name in names
            ):
                readers.append(path.name)
    assert readers == ["columns.py"]
