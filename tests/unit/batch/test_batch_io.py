"""Reading files to score: formats, header-less files in the spec's field order, the spec's
missing markers and nothing else, and one clear line for a file that cannot be read."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from heartml.batch import BatchError, contract
from heartml.batch.io import count_rows, detect_format, iter_chunks
from heartml.spec import DatasetSpec

pytestmark = pytest.mark.scale

UCI_ORDER = [
    "age",
    "sex",
    "cp",
    "trestbps",
    "chol",
    "fbs",
    "restecg",
    "thalach",
    "exang",
    "oldpeak",
    "slope",
    "ca",
    "thal",
]


def test_a_header_less_file_has_the_sources_field_order(spec: DatasetSpec, tmp_path: Path) -> None:
    rules = contract(spec)
    for fields, names in ((13, UCI_ORDER), (14, [*UCI_ORDER, "num"])):
        path = tmp_path / f"f{fields}.csv"
        path.write_text(",".join(["1"] * (fields - 1) + ["?"]) + "\n")
        fmt = detect_format(path, rules)
        assert (fmt.header, list(fmt.columns)) == (False, names)
    data = tmp_path / "x.data"
    data.write_text("63,1,1,145,233,1,2,150,0,2.3,3,0,6,0\n")
    assert detect_format(data, rules).columns[-1] == "num"
    with_header = tmp_path / "h.csv"
    with_header.write_text("id," + ",".join(reversed(UCI_ORDER)) + "\n")
    fmt = detect_format(with_header, rules)
    assert fmt.header and fmt.columns[0] == "id"


def test_only_the_specs_markers_mean_missing(spec: DatasetSpec, tmp_path: Path) -> None:
    """pandas' own NA list ('#N/A', '<NA>', '-nan', ...) is not a second policy: those texts
    are read as written, and judged by the spec's rules (not numbers)."""
    path = tmp_path / "p.csv"
    path.write_text(
        ",".join(["note", *UCI_ORDER])
        + "\n"
        + "\n".join(
            f"{note},63,1,1,145,233,1,2,150,0,2.3,{slope},0,6"
            for note, slope in [("#N/A", "#N/A"), ("<NA>", "<NA>"), ("-nan", "-nan"), ("NA", "NA")]
        )
        + "\n"
    )
    (chunk,) = iter_chunks(path, detect_format(path, contract(spec)), 100)
    assert chunk["slope"].tolist()[:3] == ["#N/A", "<NA>", "-nan"]
    assert chunk["note"].tolist()[:3] == ["#N/A", "<NA>", "-nan"]
    assert chunk["slope"].isna().tolist() == [False, False, False, True]  # "NA" is a marker


def test_counting_rows(spec: DatasetSpec, tmp_path: Path) -> None:
    rules = contract(spec)
    path = tmp_path / "a.csv"
    path.write_text(",".join(UCI_ORDER) + "\n" + "63,1,1,145,233,1,2,150,0,2.3,3,0,6\n" * 3)
    assert count_rows(path, detect_format(path, rules)) == 3
    path.write_text(
        "63,1,1,145,233,1,2,150,0,2.3,3,0,6\n" * 2 + "63,1,1,145,233,1,2,150,0,2.3,3,0,6"
    )
    assert count_rows(path, detect_format(path, rules)) == 3
    table = pa.table({name: [1.0] * 5 for name in UCI_ORDER})
    pq.write_table(table, tmp_path / "a.parquet")
    assert count_rows(tmp_path / "a.parquet", detect_format(tmp_path / "a.parquet", rules)) == 5


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        ("age,sex\n63,1\n", "a.csv", "no column 'cp', 'trestbps'"),
        ("63,1,1,145\n", "a.data", "line 1 has 4 fields; a file without a header must have 13"),
        ("", "a.csv", "no data rows"),
        ("x", "a.json", "unsupported input type .json"),
        ("age,age,sex\n", "a.csv", "'age' appears more than once"),
        ("probability,age\n0.3,63\n", "a.csv", "'probability' would collide with an output"),
        ("PAR1 not really", "a.parquet", "not a readable parquet file"),
    ],
)
def test_a_file_that_cannot_be_scored_is_named_in_one_line(
    spec: DatasetSpec, tmp_path: Path, content: str, name: str, message: str
) -> None:
    source = tmp_path / name
    source.write_text(content)
    with pytest.raises(BatchError, match=message) as caught:
        detect_format(source, contract(spec))
    assert "\n" not in str(caught.value)
