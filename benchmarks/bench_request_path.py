"""CPU cost of one request through the whole app, in-process: /predict vs /health, and the
other protocols' single-row doors (MLflow's /invocations, the Open Inference Protocol's
/v2/models/{name}/infer) vs /predict, without HTTP parsing or sockets.

    .venv/bin/python benchmarks/bench_request_path.py PACKAGE_DIR [--requests 20000] [--repeats 5]

The ASGI app is called directly on one event loop, 8 requests in flight at a time (as wrk -c8
keeps 8), with the model loaded from PACKAGE_DIR, JSON logging on (to /dev/null) as in
`heartml serve`. Prints CPU microseconds per request (process time, best of the repeats: the
least disturbed by other work on a shared machine) and /health's cost over /predict's, the in-process counterpart of
bench_serving.py's "/predict vs /health" req/s ratio (which adds the same HTTP cost to both);
/predict's cost over /invocations' and /infer's is the counterpart of `bench_serving.py
--protocols`' ratios, unmoved by other work on the machine.
Runs against whichever `heartml` is importable, so PYTHONPATH=<other checkout>/src compares
two versions of the code on the same package.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

SEED_ROW = {
    "age": 63,
    "sex": 1,
    "cp": 1,
    "trestbps": 145,
    "chol": 233,
    "fbs": 1,
    "restecg": 2,
    "thalach": 150,
    "exang": 0,
    "oldpeak": 2.3,
    "slope": 3,
    "ca": 0,
    "thal": 6,
}
CONCURRENCY = 8


def scope(method: str, path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
    }


async def call(app: Any, method: str, path: str, body: bytes) -> int:
    status = 0
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope(method, path), receive, send)
    return status


async def load(app: Any, method: str, path: str, body: bytes, requests: int) -> float:
    """Seconds per request with CONCURRENCY requests in flight."""
    per_worker = requests // CONCURRENCY

    async def worker() -> None:
        for _ in range(per_worker):
            status = await call(app, method, path, body)
            if status != 200:
                raise RuntimeError(f"{method} {path}: HTTP {status}")

    # CPU time of this process, not wall time: waiting for a core that other work holds (a
    # shared machine) is not a cost of the request path.
    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return (time.process_time() - started) / (per_worker * CONCURRENCY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", type=Path)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import gc

    from heartml.serving.app import create_app
    from heartml.serving.loaded_model import load_package
    from heartml.serving.logging import configure_logging
    from heartml.serving.model_store import ModelStore
    from heartml.serving.sources import package_fingerprint
    from heartml.settings import Settings

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # the JSON log lines go nowhere, as cheaply as to a pipe
    handler = configure_logging("INFO")
    settings = Settings(model_package=args.package, serve_reload_interval_s=0)
    store = ModelStore(settings)
    directory = args.package.resolve()
    store.current = load_package(
        directory, f"package:{directory}", package_fingerprint(directory), 1
    )
    app = create_app(settings, store=store)
    body = json.dumps(SEED_ROW).encode()
    row = list(SEED_ROW.values())
    name = store.current.name
    doors = {  # route -> (path, body): one record each, as each protocol's client sends it
        "predict": ("/predict", body),
        "invocations": (
            "/invocations",
            json.dumps({"dataframe_split": {"columns": list(SEED_ROW), "data": [row]}}).encode(),
        ),
        "infer": (
            f"/v2/models/{name}/infer",
            json.dumps(
                {"inputs": [{"name": "input", "shape": [1, 13], "datatype": "FP64", "data": row}]}
            ).encode(),
        ),
    }
    gc.collect()
    gc.freeze()  # as the service's lifespan does
    gc.set_threshold(10_000, 10, 10)

    async def run() -> dict[str, float]:
        best = {"health": float("inf")} | {door: float("inf") for door in doors}
        await load(app, "GET", "/health", b"", 2000)  # warm up
        for path, content in doors.values():
            await load(app, "POST", path, content, 2000)
        for _ in range(args.repeats):
            best["health"] = min(
                best["health"], await load(app, "GET", "/health", b"", args.requests)
            )
            for door, (path, content) in doors.items():
                best[door] = min(best[door], await load(app, "POST", path, content, args.requests))
        return best

    best = asyncio.run(run())
    handler.flush()
    logging.getLogger().removeHandler(handler)
    import heartml.serving.app as served

    out = sys.stdout
    out.write(f"code: {Path(served.__file__).parents[2]}\n")
    out.write(f"package: {directory.name}\n")
    out.write(f"/health  {best['health'] * 1e6:7.1f} µs per request\n")
    out.write(f"/predict {best['predict'] * 1e6:7.1f} µs per request\n")
    out.write(f"/health cost / /predict cost: {best['health'] / best['predict']:.0%}\n")
    for door in ("invocations", "infer"):
        out.write(
            f"{doors[door][0]} {best[door] * 1e6:7.1f} µs per request; /predict cost / its cost: "
            f"{best['predict'] / best[door]:.0%}\n"
        )


if __name__ == "__main__":
    main()
