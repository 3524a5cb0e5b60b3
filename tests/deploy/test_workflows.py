"""GitHub Actions workflows: actionlint, and what each must do; yamllint on deploy/ and .github/."""

from __future__ import annotations

import pytest
import yaml
from deploy_helpers import REPO_ROOT, require_tool, run_tool

pytestmark = pytest.mark.deploy

WORKFLOWS = REPO_ROOT / ".github" / "workflows"


def workflow(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def steps(job: dict) -> list[dict]:
    return job["steps"]


def uses(job: dict) -> list[str]:
    return [step["uses"].split("@")[0] for step in steps(job) if "uses" in step]


def runs(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in steps(job))


def test_actionlint_passes() -> None:
    actionlint = require_tool("actionlint")
    files = sorted(str(path) for path in WORKFLOWS.glob("*.yml"))
    assert {p.rsplit("/", 1)[1] for p in files} >= {
        "ci.yml",
        "container-build.yml",
        "model-training.yml",
    }
    run_tool([actionlint, "-no-color", *files], cwd=REPO_ROOT)


def test_yamllint_passes_on_deploy_and_github() -> None:
    yamllint = require_tool("yamllint")
    run_tool(
        [
            yamllint,
            "--strict",
            "-c",
            str(REPO_ROOT / ".yamllint"),
            "deploy",
            ".github",
            ".yamllint",
        ],
        cwd=REPO_ROOT,
    )


def test_ci_lints_then_tests_on_main_and_develop() -> None:
    ci = workflow("ci.yml")
    for event in ("push", "pull_request"):
        assert set(ci["on"][event]["branches"]) == {"main", "develop"}
    lint, test = ci["jobs"]["lint"], ci["jobs"]["test"]
    assert "make lint" in runs(lint)
    makefile = (REPO_ROOT / "Makefile").read_text()
    lint_recipe = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "ruff check" in lint_recipe and "mypy" in lint_recipe
    assert test["needs"] == "lint"
    # The test job is .ci/run itself, on Debian bookworm as root: the same set-up as CI's.
    assert "bash .ci/run" in runs(test)
    assert test["container"]["image"].startswith("python:3.11-bookworm")


def test_make_test_ci_and_the_workflow_share_one_set_up() -> None:
    """`make test` installs the system packages itself (scripts/install-system-deps.sh);
    .ci/run runs that same script, starts PostgreSQL, then `make lint` and `make test`, with
    nothing after the tests (pytest's closing line is the last line of the run)."""
    makefile = (REPO_ROOT / "Makefile").read_text()
    test_recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "system-deps" in test_recipe.splitlines()[0] and "run_tests.py" in test_recipe
    deps_recipe = makefile.split("\nsystem-deps:", 1)[1].split("\n\n", 1)[0]
    assert "scripts/install-system-deps.sh" in deps_recipe
    ci_run = [
        line.strip()
        for line in (REPO_ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert "scripts/install-system-deps.sh" in ci_run
    assert "export HEARTML_TEST_POSTGRES_URL" in "\n".join(ci_run)
    assert ci_run[-2:] == ["make lint", "make test"]
    assert ci_run.index("scripts/install-system-deps.sh") < ci_run.index("make lint")


def test_container_build_builds_once_tests_and_pushes_the_tested_digest() -> None:
    build = workflow("container-build.yml")
    on = build["on"]
    assert on["workflow_run"]["workflows"] == ["CI"] and on["workflow_run"]["branches"] == ["main"]
    assert on["push"]["tags"] == ["v*"] and "workflow_dispatch" in on
    (job,) = build["jobs"].values()
    assert "workflow_run.conclusion == 'success'" in job["if"]
    used = uses(job)
    for action in (
        "docker/setup-qemu-action",
        "docker/setup-buildx-action",
        "docker/metadata-action",
        "docker/build-push-action",
        "docker/login-action",
    ):
        assert action in used, action
    build_steps = [
        s for s in steps(job) if s.get("uses", "").startswith("docker/build-push-action")
    ]
    assert len(build_steps) == 1, "one build per image: the tested one"
    options = build_steps[0]["with"]
    assert options["platforms"] == "linux/amd64,linux/arm64"
    assert options["file"] == "deploy/docker/Dockerfile"
    assert "localhost:5000" in str(job["env"]["LOCAL_IMAGE"]) and options["push"] is True
    assert "cache-from" in options and "cache-to" in options
    script = runs(job)
    assert "scripts/container-test.sh" in script and "SKIP_BUILD=1" in script
    assert "--platform linux/amd64" in script
    assert "skopeo copy --all --preserve-digests" in script
    assert "steps.build.outputs.digest" in str(job)
    tags = next(s for s in steps(job) if s.get("uses", "").startswith("docker/metadata-action"))[
        "with"
    ]
    assert tags["images"].startswith("ghcr.io/")
    for tag in ("value=latest", "value=main,", "value=main-", "type=semver,pattern={{version}}"):
        assert tag in tags["tags"], tag
    targets = {entry["target"] for entry in job["strategy"]["matrix"]["include"]}
    assert targets == {"serving", "pipeline"}
    assert build["permissions"]["packages"] == "write"


def test_model_training_runs_the_pipeline_against_the_team_mlflow() -> None:
    training = workflow("model-training.yml")
    assert "workflow_dispatch" in training["on"] and training["on"]["schedule"][0]["cron"]
    (job,) = training["jobs"].values()
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        assert job["env"][name] == f"${{{{ secrets.{name} }}}}"
    assert "heartml pipeline" in runs(job)
    uploads = [s for s in steps(job) if s.get("uses", "").startswith("actions/upload-artifact")]
    assert any("reports" in s["with"]["path"] for s in uploads)
