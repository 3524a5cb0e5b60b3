"""heartml.documents: every JSON document the stages pass on reads into its class and writes back
as the same bytes, older files included; a wrong field is one DocumentError naming the file and
the field.

The oracles are files the untyped code wrote (tests/unit/documents/data):
- small_run/: `heartml data` + `heartml train -a logistic_regression` with the tests' small
  config, run by the code before the documents were typed (commit 97ffda9 on branch spec);
- before_spec/: the files of a full `make run` by the code before the dataset spec (no
  `dataset`, `spec_hash`, `spec_sha256`, `masked_blocks`, class labels); its results keep the
  best of the four models only, to keep the file small.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from heartml.documents import (
    DataProvenance,
    Document,
    EvaluationResults,
    ModelMetadata,
    ModelSummary,
    QualityReport,
)
from heartml.errors import DocumentError, HeartmlError

pytestmark = pytest.mark.task2

DATA = Path(__file__).parent / "data"
RUNS = ("small_run", "before_spec")
FILES: dict[str, type[Document]] = {
    "evaluation_results.json": EvaluationResults,
    "metadata.json": ModelMetadata,
    "provenance.json": DataProvenance,
    "data_quality_report.json": QualityReport,
}
CASES = [(run, name) for run in RUNS for name in FILES]


def undeclared(model: BaseModel, where: str = "") -> list[str]:
    """Keys kept as they were read but declared by no field, anywhere in the document."""
    found = [f"{where}{key}" for key in model.model_extra or {}]
    for name in type(model).model_fields:
        value = getattr(model, name)
        values = value.values() if isinstance(value, dict) else [value]
        for item in values:
            if isinstance(item, BaseModel):
                found += undeclared(item, f"{where}{name}.")
    return found


@pytest.mark.parametrize(("run", "name"), CASES)
def test_a_written_file_reads_and_writes_back_byte_for_byte(
    run: str, name: str, tmp_path: Path
) -> None:
    original = DATA / run / name
    document = FILES[name].read(original)
    document.write(tmp_path / name)
    assert (tmp_path / name).read_bytes() == original.read_bytes()


@pytest.mark.parametrize(("run", "name"), CASES)
def test_every_key_of_a_written_file_is_a_declared_field(run: str, name: str) -> None:
    assert undeclared(FILES[name].read(DATA / run / name)) == []


@pytest.mark.parametrize(("run", "name"), CASES)
def test_write_then_read_gives_the_same_document(run: str, name: str, tmp_path: Path) -> None:
    document = FILES[name].read(DATA / run / name)
    document.write(tmp_path / "again.json")
    assert FILES[name].read(tmp_path / "again.json") == document


def test_a_file_from_before_the_spec_reads_with_the_newer_fields_absent(tmp_path: Path) -> None:
    results = EvaluationResults.read(DATA / "before_spec" / "evaluation_results.json")
    assert (results.dataset, results.spec_hash) == (None, None)
    summary = results.models[results.best_algorithm]
    assert summary.masked_blocks == {}
    assert "masked_blocks" not in summary.to_json_dict()  # not written back as an empty dict
    provenance = DataProvenance.read(DATA / "before_spec" / "provenance.json")
    assert (provenance.dataset, provenance.spec_sha256) == (None, None)
    quality = QualityReport.read(DATA / "before_spec" / "data_quality_report.json")
    assert quality.class_balance.positive_label is None


def test_the_typed_values_are_the_files_values() -> None:
    """Spot checks against the JSON itself: the same numbers, reached by attribute."""
    raw = json.loads((DATA / "small_run" / "evaluation_results.json").read_text())
    results = EvaluationResults.read(DATA / "small_run" / "evaluation_results.json")
    summary = results.models["logistic_regression"]
    expected = raw["models"]["logistic_regression"]
    assert summary.cv_roc_auc == expected["cv_metrics"]["roc_auc"]["mean"]
    assert summary.test_ci["brier"].ci_high == expected["test_ci"]["brier"]["ci_high"]
    assert summary.oof_curves.roc.fpr == expected["oof_curves"]["roc"]["fpr"]
    assert (
        summary.subgroups.test["sex=female"].n == expected["subgroups"]["test"]["sex=female"]["n"]
    )
    assert summary.tuning.candidates == expected["tuning"]["candidates"]
    assert results.evaluation_setting("cv_folds") == raw["config"]["evaluation"]["cv_folds"]
    quality = QualityReport.read(DATA / "small_run" / "data_quality_report.json")
    assert quality.label_distribution.column == "num"
    assert quality.label_distribution.counts == {"0": 164, "1": 55, "2": 36, "3": 35, "4": 13}


def test_a_model_without_a_grid_records_only_its_candidates() -> None:
    raw = json.loads((DATA / "small_run" / "evaluation_results.json").read_text())
    summary = raw["models"]["logistic_regression"]
    summary["tuning"] = {"candidates": 0}  # what train.py writes for a model without a grid
    document = ModelSummary.from_json_dict(summary, "a summary")
    assert document.to_json_dict()["tuning"] == {"candidates": 0}


# --- errors ----------------------------------------------------------------------------------


def broken_copy(tmp_path: Path, name: str, edit: Any) -> Path:
    """A copy of the small run's `name` with `edit(document)` applied to its JSON."""
    document = json.loads((DATA / "small_run" / name).read_text())
    edit(document)
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    ("name", "edit", "field", "problem"),
    [
        (
            "evaluation_results.json",
            lambda d: d.update(n_train="242"),
            "n_train",
            "input should be a valid integer (found '242')",
        ),
        (
            "evaluation_results.json",
            lambda d: d["models"]["logistic_regression"]["cv_metrics"]["roc_auc"].update(
                mean="high"
            ),
            "models.logistic_regression.cv_metrics.roc_auc.mean",
            "input should be a valid number (found 'high')",
        ),
        (
            "evaluation_results.json",
            lambda d: d["models"]["logistic_regression"].pop("test_curves"),
            "models.logistic_regression.test_curves",
            "field required",
        ),
        (
            "metadata.json",
            lambda d: d.update(seed=42.0),
            "seed",
            "input should be a valid integer (found 42.0)",
        ),
        (
            "provenance.json",
            lambda d: d["split"].update(seed=None),
            "split.seed",
            "input should be a valid integer (found None)",
        ),
        (
            "data_quality_report.json",
            lambda d: d["problems"].append({"row": 3, "line": 4, "column": "cp", "rule": "1-4"}),
            "problems.0.value",
            "field required",
        ),
    ],
    ids=[
        "count-as-text",
        "metric-as-text",
        "missing-curves",
        "seed-float",
        "split-seed",
        "problem",
    ],
)
def test_a_wrong_field_is_one_error_naming_the_file_and_the_field(
    tmp_path: Path, name: str, edit: Any, field: str, problem: str
) -> None:
    path = broken_copy(tmp_path, name, edit)
    with pytest.raises(DocumentError) as info:
        FILES[name].read(path)
    assert str(info.value) == f"{path}: {field}: {problem}"
    assert isinstance(info.value, HeartmlError)


