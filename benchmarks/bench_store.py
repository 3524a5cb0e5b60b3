"""The prediction store's cost, measured side by side in one run.

    .venv/bin/python benchmarks/bench_store.py [--duration 10] [--repeats 3] [--rows 200000]
                                               [--postgres URL] [--no-postgres]

1. In-process CPU per /predict (the ASGI app called directly, 8 requests in flight, as
   bench_request_path.py does), store OFF vs ON (SQLite), alternating, best of `--repeats`:
   process CPU time over the requests plus the writer writing their rows, so the writer
   thread's work is counted. Robust on a shared machine (CPU time, not throughput).
2. /predict at concurrency 8 (wrk, loopback, the seed's body), `heartml serve` with the store
   OFF (HEARTML_STORE_ENABLED=false), ON with SQLite (the default) and ON with PostgreSQL,
   alternating, `--repeats` runs of each: req/s (median and best), p50 and p99, and after each
   ON run the rows in the database against the requests wrk counted (nothing may be missing),
   and the server's resident memory (VmRSS) at the start and end of each run, in MB/s (after
   the warm-up, which computes the live-performance gauges once: a one-off ~5-20 MB): the
   writer's SQLite statements once made it rise ~0.65-1.0 MB/s with the store on
   (heartml.store.records); now ~0.0-0.1 MB/s, as with the store off.
3. The writer alone (heartml.store.writer.PredictionWriter in this process): `--rows`
   predictions queued in groups of 8 (the service's micro-batches), then the time until every
   row is in the database, SQLite and PostgreSQL: rows/s, and how much of it is the database
   (the same rows, prebuilt, inserted with insert_rows in 5000-row transactions).

PostgreSQL: --postgres URL (a server you own; a database is created and dropped), else a
throwaway cluster from Debian's binaries (as the integration tests start one). Prints numbers
and asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "tests"), str(ROOT / "tests" / "integration")]

from bench_serving import (  # noqa: E402
    BIN,
    SEED_ROW,
    Load,
    free_port,
    http_status,
    lua_post,
    machine_line,
    process_tree,
    rss_mb,
    running,
    wrk,
)

from stored_predictions import stored_count  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process tree, every thread (the store's writer included)."""
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


TARGETS = {"on_vs_off": 0.90, "p99_ms": 5.0}


def build_package(folder: Path) -> Path:
    from sklearn.linear_model import LogisticRegression

    from serving_packages import fit, heart_spec, read_source, write_package

    spec = heart_spec()
    data = read_source(spec)
    return write_package(folder, spec, fit(spec, data, LogisticRegression(max_iter=2000)), data)


@contextlib.contextmanager
def postgres_server(url: str | None) -> Iterator[Any]:
    from harness.postgres import Postgres, throwaway_postgres

    if url:
        server = Postgres(url)
        try:
            yield server
        finally:
            server.drop_created()
        return
    with throwaway_postgres() as server:
        yield server


