"""The data and train stages, now writing through heartml.documents, write the same JSON as the
untyped code did: same keys in the same order, same values (tests/unit/documents/data/small_run,
written by that code for the same run; see test_documents.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from heartml.config import PipelineConfig
from heartml.provenance import library_versions
from heartml.settings import Settings
from heartml.stages import run_data, run_train

pytestmark = [pytest.mark.task2, pytest.mark.slow]

OLD = Path(__file__).parent / "data" / "small_run"
# Differ from run to run, whatever the code: when, where, how long, from which checkout.
VOLATILE = frozenset({"created_at", "acquired_at", "location", "seconds", "git_commit"})
# With the same libraries a float may still differ in its last bits from one CPU to another
# (BLAS kernels): numbers are compared to 12 significant digits, and the fitted model's pickle
# hash (those bits, serialised) by its form only.
SIGNIFICANT = 12
MACHINE_BITS = frozenset({"model_sha256"})


def comparable(value: Any, numbers: bool) -> Any:
    """The document as nested (key, value) lists in file order, volatile values masked; with
    numbers=False every number is replaced by its type."""
    if isinstance(value, dict):
        return [
            (
                key,
                "*" if key in VOLATILE else comparable(inner, numbers and key not in MACHINE_BITS),
            )
            for key, inner in value.items()
        ]
    if isinstance(value, list):
        return [comparable(inner, numbers) for inner in value]
    if not numbers and isinstance(value, int | float) and not isinstance(value, bool):
        return type(value).__name__
    if not numbers and isinstance(value, str) and len(value) == 64:
        return "sha256" if all(c in "0123456789abcdef" for c in value) else value
    if isinstance(value, float):
        return float(f"{value:.{SIGNIFICANT}g}")
    return value


@pytest.fixture(scope="module")
def written(
    tmp_path_factory: pytest.TempPathFactory,
    project_factory: Callable[[Path], Settings],
    small_config: PipelineConfig,
) -> dict[str, Path]:
    """The four documents of `heartml data` + `heartml train -a logistic_regression`."""
    settings = project_factory(tmp_path_factory.mktemp("documents") / "project")
    run_data(settings, small_config)
    run_train(settings, small_config, ("logistic_regression",))
    catalog = settings.catalog
    return {
        "evaluation_results.json": catalog.results_file,
        "metadata.json": catalog.metadata_file("logistic_regression"),
        "provenance.json": catalog.provenance_file,
        "data_quality_report.json": catalog.quality_file,
    }


@pytest.mark.parametrize(
    "name",
    ["evaluation_results.json", "metadata.json", "provenance.json", "data_quality_report.json"],
)
def test_the_stages_write_what_the_untyped_code_wrote(written: dict[str, Path], name: str) -> None:
    old = json.loads((OLD / name).read_text())
    new = json.loads(written[name].read_text())
    # The numbers of a training run are only the same with the same libraries; the keys, their
    # order and the types are the same whatever the versions.
    versions = json.loads((OLD / "evaluation_results.json").read_text())["library_versions"]
    same_libraries = versions == library_versions()
    assert comparable(new, same_libraries) == comparable(old, same_libraries)
    if name in ("provenance.json", "data_quality_report.json"):  # no training numbers in these
        assert comparable(new, True) == comparable(old, True)


def test_the_same_libraries_as_the_old_run(written: dict[str, Path]) -> None:
    """Says so when the value comparison above fell back to keys and types (a library upgrade):
    regenerate small_run/ with the code of commit 97ffda9 to compare numbers again."""
    old = json.loads((OLD / "evaluation_results.json").read_text())["library_versions"]
    assert old == library_versions()
