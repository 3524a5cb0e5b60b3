"""Scoring files end to end: every row scored or rejected with its reasons (never dropped), the
package's model and dataset spec, CSV / parquet / raw UCI input, the command line, and the Dask
engine giving exactly the local engine's output."""

from __future__ import annotations

import io
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from batch_helpers import REPO_ROOT, THRESHOLD, oracle
from sklearn.pipeline import Pipeline
from test_batch_validate import CASES

from heartml.batch import BatchError, ScoringModel, default_rejects_path, score_file
from heartml.onnx_runtime import OnnxModel
from heartml.spec import DatasetSpec

pytestmark = pytest.mark.scale

MODEL_VERSION = "heart_disease_logistic_regression/7"
GOOD = [i for i, (_, e) in enumerate(CASES) if e == "ok" or e.startswith("imputed:")]
BAD = [i for i in range(len(CASES)) if i not in GOOD]


@pytest.fixture
def mixed_csv(tmp_path: Path, spec: DatasetSpec) -> Path:
    """Every case of the row rules, with a pass-through id column, as CSV with a header."""
    rows = [{"patient": f"p{i}", **spec.example_record(), **c} for i, (c, _) in enumerate(CASES)]
    path = tmp_path / "patients.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def _known(record: dict[str, Any], spec: DatasetSpec) -> dict[str, Any]:
    """A record as the model must see it: markers and a column's missing_values are unknown."""
    out = {}
    for name in spec.raw_names:
        value = record[name]
        if isinstance(value, str):
            value = None if value.strip() in ("?", "NA", "nan") else float(value)
        if value is not None and value in spec.columns[name].missing_values:
            value = None
        out[name] = value
    return out


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_each_row_is_scored_or_rejected_with_its_reasons(
    mixed_csv: Path,
    model: ScoringModel,
    spec: DatasetSpec,
    pipeline: Pipeline,
    suffix: str,
) -> None:
    output = mixed_csv.with_name("scores" + suffix)
    summary = score_file(mixed_csv, output, model, chunk_size=4)

    scored, rejects = _read(output), pd.read_csv(default_rejects_path(output))
    # Nothing dropped: every input row is in exactly one of the two files, by its row number.
    assert scored["row"].tolist() == [i + 1 for i in GOOD]
    assert rejects["row"].tolist() == [i + 1 for i in BAD]
    imputed_rows = sum(1 for i in GOOD if CASES[i][1].startswith("imputed:"))
    assert (summary.rows, summary.scored, summary.rejected, summary.imputed) == (
        len(CASES),
        len(GOOD),
        len(BAD),
        imputed_rows,
    )
    for row, i in zip(rejects.itertuples(), BAD, strict=True):
        assert row.reasons == CASES[i][1]
        assert row.patient == f"p{i}"  # the input fields come along, to fix and resubmit
    # A field that is not a number is written back as it was.
    as_text = next(i for i, (c, _) in enumerate(CASES) if c == {"thalach": "1_000"})
    assert rejects.set_index("row").loc[as_text + 1, "thalach"] == "1_000"

    assert list(scored.columns) == [
        "row",
        "patient",
        *spec.raw_names,
        "imputed",
        "probability",
        "prediction",
        "risk_level",
        "model_version",
    ]
    records = [_known({**spec.example_record(), **CASES[i][0]}, spec) for i in GOOD]
    expected = oracle(pipeline, spec, records)
    probability = scored["probability"].to_numpy()
    np.testing.assert_allclose(probability, expected, rtol=0, atol=1e-12)
    onnx = OnnxModel.from_bytes(model.onnx).predict_proba(pd.DataFrame(records).astype("float64"))
    np.testing.assert_array_equal(probability, onnx)
    assert scored["prediction"].tolist() == [int(p >= THRESHOLD) for p in probability]
    assert scored["risk_level"].astype(str).tolist() == [spec.risk_level(p) for p in probability]
    assert set(scored["model_version"].astype(str)) == {MODEL_VERSION}
    imputed = scored["imputed"].astype(object).where(scored["imputed"].notna(), "")
    assert imputed.tolist() == [
        CASES[i][1].removeprefix("imputed:").replace("ok", "") for i in GOOD
    ]
    # Inputs as written: 0 cholesterol stays 0 in the output (flagged, not rewritten).
    chol_zero = next(k for k, i in enumerate(GOOD) if CASES[i][0] == {"chol": 0})
    assert scored["chol"].iloc[chol_zero] == 0