def serve_env(store_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTML_")}
    env["HEARTML_SERVE_RELOAD_INTERVAL_S"] = "0"
    if store_url is None:
        env["HEARTML_STORE_ENABLED"] = "false"
    else:
        env["HEARTML_STORE_URL"] = store_url
    return env


def predict_runs(
    package: Path, work: Path, stores: dict[str, str | None], args: argparse.Namespace
) -> tuple[dict[str, list[Load]], dict[str, list[float]]]:
    script = lua_post(work, "predict", SEED_ROW)
    loads: dict[str, list[Load]] = {name: [] for name in stores}
    cpu: dict[str, list[float]] = {name: [] for name in stores}
    for repeat in range(args.repeats):
        for name, url in stores.items():
            port = free_port()
            command = [
                str(BIN / "heartml"),
                "serve",
                "--package",
                str(package),
                "--port",
                str(port),
            ]
            before = 0
            with running(f"store {name}", command, "/ready", work, serve_env(url), port) as server:
                wrk(server.url("/predict"), 8, 1.0, script)  # warm-up
                if url:
                    time.sleep(1.0)  # the warm-up's rows written
                    before = stored_count(url)
                    # The gauges' first computation (imports, caches): not read as growth.
                    http_status(port, "/monitoring/performance")
                started = cpu_seconds(server.process.pid)
                rss_start = rss_mb(process_tree(server.process.pid))
                load = wrk(server.url("/predict"), 8, args.duration, script)
                rss_end = rss_mb(process_tree(server.process.pid))
                time.sleep(1.0)  # the writer's last rows of the run are part of its cost
                used = cpu_seconds(server.process.pid) - started
            # The server has stopped (graceful: its writer wrote what it held).
            loads[name].append(load)
            cpu[name].append(used / load.requests * 1e6)
            kept = (
                f"; rows stored {stored_count(url) - before:,} of {load.requests:,}" if url else ""
            )
            rss = (
                f"RSS {rss_start:.0f} -> {rss_end:.0f} MB "
                f"({(rss_end - rss_start) / args.duration:+.2f} MB/s)"
            )
            print(
                f"  run {repeat + 1} {name:>10}: {load.row()}  {cpu[name][-1]:6.1f} µs CPU/req  "
                f"{rss}{kept}",
                flush=True,
            )
    return loads, cpu


def in_process(package: Path, url: str, requests: int, repeats: int) -> dict[str, float]:
    """Best CPU µs per /predict with the store off and on (writer included)."""
    import asyncio
    import gc
    import json
    import logging

    from bench_request_path import CONCURRENCY, call

    from heartml.serving.app import create_app
    from heartml.serving.loaded_model import load_package
    from heartml.serving.logging import configure_logging
    from heartml.serving.model_store import ModelStore
    from heartml.serving.sources import package_fingerprint
    from heartml.settings import Settings
    from heartml.store.engine import create_engine, upgrade
    from heartml.store.writer import PredictionWriter

    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # the JSON log lines go nowhere, as cheaply as to a pipe
    handler = configure_logging("INFO")
    settings = Settings(model_package=package, serve_reload_interval_s=0, store_enabled=False)
    store = ModelStore(settings)
    directory = package.resolve()
    store.current = load_package(
        directory, f"package:{directory}", package_fingerprint(directory), 1
    )
    app = create_app(settings, store=store)
    service = app.state.service
    engine = create_engine(url)
    upgrade(engine, create_parent=True)
    writer = PredictionWriter(engine, max_rows=10**7, flush_interval_s=0.5)
    writer.start()
    body = json.dumps(SEED_ROW).encode()
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)

    async def measure(recording: bool, count: int) -> float:
        service.recorder = writer if recording else None
        per_worker = count // CONCURRENCY

        async def worker() -> None:
            for _ in range(per_worker):
                if await call(app, "POST", "/predict", body) != 200:
                    raise RuntimeError("/predict failed")

        started = time.process_time()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        if recording:
            await asyncio.to_thread(writer.wait_written, 60)
        return (time.process_time() - started) / (per_worker * CONCURRENCY) * 1e6

    async def run() -> dict[str, float]:
        best = {"off": float("inf"), "on": float("inf")}
        await measure(False, 2000)
        await measure(True, 2000)
        for _ in range(repeats):
            for name in ("off", "on"):
                best[name] = min(best[name], await measure(name == "on", requests))
        return best

    try:
        return asyncio.run(run())
    finally:
        writer.close()
        handler.flush()
        logging.getLogger().removeHandler(handler)
        os.dup2(saved, 2)


