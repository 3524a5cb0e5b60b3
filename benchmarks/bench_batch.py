"""Batch scoring throughput: end to end (`heartml score`, file to file) vs raw model predict.

    .venv/bin/python benchmarks/bench_batch.py [--rows 1000000] [--chunk-size 100000]
                                               [--package DIR] [--dask-workers 2] [--no-dask]
                                               [--json PATH]

Generates the rows by resampling the dataset with noise kept inside the valid ranges (plus a few
imputable and a few invalid rows, as real files have), writes them as parquet in a temporary
folder, then measures in one run:
- raw: OnnxModel.predict_proba on the same rows as in-memory float64 arrays, same chunk size;
- local: the local engine, parquet in -> parquet out (validation, scoring, rejects, writing);
- dask: the Dask engine on a LocalCluster with 2 worker processes.
Prints rows/s for each and local/raw (target >= 0.40). Raw and local runs alternate and the best
of --repeats counts for each, so that a busy neighbour on a shared machine does not decide it.

The package: --package, else the newest under packages/ with the dataset spec's prefix; with
--build-package (or when no package carries a dataset spec yet), a logistic regression is
fitted on the shipped Cleveland file and packaged in the temporary folder, as the unit tests do.
The columns, their ranges and what counts as missing all come from the package's dataset spec.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "configs" / "datasets" / "uci_heart.yaml"
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/results.py

import results  # noqa: E402

TARGET_RATIO = 0.40
NOISE = 0.1  # of each number column's standard deviation


def dataset_rows(spec: Any) -> pd.DataFrame:
    """The shipped data file, read by the spec (its field order and missing markers)."""
    return pd.read_csv(
        ROOT / spec.source.shipped_copy,
        header=None,
        names=list(spec.source.columns),
        keep_default_na=False,
        na_values=list(spec.missing_markers),
    )


def synthetic_rows(spec: Any, dataset: pd.DataFrame, rows: int, seed: int = 0) -> pd.DataFrame:
    """Dataset rows resampled with noise, rounded to each column's step and clipped to its
    range; 0.5% carry a 'not measured' value (imputed), 0.1% a code outside the coding."""
    rng = np.random.default_rng(seed)
    names = list(spec.raw_names)
    picked = dataset.loc[:, names].to_numpy(np.float64)[rng.integers(0, len(dataset), rows)]
    frame = pd.DataFrame(picked, columns=names)
    for name, column in spec.columns.items():
        if column.range is None:
            continue
        values = frame[name].to_numpy()
        noisy = values + rng.normal(0.0, NOISE * np.nanstd(values), rows)
        decimals = 0 if column.form_step >= 1 else len(f"{column.form_step:g}".split(".")[1])
        frame[name] = np.clip(np.round(noisy, decimals), *column.range)
    unmeasured = next(n for n, c in spec.columns.items() if c.missing_values)
    frame.loc[rng.random(rows) < 0.005, unmeasured] = spec.columns[unmeasured].missing_values[0]
    coded = next(n for n, c in spec.columns.items() if c.codes and c.required)
    frame.loc[rng.random(rows) < 0.001, coded] = max(spec.columns[coded].codes) + 1.0
    frame.insert(0, "patient_id", np.arange(rows, dtype=np.int64))
    return frame


def build_package(folder: Path, spec: Any, dataset: pd.DataFrame) -> Path:
    """A logistic regression fitted on the dataset, packaged as the unit tests do."""
    sys.path.insert(0, str(ROOT / "tests" / "unit" / "batch"))
    from batch_helpers import write_package
    from sklearn.linear_model import LogisticRegression

    from heartml.features import build_pipeline
    from heartml.onnx_export import pipeline_to_onnx

    target = (dataset[spec.target.column] > 0).astype(int)
    pipeline = build_pipeline(spec, LogisticRegression(max_iter=2000))
    pipeline.fit(dataset.loc[:, list(spec.raw_names)], target)
    directory = folder / f"{spec.package_prefix}_logistic_regression_v0"
    onnx = pipeline_to_onnx(pipeline).SerializeToString()
    return write_package(directory, onnx, spec.to_yaml(), threshold=0.5)


def find_package(folder: Path, spec: Any, args: argparse.Namespace) -> tuple[Path, str]:
    from heartml.errors import PackagingError
    from heartml.package.manifest import newest_package_or_fail, read_package

    if args.package is not None:
        return args.package, "given"
    if not args.build_package:
        try:
            found = newest_package_or_fail(ROOT / "packages", spec.package_prefix)
            read_package(found)
            return found, "newest"
        except PackagingError as exc:
            print(f"no usable package under packages/ ({exc}); building one")
    return build_package(folder, spec, dataset_rows(spec)), "built like the unit tests"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, default=100_000)
    parser.add_argument("--package", type=Path, default=None)
    parser.add_argument("--dask-workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-dask", action="store_true")
    parser.add_argument("--build-package", action="store_true", help="fit and package an LR")
    parser.add_argument("--json", type=Path, default=None, help="Write the targets' values here")
    args = parser.parse_args()

    from heartml.batch import score_file, scoring_model
    from heartml.package.manifest import read_package
    from heartml.spec import load_spec

    spec = load_spec(SPEC)
    with tempfile.TemporaryDirectory(prefix="heartml-bench-") as tmp:
        folder = Path(tmp)
        package, how = find_package(folder, spec, args)
        model = scoring_model(read_package(package))
        onnx = model.load()
        print(
            f"cores: {os.cpu_count()}  python: {sys.version.split()[0]}  "
            f"package: {package.name} ({how})"
        )
        source = folder / "patients.parquet"
        frame = synthetic_rows(model.contract().spec, dataset_rows(spec), args.rows)
        frame.to_parquet(source, index=False, row_group_size=args.chunk_size)
        print(f"input: {args.rows:,} rows, {source.stat().st_size / 1e6:.1f} MB parquet")
        raw_names = list(onnx.columns)

        chunks = [
            np.ascontiguousarray(
                frame.loc[start : start + args.chunk_size - 1, raw_names].to_numpy(np.float64)
            )
            for start in range(0, args.rows, args.chunk_size)
        ]
        del frame
        onnx.predict_proba(chunks[0])  # warm-up, as the engines get on their first chunk
        raw_seconds, local_seconds = [], []
        local = None
        for _ in range(args.repeats):
            started = time.perf_counter()
            for chunk in chunks:
                onnx.predict_proba(chunk)
            raw_seconds.append(time.perf_counter() - started)
            local = score_file(source, folder / "scored.parquet", model, chunk_size=args.chunk_size)
            local_seconds.append(local.seconds)
        assert local is not None
        raw_rate = args.rows / min(raw_seconds)
        local_rate = args.rows / min(local_seconds)
        print(f"raw predict:          {raw_rate:>12,.0f} rows/s  (best of {args.repeats})")
        print(
            f"local engine (e2e):   {local_rate:>12,.0f} rows/s  (best of {args.repeats}; "
            f"{local.scored:,} scored, {local.imputed:,} imputed, {local.rejected:,} rejected, "
            f"{min(local_seconds):.2f} s)"
        )
        ratio = local_rate / raw_rate
        verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
        print(f"local / raw:          {ratio:.1%} ({verdict} the {TARGET_RATIO:.0%} target)")
        results.write(
            args.json,
            "batch",
            [
                results.target(
                    "batch scoring end to end / raw ONNX predict (local engine)",
                    ratio,
                    ">=",
                    TARGET_RATIO,
                    "ratio",
                )
            ],
        )
        if not args.no_dask:
            from distributed import LocalCluster

            started = time.perf_counter()
            with LocalCluster(
                n_workers=args.dask_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            ) as cluster:
                startup = time.perf_counter() - started
                dask_run = score_file(
                    source,
                    folder / "scored_dask.parquet",
                    model,
                    chunk_size=args.chunk_size,
                    engine="dask",
                    scheduler=cluster.scheduler_address,
                )
            same = pd.read_parquet(folder / "scored.parquet").equals(
                pd.read_parquet(folder / "scored_dask.parquet")
            )
            print(
                f"dask engine (e2e):    {dask_run.rows / dask_run.seconds:>12,.0f} rows/s  "
                f"(LocalCluster, {args.dask_workers} worker processes, {dask_run.partitions} "
                f"partitions, {dask_run.seconds:.2f} s; cluster start {startup:.1f} s not "
                f"counted; output identical to local: {same})"
            )


if __name__ == "__main__":
    main()
