"""The command line as a user meets it, in-process through Click's test runner: every seed
command is there, closed choices are refused by name with the allowed values (exit 2, no
traceback), a library error prints its hint, and each invocation reads its own state."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from heartml.choices import ALGORITHMS, ENGINES, HTTP_PARSERS, LOOPS
from heartml.cli import app
from heartml.settings import Settings

pytestmark = pytest.mark.task4

SEED_COMMANDS = {"data", "train", "track", "champion", "rollback", "registry", "package"}
COMMANDS = SEED_COMMANDS | {"spec", "pipeline", "serve", "score", "tune", "reproduce"}


@pytest.fixture
def runner(project: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in [k for k in __import__("os").environ if k.startswith("HEARTML_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(project.root)
    return CliRunner()


def test_help_lists_every_command_at_the_top_level(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    listed = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("│ ")}
    assert listed >= COMMANDS, COMMANDS - listed


@pytest.mark.parametrize(
    ("arguments", "option", "value", "allowed"),
    [
        (
            ["score", "-i", "x.csv", "-o", "y.csv", "--engine", "spark"],
            "--engine",
            "spark",
            ENGINES,
        ),
        (["serve", "--loop", "trio"], "--loop", "trio", LOOPS),
        (["serve", "--http", "h2"], "--http", "h2", HTTP_PARSERS),
        (["tune", "--algorithm", "xgboost"], "--algorithm", "xgboost", ALGORITHMS),
    ],
)
def test_a_value_outside_a_closed_choice_names_the_option_the_value_and_the_allowed(
    runner: CliRunner, arguments: list[str], option: str, value: str, allowed: tuple[str, ...]
) -> None:
    result = runner.invoke(app, arguments, terminal_width=300)
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert option in message and repr(value) in message
    for choice in allowed:
        assert repr(choice) in message
    assert "Traceback" not in result.output


def test_train_refuses_an_algorithm_the_config_does_not_train(runner: CliRunner) -> None:
    result = runner.invoke(app, ["train", "-a", "knn"])
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert message.startswith("error: --algorithm 'knn': allowed: ")
    assert set(message.split("allowed: ")[1].split(", ")) == set(ALGORITHMS)


def test_package_model_and_version_go_together(runner: CliRunner, project: Settings) -> None:
    result = runner.invoke(app, ["package", "--model", "heart_disease_svm"])
    assert result.exit_code == 2
    assert "--model and --version go together" in result.stderr
    assert not (project.root / "packages").exists()


def test_a_library_error_is_one_line_with_its_hint(runner: CliRunner, project: Settings) -> None:
    result = runner.invoke(app, ["package", "verify"], terminal_width=300)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: no package under {project.root.resolve() / 'packages'} "
        "(run `heartml package` first or pass --package)"
    ]


def test_a_bad_setting_is_named_before_any_command_runs(runner: CliRunner) -> None:
    result = runner.invoke(app, ["spec"], env={"HEARTML_SERVE_BATCH_LIMIT": "many"})
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: HEARTML_SERVE_BATCH_LIMIT = 'many': Input should be a valid integer"
    )
    assert "docs/deploy.md" in result.stderr and len(result.stderr.splitlines()) == 1


def test_each_invocation_reads_its_own_dataset(runner: CliRunner, project: Settings) -> None:
    other = runner.invoke(app, ["--dataset", "breast_cancer", "spec"], terminal_width=300)
    assert other.exit_code == 0, other.output
    assert "(breast_cancer)" in other.stdout
    default = runner.invoke(app, ["spec"], terminal_width=300)
    assert default.exit_code == 0, default.output
    assert "(uci_heart)" in default.stdout and "breast_cancer" not in default.stdout


def test_a_missing_config_file_is_one_line(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = runner.invoke(app, ["--config", str(missing), "train"], terminal_width=300)
    assert result.exit_code == 2
    assert str(missing) in result.stderr and "Traceback" not in result.output


def test_the_console_script_prints_a_usage_error_as_one_line(
    project: Settings, heartml_cli, make_cli_env
) -> None:
    result = heartml_cli("serve", "--loop", "trio", cwd=project.root, env=make_cli_env())
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: Invalid value for '--loop': 'trio' is not one of 'auto', 'uvloop', 'asyncio'. "
        "(see `heartml serve --help`)"
    ]


def test_brackets_in_a_message_are_printed_as_written(
    project: Settings, heartml_cli, make_cli_env
) -> None:
    result = heartml_cli(
        "score", "-i", "x.csv", "-o", "y.csv", "--package", "[bold]p[/]", cwd=project.root,
        env=make_cli_env(),
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == "error: [bold]p[/]: not a package folder"