def writer_throughput(url: str, rows: int) -> tuple[float, float]:
    """(rows/s of the writer, rows/s of the database inserts alone)."""
    from heartml.serving.contract import build_contract
    from heartml.store.engine import create_engine, upgrade
    from heartml.store.records import db_time, insert_rows, prediction_values
    from heartml.store.writer import PredictionWriter
    from serving_packages import heart_spec

    contract = build_contract(heart_spec())
    engine = create_engine(url)
    upgrade(engine, create_parent=True)
    row = list(SEED_ROW.values())
    writer = PredictionWriter(engine, max_rows=rows + 1, flush_interval_s=0.05)
    for start in range(0, rows, 8):
        ids = [f"w{start + i}" for i in range(8)]
        writer.record(time.time(), "api", "m", "1", 0.5, contract, ids, [0] * 8, [row] * 8,
                      [0.3] * 8, [0] * 8)  # fmt: skip
    started = time.perf_counter()
    writer.start()
    while writer.pending_rows:
        time.sleep(0.01)
    writer_rate = rows / (time.perf_counter() - started)
    writer.close()
    built = prediction_values(
        created_at=db_time(engine.dialect.name, time.time()), source="api", model_name="m", model_version="2", threshold=0.5,
        describer=contract, request_ids=[f"d{i}" for i in range(rows)], rows=[0] * rows,
        inputs=[row] * rows, probabilities=[0.3] * rows, predictions=[0] * rows, site=None,
    )  # fmt: skip
    started = time.perf_counter()
    for start in range(0, rows, 5000):
        with engine.begin() as connection:
            insert_rows(connection, built[start : start + 5000])
    database_rate = rows / (time.perf_counter() - started)
    engine.dispose()
    return writer_rate, database_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="Seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=200_000, help="Rows for the writer alone")
    parser.add_argument("--requests", type=int, default=20_000, help="In-process requests per run")
    parser.add_argument("--postgres", help="A PostgreSQL server URL (default: a throwaway one)")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    print(machine_line())
    with (
        tempfile.TemporaryDirectory(prefix="heartml-bench-store-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        work = Path(tmp)
        package = build_package(work / "packages")
        stores: dict[str, str | None] = {"off": None, "sqlite": f"sqlite:///{work / 'p.db'}"}
        pg = None if args.no_postgres else stack.enter_context(postgres_server(args.postgres))
        if pg is not None:
            stores["postgresql"] = pg.create_database()
        best = in_process(
            package, f"sqlite:///{work / 'in-process.db'}", args.requests, args.repeats
        )
        print(
            f"\nin-process CPU per /predict (8 in flight, best of {args.repeats}): store off "
            f"{best['off']:.1f} µs, on {best['on']:.1f} µs (writer included): "
            f"off/on = {best['off'] / best['on']:.1%}"
        )
        print(f"\n/predict, concurrency 8, {args.duration:g} s per run: req/s, p50 ms, p99 ms")
        loads, cpu = predict_runs(package, work, stores, args)
        off = statistics.median(load.requests_per_s for load in loads["off"])
        best_off = max(load.requests_per_s for load in loads["off"])
        cpu_off = statistics.median(cpu["off"])
        print(
            f"\n{'store':>10} {'req/s med':>10} {'best':>9} {'p99 med':>8} {'on/off med':>11} "
            f"{'best/best':>10} {'CPU µs/req':>11} {'off/on CPU':>11}"
        )
        for name, runs in loads.items():
            median = statistics.median(load.requests_per_s for load in runs)
            best = max(run.requests_per_s for run in runs)
            per_request = statistics.median(cpu[name])
            print(
                f"{name:>10} {median:>10,.0f} {best:>9,.0f} "
                f"{statistics.median(run.p99_ms for run in runs):>8.2f} {median / off:>11.1%} "
                f"{best / best_off:>10.1%} {per_request:>11.1f} {cpu_off / per_request:>11.1%}"
            )
        print(f"targets: on/off >= {TARGETS['on_vs_off']:.0%}, p99 <= {TARGETS['p99_ms']:g} ms")

        print(f"\nthe writer alone, {args.rows:,} rows queued in groups of 8: rows/s")
        targets = {"sqlite": f"sqlite:///{work / 'writer.db'}"}
        if pg is not None:
            targets["postgresql"] = pg.create_database()
        for name, url in targets.items():
            writer_rate, database_rate = writer_throughput(url, args.rows)
            print(f"{name:>10}: writer {writer_rate:>9,.0f}   inserts alone {database_rate:>9,.0f}")


if __name__ == "__main__":
    main()
