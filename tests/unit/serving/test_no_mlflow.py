"""No mlflow in heartml.serving: not imported by any of its modules (nor by any heartml module
they reach), and registry mode works in an installation where mlflow cannot be imported at
all, as in the serving image."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.serving

SRC = Path(__file__).resolve().parents[3] / "src"
SERVING = SRC / "heartml" / "serving"


def _module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported(path: Path) -> set[str]:
    """Every module an import statement names, at any depth (lazy imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_nothing_heartml_serving_reaches_imports_mlflow() -> None:
    todo = [
        ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        for p in SERVING.rglob("*.py")
    ]
    seen: dict[str, set[str]] = {}
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if name in seen or path is None:
            continue
        seen[name] = _imported(path)
        todo.extend(m for m in seen[name] if m.startswith("heartml."))
    assert "heartml.serving.registry_client" in seen and "heartml.serving.sources" in seen
    offending = {
        m: sorted(n for n in names if n.split(".")[0] == "mlflow") for m, names in seen.items()
    }
    assert not {m: n for m, n in offending.items() if n}, offending
    reached_tracking = {m for m in seen if m.startswith("heartml.tracking")}
    assert reached_tracking <= {"heartml.tracking.versions"}, reached_tracking


def test_registry_mode_runs_where_mlflow_cannot_be_imported(tmp_path: Path) -> None:
    """A fresh interpreter in which importing mlflow, sklearn or pandas fails (as in the image):
    the app is built in registry mode and its watcher asks the registry (nothing listens on the
    port); the outcome is "registry unreachable", not an ImportError."""
    code = textwrap.dedent(
        """
        import asyncio, importlib.abc, json, socket, sys

        class Refuse(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {"mlflow", "sklearn", "pandas"}:
                    raise ImportError(f"{name} is not installed here")
                return None

        sys.meta_path.insert(0, Refuse())
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # closed again: nothing listens there
        from heartml.serving.app import create_app
        from heartml.settings import Settings

        settings = Settings(
            root=sys.argv[1], model_source="registry",
            MLFLOW_TRACKING_URI=f"http://127.0.0.1:{port}",
            registry_models="heart_disease_svm", registry_retries=0,
        )
        app = create_app(settings)
        outcome = asyncio.run(app.state.service.store.refresh())
        status = app.state.service.store.source_status()
        print(json.dumps({"status": outcome.status, "detail": outcome.detail,
                          "registry": status["state"],
                          "mlflow": any(m.split(".")[0] == "mlflow" for m in sys.modules)}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer == {
        "status": "unavailable",
        "detail": "model registry unreachable and no model package to fall back to",
        "registry": "unreachable",
        "mlflow": False,
    }, answer


def test_the_command_line_loads_no_training_stack_before_a_command_runs() -> None:
    """`heartml serve` goes through the CLI: importing it (every command's module, as Typer
    builds the app) must not load scikit-learn, pandas, joblib, scipy or mlflow: the serving
    process never unpickles, and cold start stays short. A command loads what it needs."""
    script = textwrap.dedent(
        """
        import json, sys
        import heartml.cli
        heavy = ("sklearn", "pandas", "joblib", "scipy", "statsmodels", "mlflow", "cloudpickle")
        print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(heavy))))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout
