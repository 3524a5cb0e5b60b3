"""Batch scoring: every row scored or rejected with reasons (never dropped), the API's rules, the
package's ONNX model after its checksums, CSV / parquet / raw UCI input, and the Dask engine
giving exactly the local engine's output."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from heartml.batch import (
    MAY_BE_MISSING,
    BatchError,
    ScoringModel,
    default_rejects_path,
    load_package,
    risk_levels,
    score_file,
    validate_frame,
)
from heartml.coding import COLUMNS_BY_NAME, RAW_FEATURES, example_record
from heartml.config import ModelConfig
from heartml.features import build_pipeline
from heartml.models import make_estimator
from heartml.onnx_export import pipeline_to_onnx
from heartml.onnx_runtime import OnnxModel
from heartml.packaging import ONNX_FILE, PackagingError, package_dir_name, write_manifest
from heartml.serving.schemas import NULLABLE, risk_level

pytestmark = pytest.mark.scale

THRESHOLD = 0.4  # not 0.5: the prediction must follow the package's threshold
MODEL_VERSION = "heart_disease_logistic_regression/7"


# --------------------------------------------------------------------------------------------
# A real package (ONNX model + manifest) and a mixed input


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory: pytest.TempPathFactory, _cleveland: pd.DataFrame) -> Path:
    estimator = make_estimator("logistic_regression", ModelConfig(params={"max_iter": 2000}), 0)
    pipeline = build_pipeline(estimator).fit(
        _cleveland.loc[:, list(RAW_FEATURES)], _cleveland["target"]
    )
    directory = tmp_path_factory.mktemp("packages") / package_dir_name("logistic_regression", "7")
    directory.mkdir()
    (directory / ONNX_FILE).write_bytes(pipeline_to_onnx(pipeline).SerializeToString())
    write_manifest(
        directory,
        {
            "model_name": "heart_disease_logistic_regression",
            "algorithm": "logistic_regression",
            "version": "7",
            "threshold": THRESHOLD,
            "serving_file": ONNX_FILE,
        },
    )
    return directory


@pytest.fixture(scope="module")
def model(package_dir: Path) -> ScoringModel:
    return load_package(package_dir)[0]


def _record(**changes: Any) -> dict[str, Any]:
    return {**example_record(), **changes}


# (changes to the example patient, expected outcome): "ok", "imputed:<fields>" or a reason part
CASES: list[tuple[dict[str, Any], str]] = [
    ({}, "ok"),
    ({"ca": None}, "imputed:ca"),
    ({"thal": "?"}, "imputed:thal"),
    ({"chol": 0}, "imputed:chol"),
    ({"trestbps": 0, "ca": None}, "imputed:trestbps,ca"),
    ({"age": None}, "age: missing, required"),
    ({"oldpeak": "?"}, "oldpeak: missing, required"),
    ({"age": "sixty"}, "age='sixty': not a number"),
    ({"thalach": "1_000"}, "thalach='1_000': not a number"),
    ({"cp": 5}, "cp=5: not allowed, expected one of 1 (typical angina)"),
    ({"cp": 1.5}, "cp=1.5: not allowed"),
    ({"sex": 2}, "sex=2: not allowed, expected one of 0 (female), 1 (male)"),
    ({"thal": 4}, "thal=4: not allowed, expected one of 3 (normal)"),
    ({"ca": 4}, "ca=4: not allowed"),
    ({"age": 150}, "age=150: not allowed, expected a number from 18 to 100 years"),
    ({"chol": 5}, "chol=5: not allowed, expected a number from 80 to 700 mg/dl"),
    ({"oldpeak": "inf"}, "oldpeak=inf: not allowed"),
    ({"trestbps": -120}, "trestbps=-120: not allowed"),
]


@pytest.fixture
def mixed_csv(tmp_path: Path) -> Path:
    """Every CASE, with a pass-through id column, written as CSV with a header."""
    rows = [{"patient": f"p{i}", **_record(**changes)} for i, (changes, _) in enumerate(CASES)]
    frame = pd.DataFrame(rows)
    path = tmp_path / "patients.csv"
    frame.to_csv(path, index=False)
    return path


def _expected_matrix(records: list[dict[str, Any]]) -> np.ndarray:
    """What the model must see for valid records: numbers, missing as NaN, 0 chol/bp as NaN."""
    matrix = np.array(
        [
            [math.nan if r[name] in (None, "?") else float(r[name]) for name in RAW_FEATURES]
            for r in records
        ]
    )
    for name in ("chol", "trestbps"):
        column = matrix[:, RAW_FEATURES.index(name)]
        column[column == 0] = math.nan
    return matrix


# --------------------------------------------------------------------------------------------
# Validation rules


def test_validation_follows_the_api_rules_row_by_row(
    mixed_csv: Path,
) -> None:
    path = mixed_csv
    check = validate_frame(pd.read_csv(path, na_values=["?"], dtype={"patient": object}))
    reasons = iter(check.reasons)
    for i, (changes, expected) in enumerate(CASES):
        if expected == "ok" or expected.startswith("imputed:"):
            assert check.valid[i], (changes, expected)
            fields = expected.removeprefix("imputed:") if expected != "ok" else ""
            flagged = [n for b, n in enumerate(MAY_BE_MISSING) if check.missing_code[i] >> b & 1]
            assert ",".join(flagged) == fields, changes
        else:
            assert not check.valid[i], changes
            assert expected in next(reasons), changes


def test_only_ca_thal_chol_trestbps_may_be_missing() -> None:
    assert set(MAY_BE_MISSING) == {"ca", "thal", "chol", "trestbps"}
    for name in RAW_FEATURES:
        check = validate_frame(pd.DataFrame([_record(**{name: None})]))
        assert bool(check.valid[0]) == (name in MAY_BE_MISSING), name
        if name not in MAY_BE_MISSING:
            assert check.reasons[0] == (
                f"{name}: missing, required: {COLUMNS_BY_NAME[name].allowed}"
            )


def test_the_rules_are_the_apis() -> None:
    """Missing-allowed fields and risk bands: one definition for the API and the batch scorer."""
    assert set(MAY_BE_MISSING) == NULLABLE
    grid = np.linspace(0.0, 1.0, 1001)
    assert risk_levels(grid).to_pylist() == [risk_level(float(p)) for p in grid]


def test_every_broken_field_of_a_row_is_named() -> None:
    check = validate_frame(pd.DataFrame([_record(age=7, cp=9, thal="x")]))
    assert not check.valid[0]
    assert [part.split(":")[0] for part in check.reasons[0].split("; ")] == [
        "age=7",
        "cp=9",
        "thal='x'",
    ]


# --------------------------------------------------------------------------------------------
# Scoring a file


def _read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_each_row_is_scored_or_rejected_with_its_reasons(
    mixed_csv: Path, model: ScoringModel, package_dir: Path, suffix: str
) -> None:
    path = mixed_csv
    output = path.with_name("scores" + suffix)
    summary = score_file(path, output, model, chunk_size=4)

    scored, rejects = _read(output), pd.read_csv(default_rejects_path(output))
    good = [i for i, (_, e) in enumerate(CASES) if e == "ok" or e.startswith("imputed:")]
    bad = [i for i in range(len(CASES)) if i not in good]
    # Nothing dropped: every input row is in exactly one of the two files, by its row number.
    assert scored["row"].tolist() == [i + 1 for i in good]
    assert rejects["row"].tolist() == [i + 1 for i in bad]
    assert (summary.rows, summary.scored, summary.rejected) == (len(CASES), len(good), len(bad))
    for row, i in zip(rejects.itertuples(), bad, strict=True):
        assert CASES[i][1] in row.reasons
        assert row.patient == f"p{i}"  # the input fields come along, to fix and resubmit

    assert list(scored.columns) == [
        "row",
        "patient",
        *RAW_FEATURES,
        "imputed",
        "probability",
        "prediction",
        "risk_level",
        "model_version",
    ]
    records = [_record(**CASES[i][0]) for i in good]
    expected = OnnxModel.from_path(package_dir / ONNX_FILE).predict_proba(_expected_matrix(records))
    np.testing.assert_array_equal(scored["probability"].to_numpy(), expected)
    assert scored["prediction"].tolist() == [int(p >= THRESHOLD) for p in expected]
    bands = [risk_level(p) for p in expected]
    assert scored["risk_level"].astype(str).tolist() == bands
    assert set(scored["model_version"].astype(str)) == {MODEL_VERSION}
    imputed = scored["imputed"].astype(object).where(scored["imputed"].notna(), "")
    assert imputed.tolist() == [
        CASES[i][1].removeprefix("imputed:") if CASES[i][1] != "ok" else "" for i in good
    ]
    # Inputs as written: 0 cholesterol stays 0 in the output (flagged, not rewritten).
    chol_zero = next(k for k, i in enumerate(good) if CASES[i][0] == {"chol": 0})
    assert scored["chol"].iloc[chol_zero] == 0


def test_results_do_not_depend_on_the_chunk_size(
    tmp_path: Path, cleveland: pd.DataFrame, model: ScoringModel
) -> None:
    source = tmp_path / "heart.parquet"
    cleveland.loc[:, list(RAW_FEATURES)].to_parquet(source, index=False)
    outputs = []
    for chunk_size in (1, 7, 1000):
        output = tmp_path / f"scores-{chunk_size}.parquet"
        summary = score_file(source, output, model, chunk_size=chunk_size)
        assert summary.partitions == math.ceil(len(cleveland) / chunk_size)
        outputs.append(pd.read_parquet(output))
    for other in outputs[1:]:
        pd.testing.assert_frame_equal(outputs[0], other)


def test_the_raw_uci_file_scores_as_is(
    raw_bytes: bytes, tmp_path: Path, model: ScoringModel, cleveland: pd.DataFrame
) -> None:
    """No header, '?' for missing, the 14th column (num) carried along, not scored."""
    source = tmp_path / "processed.cleveland.data"
    source.write_bytes(raw_bytes)
    summary = score_file(source, tmp_path / "scores.parquet", model)
    scored = pd.read_parquet(tmp_path / "scores.parquet")
    assert (summary.rows, summary.scored, summary.rejected) == (303, 303, 0)
    assert summary.imputed == int(cleveland[["ca", "thal"]].isna().any(axis=1).sum()) == 6
    assert scored["num"].astype(int).tolist() == cleveland["num"].tolist()
    expected = OnnxModel.from_bytes(model.onnx).predict_proba(cleveland)
    np.testing.assert_array_equal(scored["probability"].to_numpy(), expected)
    # The package's threshold decides, not 0.5 (some patients fall in between).
    assert ((expected >= THRESHOLD) & (expected < 0.5)).any()
    assert scored["prediction"].tolist() == (expected >= THRESHOLD).astype(int).tolist()

    # The same lines in a .csv without a header are recognised as the UCI format too.
    headerless = tmp_path / "uci.csv"
    headerless.write_bytes(raw_bytes)
    score_file(headerless, tmp_path / "again.parquet", model)
    pd.testing.assert_frame_equal(scored, pd.read_parquet(tmp_path / "again.parquet"))


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        ("age,sex\n63,1\n", "a.csv", "no column 'cp'"),
        ("63,1,1,145\n", "a.data", "line 1 has 4 fields"),
        ("", "a.csv", "no data rows"),
        ("x", "a.json", "unsupported input type .json"),
        ("age,age,sex\n", "a.csv", "'age' appears more than once"),
        ("probability,age\n0.3,63\n", "a.csv", "'probability' would collide with an output"),
    ],
)
def test_a_file_that_is_not_scorable_stops_with_one_clear_line(
    tmp_path: Path, model: ScoringModel, content: str, name: str, message: str
) -> None:
    source = tmp_path / name
    source.write_text(content)
    with pytest.raises(BatchError, match=message):
        score_file(source, tmp_path / "out.csv", model)
    assert not (tmp_path / "out.csv").exists()


def test_a_spreadsheet_export_with_bom_and_quoted_header_is_read(
    tmp_path: Path, model: ScoringModel
) -> None:
    frame = pd.DataFrame([example_record()])
    text = frame.to_csv(index=False, quoting=1)  # "age","sex",... as spreadsheets write it
    source = tmp_path / "export.csv"
    source.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    summary = score_file(source, tmp_path / "scores.csv", model)
    assert (summary.rows, summary.scored) == (1, 1)
    expected = OnnxModel.from_bytes(model.onnx).predict_proba(frame)
    assert pd.read_csv(tmp_path / "scores.csv")["probability"].tolist() == expected.tolist()


def test_a_structural_failure_mid_file_leaves_no_partial_output(
    tmp_path: Path, model: ScoringModel, raw_bytes: bytes
) -> None:
    lines = raw_bytes.decode().splitlines()
    lines[250] += ",1,2"  # a line with too many fields, past the first chunk
    source = tmp_path / "broken.data"
    source.write_text("\n".join(lines) + "\n")
    with pytest.raises(BatchError, match="Expected 14 fields in line 251"):
        score_file(source, tmp_path / "out.parquet", model, chunk_size=100)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.data"]


def test_a_package_with_a_changed_file_is_refused(package_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / package_dir.name
    shutil.copytree(package_dir, copy)
    onnx_bytes = bytearray((copy / ONNX_FILE).read_bytes())
    onnx_bytes[-1] ^= 1
    (copy / ONNX_FILE).write_bytes(bytes(onnx_bytes))
    with pytest.raises(PackagingError, match=r"model\.onnx: sha256"):
        load_package(copy)


# --------------------------------------------------------------------------------------------
# The command line


def test_cli_scores_with_the_newest_package(
    tmp_path: Path,
    package_dir: Path,
    mixed_csv: Path,
    heartml_cli: Callable[..., Any],
    make_cli_env: Callable[..., dict[str, str]],
) -> None:
    import shutil

    root = tmp_path / "project"
    shutil.copytree(package_dir, root / "packages" / package_dir.name)
    source = mixed_csv
    result = heartml_cli(
        "score", "--input", str(source), "--output", "out/scores.csv", cwd=root, env=make_cli_env()
    )
    assert result.returncode == 0, result.stderr
    good = sum(1 for _, e in CASES if e == "ok" or e.startswith("imputed:"))
    assert f"{len(CASES)} rows: {good} scored" in result.stdout
    assert len(pd.read_csv(root / "out" / "scores.csv")) == good
    assert (root / "out" / "scores.csv.rejects.csv").is_file()

    missing = heartml_cli(
        "score", "--input", "nope.csv", "--output", "x.csv", cwd=root, env=make_cli_env()
    )
    assert missing.returncode == 2
    assert missing.stderr.strip() == "error: nope.csv: no such file"
    assert "Traceback" not in missing.stderr


# --------------------------------------------------------------------------------------------
# Dask: the same function on workers, the same output


@pytest.mark.slow
@pytest.mark.integration
def test_dask_engine_gives_exactly_the_local_output(
    tmp_path: Path, model: ScoringModel, cleveland: pd.DataFrame
) -> None:
    from distributed import LocalCluster

    rng = np.random.default_rng(3)
    rows = cleveland.loc[rng.integers(0, len(cleveland), 3000), list(RAW_FEATURES)]
    frame = rows.reset_index(drop=True).astype(object)
    frame.insert(0, "patient", [f"p{i}" for i in range(len(frame))])
    # Bad rows spread over the partitions: text, a missing required field, out of range.
    frame.loc[[5, 1200, 2999], "age"] = "n/a?"
    frame.loc[[17, 1800], "oldpeak"] = None
    frame.loc[[900, 2500], "cp"] = 7
    frame.loc[[40, 2100], "chol"] = 0  # imputed, scored
    csv = tmp_path / "patients.csv"
    frame.to_csv(csv, index=False)
    parquet = tmp_path / "patients.parquet"
    numeric = frame.copy()
    numeric["age"] = pd.to_numeric(numeric["age"], errors="coerce")  # text cannot be a float
    numeric.astype({n: float for n in RAW_FEATURES}).to_parquet(
        parquet, index=False, row_group_size=500
    )

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        for source in (csv, parquet):
            local = tmp_path / f"local-{source.suffix[1:]}.parquet"
            remote = tmp_path / f"dask-{source.suffix[1:]}.parquet"
            first = score_file(source, local, model, chunk_size=400)
            second = score_file(
                source,
                remote,
                model,
                chunk_size=400,
                engine="dask",
                scheduler=cluster.scheduler_address,
            )
            assert second.partitions > 2  # really split over the workers
            assert (first.rows, first.scored, first.rejected, first.imputed) == (
                second.rows,
                second.scored,
                second.rejected,
                second.imputed,
            )
            a, b = pd.read_parquet(local), pd.read_parquet(remote)
            pd.testing.assert_frame_equal(a, b, check_exact=True)
            assert np.array_equal(a["probability"].to_numpy(), b["probability"].to_numpy())
            assert default_rejects_path(local).read_bytes() == (
                default_rejects_path(remote).read_bytes()
            )
            rejects = pd.read_csv(io.BytesIO(default_rejects_path(remote).read_bytes()))
            # Rows are numbered over the whole file, not per partition.
            assert rejects["row"].tolist() == [6, 18, 901, 1201, 1801, 2501, 3000]
