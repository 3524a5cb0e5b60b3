"""run_tests.py's selections mean what they say: --unit leaves out slow and integration tests,
the flags combine as a union, and a test that no selection would run is a collection error."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.deploy

REPO_ROOT = Path(__file__).resolve().parents[2]


def collected(*args: str) -> set[str]:
    """Node ids that `args` (a run_tests.py or pytest command line) would run."""
    result = subprocess.run(
        [sys.executable, *args, "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {line for line in result.stdout.splitlines() if "::" in line and " " not in line}


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
def test_unit_leaves_out_slow_and_integration_tests() -> None:
    unit = collected("run_tests.py", "--unit", "--")
    left_out = collected("-m", "pytest", "tests/unit", "-m", "slow or integration")
    everything_unit = collected("-m", "pytest", "tests/unit")
    assert left_out, "tests/unit has slow tests: the exclusion must have something to exclude"
    assert unit == everything_unit - left_out
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
