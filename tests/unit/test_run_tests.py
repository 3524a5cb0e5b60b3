"""run_tests.py's selections mean what they say: --unit leaves out slow and integration tests,
the flags combine as a union, and a test that no selection would run is a collection error."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.deploy

REPO_ROOT = Path(__file__).resolve().parents[2]


MARKER_DUMP = """
import json

def pytest_collection_finish(session):
    with open(__import__("os").environ["HEARTML_MARKER_DUMP"], "w") as out:
        for item in session.items:
            out.write(json.dumps([item.nodeid, sorted({m.name for m in item.iter_markers()})]))
            out.write("\\n")
"""


def collected(*args: str, dump: Path | None = None) -> dict[str, set[str]]:
    """Node id -> marker names of what `args` (a run_tests.py or pytest command line) would run."""
    assert dump is not None
    (dump.parent / "marker_dump.py").write_text(MARKER_DUMP)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(dump.parent), os.environ.get("PYTHONPATH")])
        ),
        "HEARTML_MARKER_DUMP": str(dump),
    }
    result = subprocess.run(
        [
            sys.executable,
            *args,
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "marker_dump",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = [json.loads(line) for line in dump.read_text().splitlines()]
    return {node: set(markers) for node, markers in rows}


def root_conftest(config: pytest.Config) -> ModuleType:
    for plugin in config.pluginmanager.get_plugins():
        if getattr(plugin, "__file__", None) == str(REPO_ROOT / "tests" / "conftest.py"):
            return plugin  # type: ignore[no-any-return]
    raise AssertionError("tests/conftest.py is not loaded")


def run_tests_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_tests", REPO_ROOT / "run_tests.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_command_lines() -> None:
    run_tests = run_tests_module()
    assert run_tests.pytest_command([], False, [])[1:] == ["-m", "pytest"]
    assert run_tests.pytest_command(["task1", "serving"], False, ["-x"])[3:] == [
        "-m",
        "(task1 or serving)",
        "-x",
    ]
    unit = run_tests.pytest_command(["task2"], True, [])
    assert unit[3:] == [
        str(REPO_ROOT / "tests" / "unit"),
        "-m",
        "task2 and not slow and not integration",
    ]


@pytest.mark.slow
def test_unit_leaves_out_slow_and_integration_tests(tmp_path: Path) -> None:
    unit = collected("run_tests.py", "--unit", "--", dump=tmp_path / "unit.jsonl")
    everything = collected("-m", "pytest", "tests/unit", dump=tmp_path / "all.jsonl")
    left_out = {node for node, markers in everything.items() if markers & {"slow", "integration"}}
    assert left_out, "tests/unit has slow tests: the exclusion must have something to exclude"
    assert set(unit) == set(everything) - left_out
    assert all(node.startswith("tests/unit/") for node in unit)


def test_a_test_without_a_selection_marker_is_a_collection_error(
    pytestconfig: pytest.Config,
) -> None:
    conftest = root_conftest(pytestconfig)

    class Item:
        def __init__(self, nodeid: str, *markers: str) -> None:
            self.nodeid = nodeid
            self.markers = [getattr(pytest.mark, name).mark for name in markers]

        def iter_markers(self) -> list[pytest.Mark]:
            return self.markers

    selected = [Item("tests/a.py::test_a", "task2", "slow"), Item("tests/b.py::test_b", "deploy")]
    conftest.pytest_collection_modifyitems(pytestconfig, selected)  # every test has one: fine
    orphan = Item("tests/c.py::test_c", "slow", "integration")
    with pytest.raises(pytest.UsageError, match=r"tests/c\.py::test_c") as raised:
        conftest.pytest_collection_modifyitems(pytestconfig, [*selected, orphan])
    assert "1 tests carry none of the run_tests.py selection markers" in str(raised.value)
    assert "tests/a.py" not in str(raised.value)
