"""Time to build the monitoring report (`heartml monitor report`) from a large prediction store.

    .venv/bin/python benchmarks/bench_monitor_report.py [--rows 1000000] [--days 7] [--store PATH]

Fills a SQLite store with `--rows` predictions spread over `--days` days (the Cleveland rows
scored by a real logistic-regression package, chol shifted in the last two days, outcomes for
half of the rows; built once and reused with --store), then times
heartml.reports.monitoring.build_report over the whole window: reading the rows (with their
JSON inputs), the per-bin drift, bootstrap and CBPE, the figures and the page. Issue 13's goal:
at most 30 s for 1,000,000 predictions on 2 cores. Prints numbers and asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests")]

BATCH = 20_000


def fill(store: Path, package_dir: Path, rows: int, days: int, now: float) -> None:
    import numpy as np
    import sqlalchemy as sa
    from sklearn.linear_model import LogisticRegression

    from heartml.serving.contract import build_contract
    from heartml.store.engine import create_engine, upgrade
    from heartml.store.records import db_time, insert_rows, prediction_values
    from serving_packages import fit, heart_spec, read_source

    spec = heart_spec()
    frame = read_source(spec)
    names = list(spec.raw_names)
    pipeline = fit(spec, frame, LogisticRegression(max_iter=2000))
    engine = create_engine(f"sqlite:///{store}")
    upgrade(engine, create_parent=True)
    contract = build_contract(spec)
    base = frame[names].to_numpy(dtype=float)
    target = frame["target"].to_numpy()
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for start in range(0, rows, BATCH):
        size = min(BATCH, rows - start)
        pick = rng.integers(0, len(base), size)
        inputs = base[pick].copy()
        moments = now - days * 86400.0 * (1 - (start + np.arange(size)) / rows)
        late = moments > now - 2 * 86400.0
        inputs[late, names.index("chol")] += 120.0
        import pandas as pd

        p = pipeline.predict_proba(pd.DataFrame(inputs, columns=names))[:, 1]
        values = prediction_values(
            created_at=db_time("sqlite", float(moments[0])),
            source="api",
            model_name="heart_disease_logistic_regression",
            model_version="1" if start < rows // 2 else "2",
            threshold=0.5,
            describer=contract,
            request_ids=[f"b{start + i}" for i in range(size)],
            rows=[0] * size,
            inputs=inputs.tolist(),
            probabilities=p.tolist(),
            predictions=(p >= 0.5).astype(int).tolist(),
            site=None,
        )
        with engine.begin() as connection:
            insert_rows(connection, values)
            if start < rows // 2:  # outcomes for the older half (what feedback would send)
                connection.execute(
                    sa.text("UPDATE predictions SET outcome = :y WHERE request_id = :r"),
                    [{"y": int(target[j]), "r": f"b{start + i}"} for i, j in enumerate(pick)],
                )
        print(f"\r  filled {start + size:,} rows ({time.perf_counter() - started:.0f} s)", end="")
    print()
    from serving_packages import write_package

    metrics = {"cv": {"roc_auc": {"mean": 0.9, "ci_low": 0.85, "ci_high": 0.95}}}
    write_package(package_dir, spec, pipeline, frame, metrics=metrics)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--store", type=Path, help="reuse (or create) this folder")
    args = parser.parse_args()
    folder = args.store or Path(tempfile.mkdtemp(prefix="bench-monitor-report-"))
    store, packages = folder / "predictions.db", folder / "packages"
    now = time.time()
    if not store.is_file():
        print(f"filling {store} with {args.rows:,} predictions over {args.days} days")
        fill(store, packages, args.rows, args.days, now)
    else:
        now = store.stat().st_mtime  # the store's own week

    from heartml.monitoring.checks import Limits
    from heartml.monitoring.thresholds import KS_SIGNIFICANT, PSI_SIGNIFICANT
    from heartml.package.manifest import read_package
    from heartml.reports.monitoring import build_report
    from heartml.spec import spec_from_text
    from heartml.store.engine import create_engine

    package = read_package(next(packages.iterdir()))
    spec = spec_from_text(package.spec_text, "dataset_spec.yaml")
    limits = Limits(PSI_SIGNIFICANT, KS_SIGNIFICANT, 100, 1000)
    engine = create_engine(f"sqlite:///{store}")
    started = time.perf_counter()
    page = build_report(
        engine, package, spec, args.days * 86400.0 + 60, limits, folder / "report", now + 1
    )
    seconds = time.perf_counter() - started
    print(f"report for {args.rows:,} predictions: {seconds:.1f} s ({page})")


if __name__ == "__main__":
    main()
