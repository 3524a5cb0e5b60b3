"""The dataset spec (configs/datasets/*.yaml) and what is derived from it without heavy imports."""

from heartml.spec.model import ROW_ID, TARGET, Column, DatasetSpec, SpecError, load_spec

__all__ = ["ROW_ID", "TARGET", "Column", "DatasetSpec", "SpecError", "load_spec"]
