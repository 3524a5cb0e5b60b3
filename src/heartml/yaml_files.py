"""Validated YAML files (the experiment config, dataset specs): one way to read them and one way
to word what is wrong, as one line naming the file, the entry and the problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from heartml.errors import ConfigError

Model = TypeVar("Model", bound=BaseModel)


def read_yaml(path: Path, error: type[ConfigError], what: str) -> Any:
    """The file's YAML, or `error` naming the file and the line of a syntax error."""
    if not path.is_file():
        raise error(f"{what} not found: {path}")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        # PyYAML's own message spans several lines (it quotes the source); keep it to one.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise error(f"{path}: not valid YAML{where}: {problem}") from None


def validate(
    model: type[Model], raw: Any, source: str, error: type[ConfigError], *, show_input: bool
) -> Model:
    """`raw` as `model`, or `error` with the first problem (and how many more there are)."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        if show_input:  # a value in a field: say which value
            text = f"{where or '(top level)'} = {first.get('input')!r}: {message}"
        else:  # a rule across entries: the message names them itself
            text = f"{where}: {message}" if where else message
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise error(f"{source}: {text}{more}") from None