def test_results_do_not_depend_on_the_chunk_size(
    tmp_path: Path, cleveland_rows: pd.DataFrame, model: ScoringModel, spec: DatasetSpec
) -> None:
    frame = cleveland_rows.loc[:, list(spec.raw_names)].copy()
    rng = np.random.default_rng(1)
    for name in ("slope", "fbs", "thalach", "chol"):  # unknown values in varied combinations
        frame.loc[rng.random(len(frame)) < 0.2, name] = np.nan
    source = tmp_path / "heart.parquet"
    frame.to_parquet(source, index=False)
    outputs = []
    for chunk_size in (1, 7, 1000):
        output = tmp_path / f"scores-{chunk_size}.parquet"
        summary = score_file(source, output, model, chunk_size=chunk_size)
        assert summary.partitions == math.ceil(len(frame) / chunk_size)
        outputs.append(pd.read_parquet(output))
    for other in outputs[1:]:
        pd.testing.assert_frame_equal(outputs[0], other, check_exact=True)
    assert outputs[0]["imputed"].nunique() > 5


def test_the_raw_uci_file_scores_as_is(
    tmp_path: Path, model: ScoringModel, cleveland_rows: pd.DataFrame, spec: DatasetSpec
) -> None:
    """No header, '?' for missing, the 14th column (num) carried along, not scored."""
    source = tmp_path / "processed.cleveland.data"
    shutil.copy(REPO_ROOT / "data" / "raw" / "processed.cleveland.data", source)
    summary = score_file(source, tmp_path / "scores.parquet", model)
    scored = pd.read_parquet(tmp_path / "scores.parquet")
    assert (summary.rows, summary.scored, summary.rejected) == (303, 303, 0)
    raw = cleveland_rows.loc[:, list(spec.raw_names)]
    assert summary.imputed == int(raw.isna().any(axis=1).sum()) == 6
    assert scored["num"].astype(int).tolist() == cleveland_rows["num"].astype(int).tolist()
    expected = OnnxModel.from_bytes(model.onnx).predict_proba(raw)
    np.testing.assert_array_equal(scored["probability"].to_numpy(), expected)
    # The package's threshold decides, not 0.5 (some patients fall in between).
    assert ((expected >= THRESHOLD) & (expected < 0.5)).any()
    assert scored["prediction"].tolist() == (expected >= THRESHOLD).astype(int).tolist()

    # The same lines in a .csv without a header are recognised as the UCI format too.
    headerless = tmp_path / "uci.csv"
    shutil.copy(source, headerless)
    score_file(headerless, tmp_path / "again.parquet", model)
    pd.testing.assert_frame_equal(scored, pd.read_parquet(tmp_path / "again.parquet"))


def test_a_spreadsheet_export_with_bom_and_quoted_header_is_read(
    tmp_path: Path, model: ScoringModel, spec: DatasetSpec
) -> None:
    frame = pd.DataFrame([spec.example_record()])
    text = frame.to_csv(index=False, quoting=1)  # "age","sex",... as spreadsheets write it
    source = tmp_path / "export.csv"
    source.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    summary = score_file(source, tmp_path / "scores.csv", model)
    assert (summary.rows, summary.scored) == (1, 1)
    expected = OnnxModel.from_bytes(model.onnx).predict_proba(frame.astype("float64"))
    assert pd.read_csv(tmp_path / "scores.csv")["probability"].tolist() == expected.tolist()


def test_a_structural_failure_mid_file_leaves_no_partial_output(
    tmp_path: Path, model: ScoringModel
) -> None:
    lines = (REPO_ROOT / "data" / "raw" / "processed.cleveland.data").read_text().splitlines()
    lines[250] += ",1,2"  # a line with too many fields, past the first chunk
    source = tmp_path / "broken.data"
    source.write_text("\n".join(lines) + "\n")
    with pytest.raises(BatchError, match="Expected 14 fields in line 251") as caught:
        score_file(source, tmp_path / "out.parquet", model, chunk_size=100)
    assert "\n" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.data"]


# --------------------------------------------------------------------------------------------
# The command line


