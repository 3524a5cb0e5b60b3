"""The serving image's Dockerfile, .dockerignore and runtime requirements.

hadolint lints the Dockerfile; the rest reads it as data and checks it against the app: the port,
the health route, the non-root user, and that requirements/serving.txt is exactly the service's
dependency closure — nothing of the training stack — at the versions the project is locked to.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from deploy_helpers import REPO_ROOT, require_tool, run_tool
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.deploy

DOCKERFILE = REPO_ROOT / "deploy" / "docker" / "Dockerfile"
SERVING_TXT = REPO_ROOT / "requirements" / "serving.txt"
CONSTRAINTS = REPO_ROOT / "requirements" / "constraints.txt"
# What the prediction service imports (FastAPI app + uvicorn with uvloop/httptools + onnxruntime;
# the prediction store: SQLAlchemy, Alembic, psycopg2 for PostgreSQL).
SERVING_ROOTS = [
    "fastapi", "uvicorn", "uvloop", "httptools", "onnxruntime", "numpy", "pydantic",
    "pydantic-settings", "orjson", "prometheus-client", "pyyaml", "sqlalchemy", "alembic",
    "psycopg2-binary",
    "httpx",  # registry mode: MLflow's REST API (heartml.serving.registry_client)
]  # fmt: skip
TRAINING_STACK = {
    "mlflow", "mlflow-skinny", "scikit-learn", "pandas", "scipy", "matplotlib", "skl2onnx",
    "onnx", "skops", "pandera", "optuna", "dask", "pyarrow", "typer", "rich", "jinja2",
}  # fmt: skip
# Imported only if installed (try/except ImportError: anyio -> sniffio, uvicorn.supervisors ->
# watchfiles for --reload), or by site-packages hooks (setuptools' distutils shim).
OPTIONAL_IMPORTS = {"sniffio", "watchfiles", "setuptools", "pip"}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined: list[str] = []
    buffer = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        joined.append(buffer + stripped)
        buffer = ""
    result = []
    for entry in joined:
        keyword, _, rest = entry.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def stages() -> dict[str, list[tuple[str, str]]]:
    named: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for keyword, rest in instructions():
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.IGNORECASE)
            assert match, rest
            current = named.setdefault(match.group(2) or match.group(1), [])
        if current is not None:
            current.append((keyword, rest))
    return named


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in stage:
        if keyword == "ENV":
            for match in re.finditer(r'(\w+)=("[^"]*"|\S+)', rest):
                env[match.group(1)] = match.group(2).strip('"')
    return env


def test_hadolint_passes() -> None:
    hadolint = require_tool("hadolint")
    run_tool([hadolint, "--failure-threshold", "info", str(DOCKERFILE)])


def test_base_image_argument_and_targets() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim$", text, re.MULTILINE)
    named = stages()
    assert {"serving-deps", "serving", "pipeline"} <= set(named)
    for name in ("serving-deps", "serving", "pipeline"):
        assert named[name][0] == ("FROM", f"${{BASE_IMAGE}} AS {name}")
    # The classic builder builds every stage before the target: serving must come first.
    order = list(named)
    assert order.index("serving") < order.index("pipeline")
    # A plain build (no --target) gives the serving image.
    assert instructions()[-1] == ("FROM", "serving AS default")


def test_serving_stage_is_non_root_with_healthcheck_port_and_uvicorn_entrypoint(
    app_routes: dict[str, set[str]],
) -> None:
    serving = stages()["serving"]
    keywords = dict(serving)
    user = keywords["USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {user}: must be a numeric non-root uid"

    env = env_of(serving)
    port = env["UVICORN_PORT"]
    assert keywords["EXPOSE"] == port == "8000"
    assert env["UVICORN_HOST"] == "0.0.0.0"

    healthcheck = keywords["HEALTHCHECK"]
    assert "/health" in healthcheck and "urllib.request" in healthcheck
    assert "curl" not in healthcheck and "wget" not in healthcheck
    assert "/health" in app_routes and "GET" in app_routes["/health"]

    entrypoint = json.loads(keywords["ENTRYPOINT"])
    assert entrypoint[:2] == ["uvicorn", "--factory"]
    module, _, factory = entrypoint[2].partition(":")
    assert (module, factory) == ("heartml.serving.app", "create_app")
    # uvicorn really reads UVICORN_<OPTION> from the environment (click's auto_envvar_prefix).
    from uvicorn.main import main as uvicorn_cli

    assert uvicorn_cli.context_settings.get("auto_envvar_prefix") == "UVICORN"
    options = {opt for param in uvicorn_cli.params for opt in param.opts}
    for name in env:
        if name.startswith("UVICORN_"):
            flag = "--" + name.removeprefix("UVICORN_").lower().replace("_", "-")
            assert flag in options, f"{name}: uvicorn has no option {flag}"
    # HEARTML_* variables set in the image are real settings.
    from heartml.settings import Settings

    fields = {f"HEARTML_{name.upper()}" for name in Settings.model_fields}
    assert {name for name in env if name.startswith("HEARTML_")} <= fields


def test_serving_stage_installs_only_the_pinned_runtime() -> None:
    deps = " ".join(rest for keyword, rest in stages()["serving-deps"] if keyword == "RUN")
    assert "--no-deps -r /tmp/build-ca/serving.txt" in deps
    assert "pip check" in deps
    assert "pip install --no-deps /build/heartml" in deps
    copied = [rest for keyword, rest in stages()["serving"] if keyword == "COPY"]
    assert all("--from=serving-deps" in rest for rest in copied), copied


def test_ca_bundle_never_reaches_a_final_image() -> None:
    """The optional pip CA bundle is copied into build stages only and deleted there."""
    for name in ("serving", "default"):
        assert not any(".build-ca" in rest for _, rest in stages()[name])
    gitignore = (REPO_ROOT / ".gitignore").read_text().splitlines()
    assert "/.build-ca/" in gitignore


def _pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not pinned with =="
            pins[canonicalize_name(name)] = version
    return pins


def test_serving_requirements_are_pinned_like_the_lock() -> None:
    serving, lock = _pins(SERVING_TXT), _pins(CONSTRAINTS)
    for name, version in serving.items():
        assert lock.get(name) == version, (
            f"{name}=={version} in serving.txt, {lock.get(name)} in constraints"
        )
    assert not (set(serving) & TRAINING_STACK), set(serving) & TRAINING_STACK


def _closure(roots: list[str]) -> set[str]:
    """Installed distributions needed by roots (markers evaluated, no extras beyond uvicorn's)."""
    seen: set[str] = set()
    todo = [canonicalize_name(root) for root in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for spec in metadata.requires(name) or []:
            requirement = Requirement(spec)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue
            todo.append(canonicalize_name(requirement.name))
    return seen


def test_serving_requirements_are_the_complete_closure() -> None:
    """serving.txt is installed with --no-deps, so it must hold every dependency itself."""
    serving = set(_pins(SERVING_TXT))
    closure = _closure(SERVING_ROOTS)
    assert closure - serving == set(), f"missing from serving.txt: {sorted(closure - serving)}"
    assert serving - closure == set(), f"not needed by the service: {sorted(serving - closure)}"


def test_serving_import_path_stays_light() -> None:
    """Importing and building the app (and loading onnxruntime) pulls in only serving.txt."""
    code = (
        "import sys, json\n"
        "from heartml.serving.app import create_app\n"
        "create_app()\n"
        "import heartml.onnx_runtime, uvicorn, uvloop, httptools\n"
        "print(json.dumps({n: getattr(m, '__file__', None) for n, m in list(sys.modules.items())}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    modules = json.loads(result.stdout)
    heavy = {"pandas", "sklearn", "mlflow", "scipy", "matplotlib", "pyarrow", "skl2onnx", "onnx"}
    loaded_heavy = heavy & {m.split(".")[0] for m in modules}
    assert not loaded_heavy, f"the serving path imports {sorted(loaded_heavy)}"

    # Every imported module's distribution is in serving.txt (or optional / stdlib / heartml):
    # the top-level import name gives the candidate distributions, their RECORD decides.
    candidates = metadata.packages_distributions()
    assert "pandas" in candidates.get("pandas", []), "the mapping this check relies on is empty"
    records: dict[str, set[str]] = {}

    def files_of(dist_name: str) -> set[str]:
        if dist_name not in records:
            dist = metadata.distribution(dist_name)
            records[dist_name] = {
                str(Path(str(dist.locate_file(f))).resolve()) for f in dist.files or []
            }
        return records[dist_name]

    serving = set(_pins(SERVING_TXT)) | {"heartml"} | OPTIONAL_IMPORTS
    outside: dict[str, str] = {}
    for name, file in modules.items():
        if not file:
            continue
        path = str(Path(file).resolve())
        for dist_name in candidates.get(name.split(".")[0], []):
            owner = canonicalize_name(dist_name)
            if owner not in serving and path in files_of(dist_name):
                outside[name] = owner
    assert not outside, f"imported from distributions outside serving.txt: {outside}"


def test_dockerignore_is_an_allow_list_with_what_the_builds_copy() -> None:
    lines = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied: set[str] = set()
    for keyword, rest in instructions():
        if keyword == "COPY" and "--from=" not in rest:
            sources = [s for s in rest.split()[:-1] if not s.startswith("--")]
            copied.update(sources)
    for source in copied:
        base = source.replace("[e]", "e").rstrip("*").rstrip("/")
        top = base.split("/")[0]
        assert any(base == a or base.startswith(a + "/") or a == top for a in allowed), (
            f"COPY {source} is not let through by .dockerignore"
        )
    for secret_like in (".env", ".git", "mlflow.db", "mlruns"):
        assert secret_like not in allowed
