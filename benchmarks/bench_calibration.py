"""/predict for a site with a calibration vs without, side by side on one server (wrk, loopback).

    .venv/bin/python benchmarks/bench_calibration.py [--duration 10] [--repeats 3]
        [--connections 8] [--store]

A package is written by tests/serving_packages.py (a logistic regression) and a logistic site
calibration for site A beside it (heartml.calibration.files: manifest, sha256, active pointer).
One `heartml serve` (the prediction store off unless --store, to leave its writer's CPU out of
the comparison); wrk POSTs the seed's body to /predict at `connections` for `duration` seconds,
in turn, `repeats` times each: without a site, with site B (no calibration: the raw model, the
site recorded and named in the answer) and with site A (calibrated per row after the ONNX call).
Printed: req/s per run, median and best per mode, and the ratios calibrated / no site and
calibrated / uncalibrated site (goal >= 97%). Every answer of the A runs is checked once first
to be the calibrated one. Asserts nothing.

    .venv/bin/python benchmarks/bench_calibration.py --in-process [--requests 20000] [--repeats 5]

The same three bodies through the ASGI app called directly (benchmarks/bench_request_path.py's
harness: no sockets, 8 in flight, CPU time of this process, best of the repeats): the CPU cost
per request, unmoved by other work on a shared machine, where wrk's req/s swing by tens of %.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_serving
sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "tests"))  # site_calibrations

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

GOAL = 0.97
MODES = ("no site", "site B (none)", "site A (calibrated)")
BODIES = {"no site": SEED_ROW, "site B (none)": {**SEED_ROW, "site": "B"}}
BODIES["site A (calibrated)"] = {**SEED_ROW, "site": "A"}


def site_calibrated_package(workdir: Path) -> Path:
    """An LR package (tests/serving_packages.py) under workdir/pk, and a logistic calibration
    for site A under workdir/calibrations (tests/site_calibrations.py: the real layout)."""
    from site_calibrations import make_calibration

    made = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "serving_packages.py"), str(workdir / "pk")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    package = Path(made.stdout.split()[0]).resolve()
    config = json.loads((package / "MANIFEST.json").read_text())
    make_calibration(
        workdir / "calibrations",
        "A",
        1,
        intercept=-0.7,
        slope=0.8,
        model_name=config["model_name"],
        model_version=str(config["version"]),
    )
    return package


def answer(url: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return dict(json.loads(response.read()))


def in_process(requests: int, repeats: int) -> None:
    """CPU µs per /predict of each mode, in-process (see the module's docstring)."""
    import asyncio
    import gc

    from bench_request_path import load

    from heartml.serving.app import create_app
    from heartml.serving.loaded_model import load_package
    from heartml.serving.model_store import ModelStore
    from heartml.serving.sources import package_fingerprint
    from heartml.settings import Settings

    with tempfile.TemporaryDirectory(prefix="heartml-bench-calibration-") as tmp:
        workdir = Path(tmp)
        package = site_calibrated_package(workdir)
        settings = Settings(
            root=workdir,
            model_package=package,
            serve_reload_interval_s=0,
            store_enabled=False,
            serve_access_log=False,
        )
        store = ModelStore(settings)
        store.current = load_package(package, f"package:{package}", package_fingerprint(package), 1)
        app = create_app(settings, store=store)
        bodies = {mode: json.dumps(BODIES[mode]).encode() for mode in MODES}
        gc.collect()
        gc.freeze()
        gc.set_threshold(10_000, 10, 10)

        async def run() -> dict[str, float]:
            await app.state.service.calibrations.prepare(store.current)
            best = dict.fromkeys(MODES, float("inf"))
            for mode in MODES:
                await load(app, "POST", "/predict", bodies[mode], 2000)  # warm up
            for _ in range(repeats):
                for mode in MODES:
                    spent = await load(app, "POST", "/predict", bodies[mode], requests)
                    best[mode] = min(best[mode], spent)
            return best

        best = asyncio.run(run())
    print(f"/predict, CPU per request in-process, best of {repeats} x {requests:,}:")
    for mode in MODES:
        print(f"  {mode:<20}: {best[mode] * 1e6:6.1f} µs")
    for base in MODES[:2]:
        ratio = best[base] / best[MODES[2]]  # throughput ratio = inverse cost ratio
        print(
            f"  calibrated / {base:<14}: {ratio:.1%} of the throughput; goal >= {GOAL:.0%}: "
            f"{'met' if ratio >= GOAL else 'NOT met'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--store", action="store_true", help="Keep the prediction store on")
    parser.add_argument("--in-process", action="store_true", help="CPU per request, no sockets")
    parser.add_argument("--requests", type=int, default=20_000, help="--in-process: per run")
    args = parser.parse_args()
    if args.in_process:
        print(machine_line())
        in_process(args.requests, args.repeats)
        return

    print(machine_line())
    runs: dict[str, list[Load]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="heartml-bench-calibration-") as tmp:
        workdir = Path(tmp)
        package = site_calibrated_package(workdir)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HEARTML_", "MLFLOW_"))}
        env.update(
            HEARTML_ROOT=str(workdir),
            HEARTML_SERVE_ACCESS_LOG="false",
            HEARTML_SERVE_RELOAD_INTERVAL_S="2",
            HEARTML_STORE_ENABLED="true" if args.store else "false",
        )
        port = free_port()
        command = [str(BIN / "heartml"), "serve", "--package", str(package), "--port", str(port)]
        scripts = {mode: lua_post(workdir, f"m{i}", BODIES[mode]) for i, mode in enumerate(MODES)}
        with running("calibration", command, "/ready", workdir, env, port) as server:
            url = server.url("/predict")
            checked = answer(url, BODIES["site A (calibrated)"])
            calibration = checked["calibration"]
            assert isinstance(calibration, dict) and calibration["version"] == 1, checked
            print(f"site A answer: {checked['probability']:.6f} ({calibration['detail']})")
            for mode in MODES:
                wrk(url, args.connections, 1.0, scripts[mode])  # warm-up
            for repeat in range(args.repeats):
                for mode in MODES:
                    load = wrk(url, args.connections, args.duration, scripts[mode])
                    runs[mode].append(load)
                    print(
                        f"  run {repeat + 1} {mode:<20}: {load.requests_per_s:>8,.0f} req/s "
                        f"p50 {load.p50_ms:.2f} ms p99 {load.p99_ms:.2f} ms errors {load.errors}"
                    )

    def median(mode: str) -> float:
        return median_rate(runs[mode])

    def best(mode: str) -> float:
        return best_rate(runs[mode])

    print(f"\n/predict at c={args.connections}, {args.duration:g} s x {args.repeats} runs each:")
    for mode in MODES:
        print(f"  {mode:<20}: median {median(mode):,.0f} req/s, best {best(mode):,.0f}")
    calibrated = MODES[2]
    for base in MODES[:2]:
        ratio_median = median(calibrated) / median(base)
        ratio_best = best(calibrated) / best(base)
        print(
            f"  calibrated / {base:<14}: {ratio_median:.1%} (median), {ratio_best:.1%} (best); "
            f"goal >= {GOAL:.0%}: {'met' if ratio_median >= GOAL else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
