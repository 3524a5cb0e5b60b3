"""The stratified split, the quality report, and the all-or-nothing write of data/processed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from pydantic_core import PydanticSerializationError

from heartml.catalog import Catalog
from heartml.data.acquire import RawData
from heartml.data.parse import Parsed, StructuralError
from heartml.data.prepare import PreparedData, read_split, write_processed
from heartml.data.prepare import prepare as prepare_with_spec
from heartml.data.schema import ValidationResult
from heartml.data.schema import validate as validate_parsed
from heartml.errors import DataError
from heartml.settings import Settings
from heartml.spec import ROW_ID, load_spec
from heartml.stages import run_data
from oracles import CLEVELAND_SHA256, HEART_SPEC_FILE

pytestmark = pytest.mark.task1

SPEC = load_spec(HEART_SPEC_FILE)


def validate(frame: pd.DataFrame) -> ValidationResult:
    return validate_parsed(Parsed(frame), SPEC)


def prepare(
    frame: pd.DataFrame, validation: ValidationResult, raw: RawData, test_size: float, seed: int
) -> PreparedData:
    return prepare_with_spec(frame, validation, raw, SPEC, test_size, seed)


def catalog_at(root: Path) -> Catalog:
    return Catalog(root, SPEC, HEART_SPEC_FILE, root / "packages")


@pytest.fixture
def raw(raw_bytes: bytes) -> RawData:
    return RawData(
        raw_bytes, "shipped copy", "data/raw/processed.cleveland.data", CLEVELAND_SHA256, "t0"
    )


@pytest.fixture
def prepared(cleveland: pd.DataFrame, raw: RawData) -> PreparedData:
    return prepare(cleveland, validate(cleveland), raw, test_size=0.2, seed=42)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def test_split_sizes_and_disjoint_row_ids(prepared: PreparedData) -> None:
    assert len(prepared.clean) == 303
    assert (len(prepared.train), len(prepared.test)) == (242, 61)
    train_ids, test_ids = set(prepared.train[ROW_ID]), set(prepared.test[ROW_ID])
    assert not train_ids & test_ids
    assert train_ids | test_ids == set(range(1, 304))


def test_row_id_is_the_raw_file_line(raw_bytes: bytes, prepared: PreparedData) -> None:
    lines = raw_bytes.decode().splitlines()
    for _, row in prepared.train.head(5).iterrows():
        fields = lines[int(row[ROW_ID]) - 1].split(",")
        assert float(fields[0]) == row["age"]
        assert float(fields[4]) == row["chol"]


def test_split_is_stratified(prepared: PreparedData) -> None:
    overall = prepared.clean["target"].mean()
    assert abs(prepared.train["target"].mean() - overall) < 0.02
    assert abs(prepared.test["target"].mean() - overall) < 0.02


def test_split_is_reproducible_and_depends_on_the_seed(
    cleveland: pd.DataFrame, raw: RawData
) -> None:
    validation = validate(cleveland)
    first = prepare(cleveland, validation, raw, 0.2, seed=42)
    again = prepare(cleveland, validation, raw, 0.2, seed=42)
    other = prepare(cleveland, validation, raw, 0.2, seed=7)
    pd.testing.assert_frame_equal(first.train, again.train)
    pd.testing.assert_frame_equal(first.test, again.test)
    assert set(first.test[ROW_ID]) != set(other.test[ROW_ID])


def test_rejected_rows_are_kept_out_of_both_splits(cleveland: pd.DataFrame, raw: RawData) -> None:
    cleveland.loc[[10, 20], "cp"] = 9
    data = prepare(cleveland, validate(cleveland), raw, 0.2, seed=42)
    assert len(data.clean) == 301
    assert not {11, 21} & (set(data.train[ROW_ID]) | set(data.test[ROW_ID]))
    assert data.rejected["line"].tolist() == [11, 21]
    assert data.quality.rows_rejected == 2
    assert data.quality.rows_kept == 301
    assert data.quality.out_of_range_per_column == {"cp": 2}


def test_quality_report_is_plain_json_with_the_right_counts(prepared: PreparedData) -> None:
    quality = prepared.quality.to_json_dict()  # what data_quality_report.json holds
    assert json.loads(json.dumps(quality)) == quality  # no default= needed, round-trips
    assert quality["rows"] == 303
    assert type(quality["rows"]) is int
    assert quality["missing_per_column"]["ca"] == 4
    assert quality["missing_per_column"]["thal"] == 2
    assert sum(quality["missing_per_column"].values()) == 6
    assert all(type(v) is int for v in quality["missing_per_column"].values())
    assert quality["rows_with_missing"] == 6
    balance = quality["class_balance"]
    assert (balance["no_disease"], balance["disease"]) == (164, 139)
    assert type(balance["disease"]) is int
    assert balance["prevalence"] == pytest.approx(139 / 303)
    assert quality["num_distribution"] == {"0": 164, "1": 55, "2": 36, "3": 35, "4": 13}
    assert quality["duplicates"] == 0
    assert quality["problems"] == []
    assert quality["summary_statistics"]["age"]["count"] == 303.0
    assert quality["summary_statistics"]["ca"]["count"] == 299.0
    assert quality["source"]["sha256"] == CLEVELAND_SHA256


def test_write_processed_writes_every_output(prepared: PreparedData, tmp_path: Path) -> None:
    catalog = catalog_at(tmp_path)
    out = catalog.processed_dir
    write_processed(prepared, catalog)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "heart.parquet",
            "heart.csv",
            "train.parquet",
            "train.csv",
            "test.parquet",
            "test.csv",
            "rejected_rows.csv",
            "data_quality_report.json",
            "provenance.json",
        ]
    )
    train, test = read_split(catalog)
    pd.testing.assert_frame_equal(
        train.reset_index(drop=True), prepared.train.reset_index(drop=True)
    )
    assert len(test) == 61
    written = json.loads((out / "data_quality_report.json").read_text())
    assert written == prepared.quality.to_json_dict()
    assert [p.name for p in out.parent.iterdir()] == ["processed"]


def test_failed_write_leaves_the_previous_outputs(
    prepared: PreparedData, cleveland: pd.DataFrame, raw: RawData, tmp_path: Path
) -> None:
    catalog = catalog_at(tmp_path)
    out = catalog.processed_dir
    write_processed(prepared, catalog)
    before = snapshot(out)
    other = prepare(cleveland, validate(cleveland), raw, 0.3, seed=1)
    # Fails half way: the frames are written, then the quality report cannot be serialised.
    unserialisable = other.quality.model_copy(update={"problems": [object()]})
    broken = PreparedData(
        other.clean, other.train, other.test, other.rejected, unserialisable, other.provenance
    )
    with pytest.raises(PydanticSerializationError, match="unknown type"):
        write_processed(broken, catalog)
    assert snapshot(out) == before
    assert [p.name for p in out.parent.iterdir()] == ["processed"]


def test_read_split_without_data_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"has no train\.parquet, test\.parquet") as info:
        read_split(catalog_at(tmp_path))
    assert info.value.hint is not None and "heartml data" in info.value.hint


def corrupt(settings: Settings, extra_line: bytes) -> str:
    """Append a bad line to the project's raw file; return the new file's sha256."""
    path = settings.catalog.raw_path
    path.write_bytes(path.read_bytes() + extra_line)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_text_field_rejects_its_row_and_the_stage_goes_on(
    project: Settings, small_config
) -> None:
    digest = corrupt(project, b"63.0,1.0,1.0,145.0,abc,1.0,2.0,150.0,0.0,2.3,3.0,0.0,6.0,0\n")
    result = run_data(project.model_copy(update={"data_sha256": digest}), small_config)
    assert (result.quality_report.rows, result.quality_report.rows_rejected) == (304, 1)
    rejected = pd.read_csv(project.processed_dir / "rejected_rows.csv")
    assert rejected["line"].tolist() == [304]
    assert rejected["reasons"].tolist() == [
        "chol: 'abc' is not a number; expected a number from 80 to 700 mg/dl"
    ]


@pytest.mark.parametrize(
    ("extra_line", "message"),
    [
        (b"63.0,1.0,1.0,145.0,233.0\n", "line 304: 5 fields"),
        (b"63.0,1.0,1.0,145.0,233,1.0,2.0,150.0,0.0,2.3,3.0,0.0,6.0,0,7\n", "line 304: 15 fields"),
    ],
    ids=["five-fields", "fifteen-fields"],
)
def test_data_stage_on_a_broken_file_keeps_the_previous_outputs(
    project: Settings, small_config, extra_line: bytes, message: str
) -> None:
    first = run_data(project, small_config)
    assert first.quality_report.rows == 303
    before = snapshot(project.processed_dir)
    assert "train.parquet" in before

    digest = corrupt(project, extra_line)
    broken = project.model_copy(update={"data_sha256": digest})
    with pytest.raises(StructuralError, match=message):
        run_data(broken, small_config)

    assert snapshot(project.processed_dir) == before
    assert not list(project.processed_dir.parent.glob(".staging-*"))
    assert not list(project.processed_dir.parent.glob(".previous-*"))


def test_data_stage_writes_provenance_and_reports(project: Settings, small_config) -> None:
    result = run_data(project, small_config)
    provenance = json.loads((project.processed_dir / "provenance.json").read_text())
    assert provenance["source"] == "shipped copy"
    assert provenance["sha256"] == CLEVELAND_SHA256
    assert provenance["notes"] == ["offline mode: download skipped"]
    assert (provenance["rows_train"], provenance["rows_test"]) == (242, 61)
    assert provenance["split"] == {"test_size": 0.2, "seed": 42, "stratified_on": "target"}
    assert provenance["dataset"] == "uci_heart"
    assert result.eda_report.is_file()
    assert result.eda_report.is_relative_to(project.resolved_root)


def test_cli_on_a_broken_file_exits_2_with_one_line(
    project: Settings, heartml_cli, make_cli_env
) -> None:
    digest = corrupt(project, b"63.0,1.0,1.0,145.0,233.0\n")
    result = heartml_cli(
        "data",
        cwd=project.root,
        env=make_cli_env(HEARTML_OFFLINE="1", HEARTML_DATA_SHA256=digest, COLUMNS="60"),
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: line 304: 5 fields, expected 14")
    assert not project.processed_dir.exists()
