"""Every checker the deploy tests use is really there (installed when missing, never skipped)."""

from __future__ import annotations

import subprocess

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
    """scripts/ci-install-tools.sh maps each command to its Debian package, installs only what is
    missing, and says so; with everything present it changes nothing."""
    from deploy_helpers import INSTALL_SCRIPT

    text = INSTALL_SCRIPT.read_text()
    for command, package in SYSTEM_TOOLS.items():
        if command == "prometheus":
            continue  # same package as promtool
        assert f"[{command}]={package}" in text
    for tool in SYSTEM_TOOLS:
        require_tool(tool)
    result = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "all present" in result.stdout
