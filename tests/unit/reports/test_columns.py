"""What the reports say about a dataset, built from its spec; and that no report module reads a
dataset's coding any other way."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from heartml.reports import columns
from heartml.reports.columns import DatasetView, plural
from heartml.spec import TARGET, DatasetSpec, load_spec

pytestmark = pytest.mark.task1

ROOT = Path(__file__).resolve().parents[3]
REPORTS = Path(columns.__file__).parent
TEMPLATES = REPORTS.parent / "templates"
BREAST_SPEC_FILE = ROOT / "configs" / "datasets" / "breast_cancer.yaml"


@pytest.fixture(scope="module")
def heart(heart_spec: DatasetSpec) -> DatasetView:
    return DatasetView.from_spec(heart_spec)


@pytest.fixture(scope="module")
def breast() -> DatasetView:
    return DatasetView.from_spec(load_spec(BREAST_SPEC_FILE))


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("sex=female", "Sex: female"),
        ("sex=male", "Sex: male"),
        # Right-closed bins at 40, 50, 60 in whole years (the spec's age has step 1).
        ("age_group=young", "Age ≤ 40 (young)"),
        ("age_group=middle_aged", "Age 41–50 (middle aged)"),
        ("age_group=senior", "Age 51–60 (senior)"),
        ("age_group=elderly", "Age > 60 (elderly)"),
        ("age_group=unknown", "age_group=unknown"),
        ("sex=other", "sex=other"),
        ("cp=4", "cp=4"),
    ],
)
def test_heart_subgroup_labels(heart: DatasetView, key: str, expected: str) -> None:
    assert heart.subgroup_label(key) == expected


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        # bins(mean_radius, [12, 15, 20]) over a continuous column: no "+ 1" on the lower edge.
        ("size_group=small", "Mean radius ≤ 12 (small)"),
        ("size_group=medium", "Mean radius over 12, up to 15 (medium)"),
        ("size_group=large", "Mean radius over 15, up to 20 (large)"),
        ("size_group=very_large", "Mean radius > 20 (very large)"),
    ],
)
def test_breast_cancer_subgroup_labels(breast: DatasetView, key: str, expected: str) -> None:
    assert breast.subgroup_label(key) == expected


def test_heart_labels_units_classes_and_rule(heart: DatasetView) -> None:
    assert heart.title == "UCI Heart Disease (Cleveland)"
    assert heart.label("chol") == "Serum cholesterol"
    assert heart.axis_label("chol") == "Serum cholesterol (mg/dl)"
    assert heart.axis_label("cp") == "Chest pain type"  # codes have no unit
    assert heart.label(TARGET) == "Heart disease"
    assert heart.axis_label(TARGET) == "Heart disease (1 when num > 0)"
    assert heart.label("not_a_column") == "not_a_column"
    assert heart.feature_label("thalach") == "Maximum heart rate (thalach)"
    assert heart.feature_label("risk_score") == "risk_score"  # engineered: its own name
    assert heart.class_names == {0: "no heart disease", 1: "heart disease"}
    assert (heart.record, heart.records) == ("patient", "patients")
    assert heart.positive_values == {1, 2, 3, 4}
    assert (heart.positive_rule, heart.negative_rule) == ("num > 0", "num = 0")
    assert heart.graded_label
    assert heart.subgroups_text == "sex and age group"
    assert heart.label_column == "num"


def test_breast_cancer_labels_classes_and_rule(breast: DatasetView) -> None:
    # The spec's rule is diagnosis == 0: the positive class is the label value 0.
    assert breast.class_names == {0: "benign", 1: "malignant"}
    assert breast.positive_values == {0}
    assert (breast.positive_rule, breast.negative_rule) == ("diagnosis = 0", "diagnosis = 1")
    assert not breast.graded_label
    assert breast.records == "tumour samples"
    assert breast.label(TARGET) == "Malignant"
    assert breast.axis_label("worst_area") == "Worst area"  # no unit in the spec
    assert len(breast.numeric_columns) == 30 and breast.coded_columns == ()
    assert breast.subgroups_text == "size group"
    assert list(breast.missing_blocks) == ["standard_errors", "worst_values"]


def test_input_columns_carry_kinds_and_codes(heart: DatasetView) -> None:
    by_name = heart.by_name
    assert len(by_name) == 13
    assert by_name["thal"].codes == {3: "normal", 6: "fixed defect", 7: "reversible defect"}
    assert by_name["age"].numeric and by_name["age"].axis_label == "Age (years)"
    assert not by_name["age"].codes
    assert by_name["chol"].missing_values == (0.0,)


@pytest.mark.parametrize(
    ("noun", "expected"),
    [
        ("patient", "patients"),
        ("tumour sample", "tumour samples"),
        ("biopsy", "biopsies"),
        ("day", "days"),
        ("class", "classes"),
    ],
)
def test_plural(noun: str, expected: str) -> None:
    assert plural(noun) == expected


def test_no_report_module_reads_the_old_coding_module() -> None:
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
            if any(n == "heartml.coding" or n.startswith("heartml.coding.") for n in names):
                readers.append(path.name)
    assert readers == []


def test_no_heart_column_or_coding_is_spelt_in_the_reports_or_templates() -> None:
    sources = [*REPORTS.glob("*.py"), *TEMPLATES.rglob("*.*")]
    offenders = [
        path.name
        for path in sources
        if re.search(r'coding|"thal"|"age"', path.read_text(encoding="utf-8"))
    ]
    assert sources and offenders == []
