"""Typed documents that flow between the stages: one pydantic model per JSON file, written and
read by the same class (`write(path)`, `read(path)`; `to_json_dict()` / `from_json_dict()` for
MLflow artifacts). See base.py for how the files stay what older heartml versions wrote."""

from heartml.documents.base import Document, JsonObject
from heartml.documents.data import DataProvenance, QualityReport, RawProvenance
from heartml.documents.evaluation import EvaluationResults, ModelMetadata, ModelSummary

__all__ = [
    "DataProvenance",
    "Document",
    "EvaluationResults",
    "JsonObject",
    "ModelMetadata",
    "ModelSummary",
    "QualityReport",
    "RawProvenance",
]
