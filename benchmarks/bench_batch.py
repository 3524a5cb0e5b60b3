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
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/results.py

import results  # noqa: E402

TARGET_RATIO = 0.40
NOISE = {"age": 2.0, "trestbps": 5.0, "chol": 15.0, "thalach": 5.0, "oldpeak": 0.2}
DECIMALS = {"oldpeak": 1}


def synthetic_rows(dataset: pd.DataFrame, rows: int, seed: int = 0) -> pd.DataFrame:
    """Dataset rows resampled with noise, rounded like the UCI data and clipped to valid ranges."""
    from heartml.coding import COLUMNS_BY_NAME, RAW_FEATURES

    rng = np.random.default_rng(seed)
    picked = dataset.loc[:, list(RAW_FEATURES)].to_numpy(np.float64)[
        rng.integers(0, len(dataset), rows)
    ]
    frame = pd.DataFrame(picked, columns=list(RAW_FEATURES))
    for name, scale in NOISE.items():
        spec = COLUMNS_BY_NAME[name]
        noisy = frame[name].to_numpy() + rng.normal(0.0, scale, rows)
        frame[name] = np.clip(np.round(noisy, DECIMALS.get(name, 0)), spec.minimum, spec.maximum)
    frame.loc[rng.random(rows) < 0.005, "chol"] = 0.0  # recorded as 0: missing, imputed
    frame.loc[rng.random(rows) < 0.001, "cp"] = 5.0  # outside the UCI coding: rejected
    frame.insert(0, "patient_id", np.arange(rows, dtype=np.int64))
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, default=100_000)
    parser.add_argument("--package", type=Path, default=None)
    parser.add_argument("--dask-workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-dask", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="Write the targets' values here")
    args = parser.parse_args()

    from heartml.batch import load_package, newest_package_or_fail, score_file
    from heartml.coding import RAW_FEATURES
    from heartml.packaging import dataset_rows

    package = args.package or newest_package_or_fail(ROOT / "packages")
    model, _ = load_package(package)
    onnx = model.load()
    print(f"cores: {os.cpu_count()}  python: {sys.version.split()[0]}  package: {package.name}")

    with tempfile.TemporaryDirectory(prefix="heartml-bench-") as tmp:
        folder = Path(tmp)
        source = folder / "patients.parquet"
        frame = synthetic_rows(dataset_rows(ROOT), args.rows)
        frame.to_parquet(source, index=False, row_group_size=args.chunk_size)
        print(f"input: {args.rows:,} rows, {source.stat().st_size / 1e6:.1f} MB parquet")

        chunks = [
            np.ascontiguousarray(
                frame.loc[start : start + args.chunk_size - 1, list(RAW_FEATURES)].to_numpy(
                    np.float64
                )
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
