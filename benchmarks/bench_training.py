"""Task 2 wall time: data stage, then training of the four models, measured in one run.

    .venv/bin/python benchmarks/bench_training.py [--repeats N] [--json PATH]

Prints the seconds of each stage and each model, and the ratio to the 60 s target. Runs in a
throwaway copy of the project so that the repository's outputs are untouched.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/results.py

import results  # noqa: E402

TARGET_SECONDS = 60.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="Write the targets' values here")
    args = parser.parse_args()

    from heartml.config import load_config
    from heartml.settings import Settings
    from heartml.stages import run_data, run_train

    print(f"cores: {os.cpu_count()}  python: {sys.version.split()[0]}")
    totals = []
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            project = Path(tmp)
            shutil.copytree(ROOT / "data" / "raw", project / "data" / "raw")
            shutil.copytree(ROOT / "configs", project / "configs")
            settings = Settings(root=project, offline=True)
            config = load_config(settings.pipeline_config_path)
            started = time.perf_counter()
            run_data(settings, config)
            data_seconds = time.perf_counter() - started
            result = run_train(settings, config)
            train_seconds = time.perf_counter() - started - data_seconds
            total = time.perf_counter() - started
            totals.append(train_seconds)
            print(
                f"run {repeat + 1}: data stage {data_seconds:.1f} s, Task 2 (train) "
                f"{train_seconds:.1f} s, total {total:.1f} s"
            )
            for name, model in result.evaluation.models.items():
                auc = model.cv_metrics["roc_auc"]
                print(
                    f"  {name:<20} {model.seconds:6.1f} s  CV ROC-AUC {auc.mean:.4f} "
                    f"[{auc.ci_low:.4f}, {auc.ci_high:.4f}]"
                )
    median = statistics.median(totals)
    print(
        f"Task 2 wall time (median of {len(totals)}): {median:.1f} s; "
        f"target {TARGET_SECONDS:.0f} s; ratio {median / TARGET_SECONDS:.2f} of target"
    )
    results.write(
        args.json,
        "training",
        [results.target("Task 2 wall time, 2 cores (median)", median, "<=", TARGET_SECONDS, "s")],
    )


if __name__ == "__main__":
    main()
