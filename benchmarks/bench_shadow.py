"""/predict with a challenger scored in shadow vs without, measured side by side (wrk, loopback).

    .venv/bin/python benchmarks/bench_shadow.py [--duration 10] [--repeats 3] [--connections 8]

Two packages are written by tests/serving_packages.py (a logistic regression, the champion, and
a random forest of 100 trees, the challenger: the costlier of the two as the shadow). Then, in
turn, `repeats` times each: `heartml serve --package LR` (shadow off) and the same with
HEARTML_SHADOW_PACKAGE=RF (shadow on); wrk POSTs the seed's body to /predict at `connections`
for `duration` seconds. Printed: req/s (median and best of the runs), p50/p99, the ratio on/off
(goal >= 80%), and from each shadow run's /metrics how many rows the challenger scored, dropped
(it fell behind) or failed on, so a ratio bought by dropping rows would show. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serving import (
    BIN,
    ROOT,
    SEED_ROW,
    Load,
    best_rate,
    free_port,
    lua_post,
    machine_line,
    median_rate,
    running,
    wrk,
)

GOAL = 0.80


def shadow_counts(port: int) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("heartml_shadow_"):
                key = sample.name.removeprefix("heartml_shadow_")
                if "model" in sample.labels:
                    key += f"[{sample.labels['model']}]"
                counts[key] = sample.value
    return counts


def serve(workdir: Path, champion: Path, shadow: Path | None, env: dict[str, str]) -> Any:
    port = free_port()
    run_env = {**env, "HEARTML_SERVE_RELOAD_INTERVAL_S": "0"}
    if shadow is not None:
        run_env["HEARTML_SHADOW_PACKAGE"] = str(shadow)
    command = [str(BIN / "heartml"), "serve", "--package", str(champion), "--port", str(port)]
    name = "shadow on" if shadow is not None else "shadow off"
    return running(name, command, "/ready", workdir, run_env, port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()

    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="heartml-bench-shadow-") as tmp:
        workdir = Path(tmp)
        made = subprocess.run(
            [sys.executable, str(ROOT / "tests" / "serving_packages.py"), str(workdir / "pk")],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        lr, rf = (Path(line) for line in made.stdout.split())
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HEARTML_", "MLFLOW_"))}
        env.update(HEARTML_ROOT=str(workdir), HEARTML_SERVE_ACCESS_LOG="true")
        script = lua_post(workdir, "predict", SEED_ROW)
        runs: dict[str, list[Load]] = {"off": [], "on": []}
        shadow_seen: list[dict[str, float]] = []
        for repeat in range(args.repeats):
            for mode in ("off", "on"):
                with serve(workdir, lr, rf if mode == "on" else None, env) as server:
                    url = server.url("/predict")
                    if mode == "on":  # the challenger loads after the champion: wait for it
                        for _ in range(200):
                            if shadow_counts(server.port).get("info"):
                                break
                            time.sleep(0.05)
                    wrk(url, args.connections, 1.0, script)  # warm-up
                    before = shadow_counts(server.port) if mode == "on" else {}
                    load = wrk(url, args.connections, args.duration, script)
                    runs[mode].append(load)
                    if mode == "on":
                        after = shadow_counts(server.port)
                        shadow_seen.append(
                            {k: after.get(k, 0) - before.get(k, 0) for k in after if k != "info"}
                        )
                    print(
                        f"  run {repeat + 1} shadow {mode:>3}: {load.requests_per_s:>8,.0f} req/s "
                        f"p50 {load.p50_ms:.2f} ms p99 {load.p99_ms:.2f} ms "
                        f"errors {load.errors}"
                    )

    def median(mode: str) -> float:
        return median_rate(runs[mode])

    def best(mode: str) -> float:
        return best_rate(runs[mode])

    ratio_median, ratio_best = median("on") / median("off"), best("on") / best("off")
    print(
        f"\n/predict at c={args.connections}, {args.duration:g} s x {args.repeats} runs each:\n"
        f"  shadow off: median {median('off'):,.0f} req/s, best {best('off'):,.0f}\n"
        f"  shadow on : median {median('on'):,.0f} req/s, best {best('on'):,.0f}\n"
        f"  on / off  : {ratio_median:.0%} (median), {ratio_best:.0%} (best); goal >= {GOAL:.0%}: "
        f"{'met' if ratio_median >= GOAL else 'NOT met'}"
    )
    for index, seen in enumerate(shadow_seen, 1):
        champion = seen.get("predictions_total[champion]", 0)
        print(
            f"  shadow run {index}: champion rows {champion:,.0f}, challenger scored "
            f"{seen.get('predictions_total[challenger]', 0):,.0f}, dropped "
            f"{seen.get('dropped_total', 0):,.0f}, errors {seen.get('errors_total', 0):,.0f}"
        )


if __name__ == "__main__":
    main()