def test_cli_scores_with_the_newest_package_of_the_specs_prefix(
    tmp_path: Path,
    package_dir: Path,
    mixed_csv: Path,
    heartml_cli: Callable[..., Any],
    make_cli_env: Callable[..., dict[str, str]],
) -> None:
    root = tmp_path / "project"
    shutil.copytree(REPO_ROOT / "configs", root / "configs")
    shutil.copytree(package_dir, root / "packages" / package_dir.name)
    # Another dataset's package is never picked for this one, however new.
    other = shutil.copytree(package_dir, root / "packages" / "breast_cancer_model_svm_v9")
    newer = time.time() + 100
    os.utime(other / "MANIFEST.json", (newer, newer))
    result = heartml_cli(
        "score", "--input", str(mixed_csv), "--output", "out/scores.csv", cwd=root,
        env=make_cli_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"from {root / 'packages' / package_dir.name}" in result.stdout
    imputed = sum(1 for i in GOOD if CASES[i][1].startswith("imputed:"))
    assert f"{len(CASES)} rows: {len(GOOD)} scored ({imputed} with imputed" in result.stdout
    assert len(pd.read_csv(root / "out" / "scores.csv")) == len(GOOD)
    assert (root / "out" / "scores.csv.rejects.csv").is_file()
    # --dataset picks that dataset's packages; the rows are judged by the package's own spec.
    chosen = heartml_cli(
        "--dataset", "breast_cancer", "score", "--input", str(mixed_csv), "--output", "bc.csv",
        cwd=root, env=make_cli_env(),
    )  # fmt: skip
    assert chosen.returncode == 0, chosen.stderr
    assert f"from {other}" in chosen.stdout

    for args, message in [
        (("--input", "nope.csv"), "error: nope.csv: no such file"),
        (
            ("--input", str(mixed_csv), "--engine", "spark"),
            "'--engine': 'spark' is not one of 'local', 'dask'",
        ),
        (("--input", str(mixed_csv), "--package", "packages/none"), "packages/none: not a"),
    ]:
        failed = heartml_cli("score", *args, "--output", "x.csv", cwd=root, env=make_cli_env())
        assert failed.returncode == 2
        assert message in failed.stderr
        assert len(failed.stderr.strip().splitlines()) == 1
        assert "Traceback" not in failed.stderr
    shutil.rmtree(root / "packages")
    empty = heartml_cli(
        "score", "--input", str(mixed_csv), "--output", "x.csv", cwd=root, env=make_cli_env()
    )
    assert empty.returncode == 2
    assert "no package under" in empty.stderr and "heartml package" in empty.stderr


# --------------------------------------------------------------------------------------------
# Dask: the same function on workers, the same output


@pytest.mark.slow
@pytest.mark.integration
def test_dask_engine_gives_exactly_the_local_output(
    tmp_path: Path, model: ScoringModel, cleveland_rows: pd.DataFrame, spec: DatasetSpec
) -> None:
    from distributed import LocalCluster

    names = list(spec.raw_names)
    rng = np.random.default_rng(3)
    rows = cleveland_rows.loc[rng.integers(0, len(cleveland_rows), 3000), names]
    frame = rows.reset_index(drop=True).astype(object)
    frame.insert(0, "patient", [f"p{i}" for i in range(len(frame))])
    # Bad rows spread over the partitions: text, a missing required field, out of range.
    frame.loc[[5, 1200, 2999], "age"] = "n/a?"
    frame.loc[[17, 1800], "age"] = None
    frame.loc[[900, 2500], "cp"] = 7
    frame.loc[[33, 2222], "thalach"] = "#N/A"  # pandas' NA, not the spec's: not a number
    # Imputed and scored: 0 chol, the spec's markers, whole blocks unknown.
    frame.loc[[40, 2100], "chol"] = 0
    frame.loc[[41, 1500], "fbs"] = "NA"
    frame.loc[[42, 2600], ["slope", "oldpeak", "thalach", "exang"]] = None
    csv = tmp_path / "patients.csv"
    frame.to_csv(csv, index=False)
    parquet = tmp_path / "patients.parquet"
    numeric = frame.copy()
    for name in names:  # text cannot be a float: what is not a number becomes null
        numeric[name] = pd.to_numeric(numeric[name], errors="coerce")
    numeric.to_parquet(parquet, index=False, row_group_size=500)

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
            expected = [6, 18, 901, 1201, 1801, 2501, 3000]
            if source == csv:
                expected = sorted([*expected, 34, 2223])
            assert rejects["row"].tolist() == expected
            assert set(a["imputed"].astype(str)) >= {"chol", "fbs", "thalach,exang,oldpeak,slope"}
