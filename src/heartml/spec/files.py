"""Reading a dataset spec file: YAML in, a validated DatasetSpec out, or one SpecError line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from heartml.spec.model import DatasetSpec
from heartml.spec.parts import SpecError


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def parse_spec(raw: Any, source: str) -> DatasetSpec:
    try:
        return DatasetSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise SpecError(f"{source}: {_describe(first)}{more}") from None


def load_spec(path: Path) -> DatasetSpec:
    """Read and validate a spec file; SpecError (one line) on any problem."""
    if not path.is_file():
        raise SpecError(f"dataset spec not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise SpecError(f"{path}: not valid YAML{where}: {problem}") from None
    return parse_spec(raw, str(path))


def spec_from_text(text: str, source: str = "dataset spec") -> DatasetSpec:
    return parse_spec(yaml.safe_load(text), source)
