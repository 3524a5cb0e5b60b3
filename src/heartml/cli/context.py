"""What every command shares: the consoles, the state the root callback builds (held in
typer.Context.obj, never in a module global), and one way to end with a clear error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from heartml.config import ConfigError, PipelineConfig, load_config
from heartml.settings import Settings

console = Console(soft_wrap=True)
errors = Console(stderr=True)


@dataclass
class CliState:
    settings: Settings
    config_path: Path | None = None

    def config(self) -> PipelineConfig:
        try:
            return load_config(self.config_path or self.settings.pipeline_config_path)
        except ConfigError as exc:
            fail(str(exc))


def state_of(ctx: typer.Context) -> CliState:
    """The root callback's state (every command runs under it)."""
    state = ctx.find_root().obj
    if not isinstance(state, CliState):  # pragma: no cover - only if a command runs alone
        raise RuntimeError("heartml commands run under the heartml root command")
    return state


def say_error(message: str) -> None:
    # The message is text, not markup: "[n, 14]" in a message must print as written.
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    say_error(message)
    raise typer.Exit(code)


@contextmanager
def clear_errors() -> Iterator[None]:
    """Turn the failures a user can act on into one line (plus its hint) and exit code 2."""
    from heartml.errors import HeartmlError

    try:
        yield
    except HeartmlError as exc:
        fail(str(exc) + (f" ({exc.hint})" if exc.hint else ""))
    except FileNotFoundError as exc:
        fail(str(exc))
