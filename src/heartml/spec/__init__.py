"""The dataset spec (configs/datasets/*.yaml) and what is derived from it without heavy imports."""

from heartml.spec.files import load_spec, parse_spec, spec_from_text
from heartml.spec.model import DatasetSpec
from heartml.spec.parts import ROW_ID, TARGET, Column, SpecError

__all__ = [
    "ROW_ID",
    "TARGET",
    "Column",
    "DatasetSpec",
    "SpecError",
    "load_spec",
    "parse_spec",
    "spec_from_text",
]
