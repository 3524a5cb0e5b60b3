"""Reading a dataset spec file: YAML in, a validated DatasetSpec out, or one SpecError line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from heartml.spec.model import DatasetSpec
from heartml.spec.parts import SpecError
from heartml.yaml_files import read_yaml, validate


def parse_spec(raw: Any, source: str) -> DatasetSpec:
    return validate(DatasetSpec, raw, source, SpecError, show_input=False)


def load_spec(path: Path) -> DatasetSpec:
    """Read and validate a spec file; SpecError (one line) on any problem."""
    return parse_spec(read_yaml(path, SpecError, "dataset spec"), str(path))


def spec_from_text(text: str, source: str = "dataset spec") -> DatasetSpec:
    return parse_spec(yaml.safe_load(text), source)