def test_several_wrong_fields_are_counted(tmp_path: Path) -> None:
    path = broken_copy(tmp_path, "provenance.json", lambda d: d.update(rows_train="1", bytes=[]))
    with pytest.raises(DocumentError, match=r"provenance\.json: bytes: .*; 1 more problem\(s\)$"):
        DataProvenance.read(path)


def test_a_quality_report_without_its_label_distribution_says_so(tmp_path: Path) -> None:
    path = broken_copy(tmp_path, "data_quality_report.json", lambda d: d.pop("num_distribution"))
    with pytest.raises(DocumentError, match=r"label_distribution: field required$"):
        QualityReport.read(path)


def test_a_missing_file_and_a_file_that_is_not_json_are_document_errors(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match=r"evaluation_results\.json not found$"):
        EvaluationResults.read(tmp_path / "evaluation_results.json")
    (tmp_path / "metadata.json").write_text('{"algorithm": "svm",')
    with pytest.raises(DocumentError, match=r"metadata\.json: not valid JSON \(Expecting"):
        ModelMetadata.read(tmp_path / "metadata.json")
    (tmp_path / "provenance.json").write_text("[1, 2]")
    with pytest.raises(
        DocumentError, match=r"provenance\.json: expected a JSON object, found list"
    ):
        DataProvenance.read(tmp_path / "provenance.json")
