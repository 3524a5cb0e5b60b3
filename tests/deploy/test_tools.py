"""Every checker the deploy tests use is really there (installed when missing, never skipped)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from deploy_helpers import PYTHON_TOOLS, SYSTEM_TOOLS, require_tool

pytestmark = pytest.mark.deploy

VERSION_FLAGS = {
    "promtool": ["--version"],
    "prometheus": ["--version"],
    "docker-compose": ["version"],
    "dockerd": ["--version"],
    "debootstrap": ["--version"],
    "hadolint": ["--version"],
    "actionlint": ["--version"],
    "kubernetes-validate": ["--version"],
    "kubectl": ["version", "--client"],
    "yamllint": ["--version"],
}


@pytest.mark.parametrize("tool", sorted(SYSTEM_TOOLS) + sorted(PYTHON_TOOLS))
def test_tool_is_installed_and_runs(tool: str) -> None:
    path = require_tool(tool)
    result = subprocess.run(
        [path, *VERSION_FLAGS[tool]], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"{path} {VERSION_FLAGS[tool]}: {result.stdout}{result.stderr}"
    assert (result.stdout + result.stderr).strip(), f"{tool} printed no version"


def test_install_script_is_idempotent_and_names_real_packages() -> None:
    """scripts/install-system-deps.sh maps each tool to its Debian package, installs only what
    is missing, and says so; with everything present it changes nothing."""
    from deploy_helpers import INSTALL_SCRIPT

    text = INSTALL_SCRIPT.read_text()
    for command, package in SYSTEM_TOOLS.items():
        if command == "prometheus":
            continue  # same package as promtool
        assert f"[cmd:{command}]={package}" in text
    for tool in SYSTEM_TOOLS:
        require_tool(tool)
    result = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "all present" in result.stdout


def test_install_script_names_what_is_missing_in_one_line_when_not_root() -> None:
    """Not root and no password-less sudo: nothing is installed, one line says which Debian
    packages to install, and the exit status is non-zero (so `make test` stops there)."""
    import os
    import pwd
    import shutil
    import tempfile

    from deploy_helpers import INSTALL_SCRIPT

    runner = []
    if os.geteuid() == 0:  # root (CI): run it as an account that is not
        runuser = shutil.which("runuser")
        assert runuser, "runuser (util-linux) is missing"
        runner = [runuser, "-u", pwd.getpwuid(65534).pw_name, "--"]
    # A PATH with the script's own helpers but none of the tools: every command looks missing.
    with tempfile.TemporaryDirectory(prefix="heartml-path-") as folder:
        bin_dir = Path(folder)
        bin_dir.chmod(0o755)
        for helper in ("bash", "sort", "sed", "id", "env"):
            found = shutil.which(helper)
            assert found, helper
            (bin_dir / helper).symlink_to(found)
        result = subprocess.run(
            [*runner, str(bin_dir / "env"), f"PATH={bin_dir}", "HOME=/tmp", "bash", "-s"],
            input=INSTALL_SCRIPT.read_text(),  # on stdin: the checkout may be private to root
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and not result.stdout.strip(), result.stdout + result.stderr
    assert lines[0].startswith("install-system-deps: missing Debian packages: "), lines[0]
    for package in ("wrk", "prometheus", "docker-compose"):
        assert package in lines[0], lines[0]
