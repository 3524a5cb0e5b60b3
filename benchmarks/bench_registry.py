"""The serving image in registry mode vs package mode: time to ready and resident memory.

    .venv/bin/python benchmarks/bench_registry.py [--starts 3] [--keep-engine]

Sets up what tests/e2e/test_container_registry.py does (a throwaway PostgreSQL or
HEARTML_TEST_POSTGRES_URL, an `mlflow server` with proxied artifacts, a one-model project:
`heartml data`, `train`, `track`, `package`, which uploads the package to the version's run),
builds the serving image (scripts/build-image.sh; dockerd started if none runs), then starts the
container `--starts` times in each mode, alternating:

- registry: HEARTML_MODEL_SOURCE=registry, nothing mounted: the champion is looked up and its
  package downloaded over MLflow's REST API;
- package: the same package mounted read-only at /app/packages (the default mode).

Time to ready: `docker run` to the first 200 of /ready (container creation included). RSS:
VmRSS of the container's process 1 (uvicorn, the whole service) after 200 /predict requests.
Goals of the serving issue: ready <= 3 s, RSS <= 150 MB. Prints numbers; asserts nothing.
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

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
for folder in ("tests/integration", "tests/e2e", "benchmarks"):
    sys.path.insert(0, str(ROOT / folder))

from bench_serving import SEED_ROW, machine_line  # noqa: E402
from container_engine import (  # noqa: E402
    IMAGE,
    container_rss_mb,
    docker_engine,
    ensure_serving_image,
    run_registry_container,
)
from harness.mlflow_server import MlflowServer  # noqa: E402
from harness.postgres import POSTGRES_URL_ENV, Postgres, throwaway_postgres  # noqa: E402
from harness.processes import free_port  # noqa: E402
from harness.projects import Project, new_project, small_config_text  # noqa: E402

MODEL = "heart_disease_logistic_regression"
GOALS = {"ready_s": 3.0, "rss_mb": 150.0}


def one_model_project(root: Path, tracking_uri: str) -> Project:
    root = new_project(root)
    raw = yaml.safe_load(small_config_text())
    raw["models"] = {"logistic_regression": raw["models"]["logistic_regression"]}
    (root / "configs" / "pipeline.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    project = Project(root, tracking_uri)
    for command in (("heartml", "data"), ("heartml", "train"), ("heartml", "track"),
                    ("heartml", "package")):  # fmt: skip
        started = time.perf_counter()
        result = project.run(*command, timeout=900)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
        print(f"  {' '.join(command)}: {time.perf_counter() - started:.0f} s")
    return project


def start_once(docker: str, mode: str, server_url: str, package: Path) -> tuple[float, float]:
    port = free_port()
    env = {"UVICORN_PORT": str(port), "HEARTML_SERVE_RELOAD_INTERVAL_S": "5"}
    extra: list[str] = []
    if mode == "registry":
        env.update(
            HEARTML_MODEL_SOURCE="registry",
            MLFLOW_TRACKING_URI=server_url,
            HEARTML_REGISTRY_MODELS=MODEL,
        )
    else:
        extra = ["-v", f"{package.parent}:/app/packages:ro"]
    with run_registry_container(docker, env, extra_args=extra) as container:
        url = f"http://127.0.0.1:{port}"
        while True:
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() - container.started > 60:
                raise SystemExit(f"{mode}: not ready after 60 s\n{container.logs()[-3000:]}")
            time.sleep(0.01)
        ready = time.monotonic() - container.started
        with httpx.Client(base_url=url, timeout=5) as client:
            for _ in range(200):
                assert client.post("/predict", json=SEED_ROW).status_code == 200
        return ready, container_rss_mb(docker, container.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()
    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="heartml-bench-registry-") as tmp:
        workdir = Path(tmp)
        url = os.environ.get(POSTGRES_URL_ENV)
        with throwaway_postgres() if not url else _given(url) as postgres:
            mlflow_dir = workdir / "mlflow"
            mlflow_dir.mkdir()
            server = MlflowServer(postgres.create_database(), mlflow_dir).start()
            try:
                project = one_model_project(workdir / "project", server.url)
                package = next((project.root / "packages").glob("heart_disease_model_*"))
                staged = workdir / "mounted" / package.name  # world-readable for uid 10001
                shutil.copytree(package, staged)
                for path in [workdir, staged.parent, *staged.rglob("*"), staged]:
                    path.chmod(path.stat().st_mode | 0o555 if path.is_dir() else 0o644)
                with docker_engine(workdir) as docker:
                    ensure_serving_image(docker, workdir)
                    results: dict[str, list[tuple[float, float]]] = {"registry": [], "package": []}
                    for start in range(args.starts):
                        for mode in ("registry", "package"):
                            ready, rss = start_once(docker, mode, server.url, staged)
                            results[mode].append((ready, rss))
                            print(
                                f"  start {start + 1} {mode:>8}: ready {ready:.2f} s, RSS {rss:.0f} MB"
                            )
            finally:
                server.stop()
    print(f"\nimage {IMAGE}, {args.starts} starts per mode (median, max):")
    for mode, runs in results.items():
        ready = [r for r, _ in runs]
        rss = [m for _, m in runs]
        print(
            f"  {mode:>8}: ready {statistics.median(ready):.2f} s (max {max(ready):.2f}), "
            f"RSS {statistics.median(rss):.0f} MB (max {max(rss):.0f})"
        )
    registry = results["registry"]
    ready_ok = max(r for r, _ in registry) <= GOALS["ready_s"]
    rss_ok = max(m for _, m in registry) <= GOALS["rss_mb"]
    print(
        f"  goals (registry mode): ready <= {GOALS['ready_s']:g} s {'met' if ready_ok else 'NOT met'}, "
        f"RSS <= {GOALS['rss_mb']:g} MB {'met' if rss_ok else 'NOT met'}"
    )


class _given:
    """HEARTML_TEST_POSTGRES_URL's server as a context manager (its databases dropped after)."""

    def __init__(self, url: str) -> None:
        self.server = Postgres(url)

    def __enter__(self) -> Postgres:
        return self.server

    def __exit__(self, *exc: object) -> None:
        self.server.drop_created()


if __name__ == "__main__":
    main()
