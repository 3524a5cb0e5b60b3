"""Prediction service vs `mlflow models serve`, measured side by side in one run (wrk, loopback).

    .venv/bin/python benchmarks/bench_serving.py [--duration 10] [--quick] [--workers N]
                                                 [--repeats 3] [--project DIR] [--keep]
                                                 [--no-mlflow] [--json PATH] [--protocols]

In a throwaway copy of the project (data/raw and configs/ copied into a temporary folder):
`heartml data --offline`, `heartml track` (the four models, embedded MLflow store), then
`heartml package` for the champion and `heartml package --model NAME --version N` for the other
three registered versions (packaging reads the registry; it never creates a version).

Then, one server at a time, each with the same worker count:
1. The registered random-forest version, and the champion: OUR server
   (`heartml serve --package DIR`) against `mlflow models serve -m models:/NAME/N
   --env-manager local` of the same version. Single-row requests (ours: the seed's JSON body to
   /predict; MLflow's: the same row as `dataframe_split` to /invocations) at concurrency 1 and 8:
   req/s, p50, p99 (wrk --latency) and the ratios ours / MLflow.
2. Every model's package (all four): our /predict against our own /health at concurrency 8 (and
   1), alternating, `--repeats` times each; the median and the best run count, since other work
   on a shared machine slows single runs down.
3. Cold start, spawn to the first 200 of /ready (ours) or /ping (MLflow's liveness route; it also
   answers /health), and the resident memory of each server's process tree (VmRSS of the server
   and every descendant, summed: workers included) after its load runs.

`--protocols`: only the other protocols' doors, single-row requests at c=8 on the random forest
and the champion: MLflow's `/invocations` (a one-row `dataframe_split`, as MLflow's client sends
a DataFrame) and the Open Inference `/v2/models/{name}/infer` (an FP64 tensor [1, 13]) against
our `/predict` (alternating runs, medians) and against `mlflow models serve`'s `/invocations`.

Prints numbers and ratios, and how they compare with the targets of the serving issue; asserts
nothing. wrk (Debian's package) generates the load: `apt-get install -y wrk` if it is missing.
Every run is bounded (--duration seconds) and targets 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/results.py

import results  # noqa: E402

BIN = Path(sys.executable).parent
SEED_ROW: dict[str, float] = {
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
TARGETS = {
    "rf_vs_mlflow_c8": 40.0,  # our random forest req/s / MLflow's, concurrency 8
    "predict_vs_health": 0.80,  # /predict req/s / /health req/s, every model
    "p99_ms_c8": 15.0,
    "cold_start_s": 3.0,
    "rss_mb": 250.0,
}
START_TIMEOUT_S = 120.0


# --------------------------------------------------------------------------------------------
# wrk


@dataclass(frozen=True)
class Load:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx responses + socket errors

    def row(self) -> str:
        return f"{self.requests_per_s:>9,.0f} {self.p50_ms:>8.2f} {self.p99_ms:>8.2f}"


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> Load:
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    total = re.search(r"(\d+) requests in", output)
    if not (rate and p50 and p99 and total):
        raise RuntimeError(f"could not read wrk's output:\n{output}")
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket:
        errors += sum(int(n) for n in socket.groups())
    return Load(
        float(rate.group(1)), _ms(p50.group(1)), _ms(p99.group(1)), int(total.group(1)), errors
    )


def lua_post(folder: Path, name: str, body: dict[str, Any]) -> Path:
    """A wrk script that POSTs `body` as JSON. A JSON `]]` would end a Lua `[[...]]` string,
    hence the level-2 long bracket."""
    text = json.dumps(body, separators=(",", ":"))
    assert "]==]" not in text
    path = folder / f"{name}.lua"
    path.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [==[{text}]==]\n"
    )
    return path


def wrk(url: str, connections: int, seconds: float, script: Path | None = None) -> Load:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    result = subprocess.run(
        [*command, url], capture_output=True, text=True, timeout=seconds + 30, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr or result.stdout}")
    load = parse_wrk(result.stdout)
    if load.errors:
        print(f"    ! {load.errors} failed requests in {url} (c={connections})")
    return load


# --------------------------------------------------------------------------------------------
# Processes


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def rss_mb(pids: list[int]) -> float:
    total_kb = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


def http_status(port: int, path: str) -> int | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    cold_start_s: float
    log: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def rss(self) -> tuple[float, float]:
        """MB of (the whole process tree, the serving processes only). `mlflow models serve` is
        a Python CLI that starts uvicorn as a child and waits: its serving processes are that
        uvicorn and its workers. Ours is the uvicorn process itself (and its workers)."""
        tree = process_tree(self.process.pid)
        server = next((pid for pid in tree if b"uvicorn" in _cmdline(pid)), None)
        serving = process_tree(server) if server is not None else tree
        return rss_mb(tree), rss_mb(serving)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(
    name: str, command: list[str], ready_path: str, cwd: Path, env: dict[str, str], port: int
) -> Iterator[Server]:
    """Start `command` in its own process group, time spawn -> first 200 on `ready_path`, and
    stop the whole group at the end (MLflow's CLI runs uvicorn as a child)."""
    log = cwd / f"{name.replace(' ', '_').replace('/', '_')}.log"
    with log.open("wb") as sink:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited early:\n{log.read_text()[-3000:]}")
                if http_status(port, ready_path) == 200:
                    break
                if time.perf_counter() - started > START_TIMEOUT_S:
                    raise RuntimeError(f"{name} not ready after {START_TIMEOUT_S:.0f} s")
                time.sleep(0.01)
            cold = time.perf_counter() - started
            yield Server(name, process, port, cold, log)
        finally:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


# --------------------------------------------------------------------------------------------
# The throwaway project


@dataclass(frozen=True)
class Project:
    root: Path
    env: dict[str, str]
    champion: tuple[str, str]  # registered name, version
    packages: dict[str, Path]  # registered name -> package folder
    versions: dict[str, str]  # registered name -> version packaged

    @property
    def tracking_uri(self) -> str:
        return self.env["MLFLOW_TRACKING_URI"]


def project_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTML_")}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # mlflow runs `uvicorn` by name
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env


def heartml(root: Path, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [str(BIN / "heartml"), *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"heartml {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def prepare_project(root: Path, reuse: bool) -> Project:
    env = project_env(root)
    if not reuse:
        shutil.copytree(ROOT / "data" / "raw", root / "data" / "raw")
        shutil.copytree(ROOT / "configs", root / "configs")
        for step in (("data", "--offline"), ("track",)):
            started = time.perf_counter()
            heartml(root, env, *step)
            print(f"  heartml {' '.join(step)}: {time.perf_counter() - started:.0f} s")
    registry = registry_listing(root, env)
    champion = next(
        (name, item["version"])
        for name, versions in registry.items()
        for item in versions
        if "champion" in item["aliases"]
    )
    packages: dict[str, Path] = {}
    versions: dict[str, str] = {}
    for name, listing in registry.items():
        version = champion[1] if name == champion[0] else listing[-1]["version"]
        algorithm = name.removeprefix("heart_disease_")
        folder = root / "packages" / f"heart_disease_model_{algorithm}_v{version}"
        if not folder.is_dir():
            started = time.perf_counter()
            args = ("package",) if name == champion[0] else ("package", "--model", name)
            args += () if name == champion[0] else ("--version", version)
            heartml(root, env, *args)
            print(f"  heartml {' '.join(args)}: {time.perf_counter() - started:.0f} s")
        packages[name], versions[name] = folder, version
    return Project(root, env, champion, packages, versions)


def registry_listing(root: Path, env: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Every registered version with its aliases, read in a child process with the project's
    settings (the benchmark process itself keeps no MLflow state)."""
    code = (
        "import dataclasses, json; from heartml.settings import Settings;"
        "from heartml.tracking.registry import Registry;"
        "listing = Registry.connect(Settings()).listing();"
        "print(json.dumps({n: [dataclasses.asdict(e) for e in es] for n, es in listing.items()}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    listing: dict[str, list[dict[str, Any]]] = json.loads(result.stdout.strip().splitlines()[-1])
    return listing


# --------------------------------------------------------------------------------------------
# Measurements


def ours(project: Project, name: str, workers: int, loop: str = "auto", http: str = "auto") -> Any:
    port = free_port()
    command = [
        str(BIN / "heartml"),
        "serve",
        "--package",
        str(project.packages[name]),
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        loop,
        "--http",
        http,
    ]
    return running(f"ours {name}", command, "/ready", project.root, project.env, port)


def mlflow(project: Project, name: str, version: str, workers: int) -> Any:
    port = free_port()
    command = [
        str(BIN / "mlflow"),
        "models",
        "serve",
        "-m",
        f"models:/{name}/{version}",
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return running(f"mlflow {name}", command, "/ping", project.root, project.env, port)


def warm(url: str, script: Path | None) -> None:
    wrk(url, 8, 1.0, script)


def fmt_ratio(value: float) -> str:
    return f"{value:,.1f}x" if value >= 10 else f"{value:.2f}x"


def compare_with_mlflow(
    project: Project, name: str, args: argparse.Namespace, scripts: dict[str, Path]
) -> dict[str, Any]:
    version = project.versions[name]
    print(f"\n== {name} version {version}: ours vs mlflow models serve ({args.workers} worker(s))")
    result: dict[str, Any] = {"name": name, "version": version}
    with ours(project, name, args.workers) as server:
        warm(server.url("/predict"), scripts["ours"])
        result["ours"] = {
            c: wrk(server.url("/predict"), c, args.duration, scripts["ours"]) for c in (1, 8)
        }
        result["ours_cold_s"] = server.cold_start_s
        result["ours_rss"] = server.rss()
    if args.no_mlflow:
        return result
    with mlflow(project, name, version, args.workers) as server:
        warm(server.url("/invocations"), scripts["mlflow"])
        result["mlflow"] = {
            c: wrk(server.url("/invocations"), c, args.duration, scripts["mlflow"]) for c in (1, 8)
        }
        result["mlflow_cold_s"] = server.cold_start_s
        result["mlflow_rss"] = server.rss()
    print(f"{'':18} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for c in (1, 8):
        ours_load, theirs = result["ours"][c], result["mlflow"][c]
        print(f"ours    c={c:<9} {ours_load.row()}")
        print(f"mlflow  c={c:<9} {theirs.row()}")
        print(
            f"ratio   c={c:<9} {fmt_ratio(ours_load.requests_per_s / theirs.requests_per_s):>9} "
            f"{ours_load.p50_ms / theirs.p50_ms:>8.3f} {ours_load.p99_ms / theirs.p99_ms:>8.3f}"
            "   (ours / mlflow)"
        )
    print(
        f"cold start to ready: ours {result['ours_cold_s']:.2f} s, "
        f"mlflow {result['mlflow_cold_s']:.2f} s"
    )
    print(
        f"RSS (process tree / serving processes): ours {result['ours_rss'][0]:.0f} / "
        f"{result['ours_rss'][1]:.0f} MB, mlflow {result['mlflow_rss'][0]:.0f} / "
        f"{result['mlflow_rss'][1]:.0f} MB"
    )
    return result


def predict_vs_health(
    project: Project, name: str, args: argparse.Namespace, scripts: dict[str, Path]
) -> dict[Any, Any]:
    result: dict[Any, Any] = {"name": name}
    with ours(project, name, args.workers) as server:
        warm(server.url("/health"), None)
        warm(server.url("/predict"), scripts["ours"])
        for c in (8, 1):
            health: list[Load] = []
            predict: list[Load] = []
            for _ in range(args.repeats):  # alternating, so that both see the same neighbours
                health.append(wrk(server.url("/health"), c, args.ratio_duration))
                predict.append(wrk(server.url("/predict"), c, args.ratio_duration, scripts["ours"]))
            result[c] = (health, predict)
        result["cold_s"] = server.cold_start_s
        result["rss"] = server.rss()
    return result


MATRIX = (  # (loop, http parser, workers)
    ("uvloop", "httptools", 1),
    ("uvloop", "h11", 1),
    ("asyncio", "httptools", 1),
    ("asyncio", "h11", 1),
    ("uvloop", "httptools", 2),
    ("asyncio", "h11", 2),
)


def settings_matrix(project: Project, args: argparse.Namespace, scripts: dict[str, Path]) -> None:
    """Event loop x HTTP parser x worker count, on the random forest: /health and /predict."""
    name = "heart_disease_random_forest"
    print(f"\n== server settings ({name}; median of {args.repeats} alternating runs)")
    print(
        f"{'loop':8} {'http':10} {'workers':>7} {'c':>2} {'health req/s':>13} "
        f"{'predict req/s':>14} {'ratio':>6} {'health p99':>11} {'predict p99':>12}"
    )
    for loop, parser, workers in MATRIX:
        with ours(project, name, workers, loop, parser) as server:
            warm(server.url("/health"), None)
            warm(server.url("/predict"), scripts["ours"])
            for c in (8, 1):
                health, predict = [], []
                for _ in range(args.repeats):
                    health.append(wrk(server.url("/health"), c, args.ratio_duration))
                    predict.append(
                        wrk(server.url("/predict"), c, args.ratio_duration, scripts["ours"])
                    )
                print(
                    f"{loop:8} {parser:10} {workers:>7} {c:>2} {median_rate(health):>13,.0f} "
                    f"{median_rate(predict):>14,.0f} "
                    f"{median_rate(predict) / median_rate(health):>6.0%} "
                    f"{statistics.median(x.p99_ms for x in health):>8.2f} ms "
                    f"{statistics.median(x.p99_ms for x in predict):>9.2f} ms"
                )
    json_costs()


def json_costs() -> None:
    """The request path's JSON work, per request, with each library (in-process, best of 5)."""
    import json as stdlib_json
    import timeit

    import orjson

    from heartml.serving.contract import build_contract
    from heartml.serving.fast_check import patient_row
    from heartml.serving.schemas import PredictionResponse
    from heartml.spec import load_spec

    contract = build_contract(load_spec(ROOT / "configs" / "datasets" / "uci_heart.yaml"))
    record = contract.record
    body = json.dumps(SEED_ROW).encode()
    response = {
        "prediction": 0,
        "probability": 0.2204500138759613,
        "risk_level": "low",
        "imputed_fields": [],
        "note": None,
        "model_name": "heart_disease_random_forest",
        "model_version": "1",
        "request_id": "0123456789abcdef01234567",
    }
    model = PredictionResponse(**response)
    cases = {
        "parse+validate: orjson + patient_row (ours)": lambda: patient_row(body, contract),
        "parse+validate: pydantic model_validate_json": lambda: contract.record_row(
            record.model_validate_json(body)
        ),
        "parse+validate: json.loads + model_validate": lambda: contract.record_row(
            record.model_validate(stdlib_json.loads(body))
        ),
        "serialise: orjson.dumps(dict) (ours)": lambda: orjson.dumps(response),
        "serialise: json.dumps(dict).encode()": lambda: stdlib_json.dumps(response).encode(),
        "serialise: pydantic model_dump_json": lambda: model.model_dump_json(),
    }
    print("\n== JSON work per request (in-process, best of 5 x 20,000)")
    for label, call in cases.items():
        seconds = min(timeit.repeat(call, number=20_000, repeat=5)) / 20_000
        print(f"{label:48} {seconds * 1e6:6.2f} µs")


def protocol_bodies(columns: list[str]) -> dict[str, dict[str, Any]]:
    """One record in each protocol: /predict's JSON, MLflow's dataframe_split (what MLflow's own
    client sends for a one-row DataFrame), an Open Inference FP64 tensor [1, k]."""
    row = [SEED_ROW[name] for name in columns]
    return {
        "predict": SEED_ROW,
        "invocations": {"dataframe_split": {"columns": columns, "data": [row]}},
        "infer": {
            "inputs": [{"name": "input", "shape": [1, len(row)], "datatype": "FP64", "data": row}]
        },
    }


def compare_protocols(project: Project, name: str, args: argparse.Namespace) -> None:
    """Single-row req/s at c=8: /invocations and /v2/models/{name}/infer against /predict on
    our server (alternating runs, medians), and against `mlflow models serve` of the version."""
    version = project.versions[name]
    columns = list(SEED_ROW)
    scripts = {
        route: lua_post(project.root, f"protocol_{route}", body)
        for route, body in protocol_bodies(columns).items()
    }
    paths = {
        "predict": "/predict",
        "invocations": "/invocations",
        "infer": f"/v2/models/{name}/infer",
    }
    print(f"\n== {name} version {version}: the protocols at c=8 ({args.repeats} alternating runs)")
    loads: dict[str, list[Load]] = {route: [] for route in paths}
    with ours(project, name, args.workers) as server:
        for route, path in paths.items():
            warm(server.url(path), scripts[route])
        for _ in range(args.repeats):
            for route, path in paths.items():
                loads[route].append(wrk(server.url(path), 8, args.ratio_duration, scripts[route]))
        rss = server.rss()[0]
    theirs: list[Load] = []
    if not args.no_mlflow:
        with mlflow(project, name, version, args.workers) as server:
            warm(server.url("/invocations"), scripts["invocations"])
            theirs = [
                wrk(server.url("/invocations"), 8, args.duration, scripts["invocations"])
                for _ in range(2)
            ]
    predict = median_rate(loads["predict"])
    print(f"{'route':34} {'req/s':>9} {'p99 ms':>8} {'/ /predict':>11} {'/ mlflow':>9}")
    for route, path in paths.items():
        rate = median_rate(loads[route])
        p99 = statistics.median(load.p99_ms for load in loads[route])
        versus = f"{fmt_ratio(rate / median_rate(theirs)):>9}" if theirs else f"{'-':>9}"
        print(f"ours {path:29} {rate:>9,.0f} {p99:>8.2f} {rate / predict:>11.0%} {versus}")
    if theirs:
        print(
            f"mlflow /invocations{'':15} {median_rate(theirs):>9,.0f} "
            f"{statistics.median(load.p99_ms for load in theirs):>8.2f}"
        )
    print(f"our RSS after the runs: {rss:.0f} MB")


def median_rate(loads: list[Load]) -> float:
    return statistics.median(load.requests_per_s for load in loads)


def best_rate(loads: list[Load]) -> float:
    return max(load.requests_per_s for load in loads)


def print_ratios(ratios: list[dict[Any, Any]]) -> None:
    print(
        f"{'model':34} {'c':>2} {'health req/s':>13} {'predict req/s':>14} "
        f"{'ratio':>6}  {'(best runs)':>11} {'predict p99':>11}"
    )
    for result in ratios:
        for c in (8, 1):
            health, predict = result[c]
            median_ratio = median_rate(predict) / median_rate(health)
            best_ratio = best_rate(predict) / best_rate(health)
            p99 = statistics.median(load.p99_ms for load in predict)
            print(
                f"{result['name']:34} {c:>2} {median_rate(health):>13,.0f} "
                f"{median_rate(predict):>14,.0f} {median_ratio:>6.0%}  {best_ratio:>11.0%} "
                f"{p99:>8.2f} ms"
            )


def given_packages(root: Path, args: argparse.Namespace) -> None:
    """/predict vs /health on package folders built elsewhere (e.g. by a test helper), when
    the project's own pipeline cannot build them."""
    packages = {path.resolve().name: path.resolve() for path in args.packages}
    project = Project(root, project_env(root), ("", ""), packages, {})
    scripts = {"ours": lua_post(root, "ours", SEED_ROW)}
    print(f"\n== /predict vs /health, given packages ({args.repeats} alternating runs each)")
    ratios = [predict_vs_health(project, name, args, scripts) for name in packages]
    print_ratios(ratios)
    worst = min((median_rate(r[8][1]) / median_rate(r[8][0]), r["name"]) for r in ratios)
    print(
        f"/predict vs /health at c=8, lowest model: {worst[0]:.0%} ({worst[1]}; target >= "
        f"{TARGETS['predict_vs_health']:.0%})"
    )
    print(f"machine at the end: {machine_line()}")


def machine_line() -> str:
    load = os.getloadavg()
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{datetime.now(UTC).isoformat(timespec='seconds')}  {os.cpu_count()} cores ({cpu})  "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}  python "
        f"{platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="Seconds per wrk run")
    parser.add_argument("--quick", action="store_true", help="3 s runs, 2 repeats")
    parser.add_argument("--workers", type=int, default=None, help="Default: heartml serve's")
    parser.add_argument("--repeats", type=int, default=3, help="/predict vs /health runs each")
    parser.add_argument("--project", type=Path, default=None, help="Reuse/keep a project here")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary project")
    parser.add_argument("--no-mlflow", action="store_true", help="Only our server")
    parser.add_argument(
        "--matrix", action="store_true", help="Only compare loop/HTTP parser/workers/JSON"
    )
    parser.add_argument(
        "--protocols",
        action="store_true",
        help="Only /invocations and /v2/.../infer vs /predict and vs mlflow models serve",
    )
    parser.add_argument(
        "--packages",
        type=Path,
        nargs="+",
        default=None,
        help="Only /predict vs /health, on these package folders (no project is built)",
    )
    parser.add_argument("--json", type=Path, default=None, help="Write the targets' values here")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.repeats = 3.0, 2
    args.ratio_duration = min(args.duration, 5.0)
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk   (Debian's HTTP load generator)")
    if args.workers is None:
        from heartml.serving.server import DEFAULT_WORKERS

        args.workers = DEFAULT_WORKERS

    print(f"machine: {machine_line()}")
    print(f"wrk: {args.duration:g} s per run ({args.ratio_duration:g} s for /predict vs /health)")
    if args.project is not None:
        args.project.mkdir(parents=True, exist_ok=True)
        root, cleanup = args.project.resolve(), None
    else:
        cleanup = tempfile.mkdtemp(prefix="heartml-bench-serving-")
        root = Path(cleanup)
    try:
        if args.packages:
            given_packages(root, args)
            return
        reuse = (root / "mlflow.db").is_file()
        print(f"project: {root}{' (reused)' if reuse else ''}")
        project = prepare_project(root, reuse)
        scripts = {
            "ours": lua_post(root, "ours", SEED_ROW),
            "mlflow": lua_post(
                root,
                "mlflow",
                {"dataframe_split": {"columns": list(SEED_ROW), "data": [list(SEED_ROW.values())]}},
            ),
        }
        if args.matrix:
            settings_matrix(project, args, scripts)
            return
        if args.protocols:
            champion = project.champion[0]
            for name in dict.fromkeys(("heart_disease_random_forest", champion)):
                compare_protocols(project, name, args)
            print(f"machine at the end: {machine_line()}")
            return
        champion = project.champion[0]
        rf = "heart_disease_random_forest"
        print(f"champion: {champion} version {project.champion[1]}")
        print(f"workers: {args.workers} (ours and mlflow)")

        comparisons = [compare_with_mlflow(project, rf, args, scripts)]
        if champion != rf:
            comparisons.append(compare_with_mlflow(project, champion, args, scripts))

        print(f"\n== /predict vs /health, every model ({args.repeats} alternating runs each)")
        ratios = [predict_vs_health(project, name, args, scripts) for name in project.packages]
        print_ratios(ratios)

        print("\n== against the targets (2 cores)")
        first = comparisons[0]
        speedup = None
        if "mlflow" in first:
            speedup = first["ours"][8].requests_per_s / first["mlflow"][8].requests_per_s
            print(
                f"random forest vs mlflow at c=8: {fmt_ratio(speedup)} "
                f"(target >= {TARGETS['rf_vs_mlflow_c8']:.0f}x)"
            )
        worst = min((median_rate(r[8][1]) / median_rate(r[8][0]), r["name"]) for r in ratios)
        print(
            f"/predict vs /health at c=8, lowest model: {worst[0]:.0%} ({worst[1]}; target >= "
            f"{TARGETS['predict_vs_health']:.0%})"
        )
        p99 = max(
            [c["ours"][8].p99_ms for c in comparisons]
            + [statistics.median(x.p99_ms for x in r[8][1]) for r in ratios]
        )
        print(f"our p99 at c=8, worst: {p99:.2f} ms (target <= {TARGETS['p99_ms_c8']:.0f} ms)")
        colds = [c["ours_cold_s"] for c in comparisons] + [r["cold_s"] for r in ratios]
        print(
            f"our cold start to ready: median {statistics.median(colds):.2f} s, worst "
            f"{max(colds):.2f} s over {len(colds)} starts (target <= "
            f"{TARGETS['cold_start_s']:.0f} s)"
        )
        rss = max([c["ours_rss"][0] for c in comparisons] + [r["rss"][0] for r in ratios])
        print(f"our RSS, worst: {rss:.0f} MB (target <= {TARGETS['rss_mb']:.0f} MB)")
        print(f"machine at the end: {machine_line()}")
        results.write(
            args.json,
            "serving",
            [
                results.target(
                    "random forest: ours / mlflow models serve, req/s at c=8",
                    speedup,
                    ">=",
                    TARGETS["rf_vs_mlflow_c8"],
                    "ratio",
                ),
                results.target(
                    f"/predict / /health req/s at c=8, lowest model ({worst[1]})",
                    worst[0],
                    ">=",
                    TARGETS["predict_vs_health"],
                    "ratio",
                ),
                results.target("our p99 at c=8, worst", p99, "<=", TARGETS["p99_ms_c8"], "ms"),
                results.target(
                    "our cold start to /ready, worst",
                    max(colds),
                    "<=",
                    TARGETS["cold_start_s"],
                    "s",
                ),
                results.target("our RSS, worst", rss, "<=", TARGETS["rss_mb"], "MB"),
            ],
        )
    finally:
        if cleanup is not None and not args.keep:
            shutil.rmtree(cleanup, ignore_errors=True)
        elif cleanup is not None:
            print(f"kept: {cleanup}")


if __name__ == "__main__":
    main()
