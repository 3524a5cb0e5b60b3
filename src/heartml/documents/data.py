"""The data stage's documents: data/processed/provenance.json (also logged to MLflow as
data/provenance.json) and data/processed/data_quality_report.json.

Fields added after the first release (`dataset`, `spec_sha256`, the class labels) are
optional, so the files and MLflow artifacts written before them still read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import SerializerFunctionWrapHandler, model_serializer, model_validator

from heartml.documents.base import Document, JsonObject, Part

DISTRIBUTION_SUFFIX = "_distribution"


class RawProvenance(Part):
    """Where the raw bytes came from (heartml.data.acquire.RawData)."""

    source: str  # "download", "shipped copy", ...
    location: str  # URL or path
    sha256: str
    bytes: int
    acquired_at: str
    notes: list[str]


class SplitSettings(Part):
    test_size: float
    seed: int
    stratified_on: str


class FeedbackProvenance(Part):
    """`heartml data --with-feedback`: how many rows came from the source and how many from the
    prediction store's labelled predictions (heartml.data.feedback)."""

    store: str  # the store's URL, without its password
    labelled_predictions: int  # read from the store
    rows_from_source: int  # clean rows of the source file
    rows_from_feedback: int  # clean rows from the store
    rows_rejected: int  # feedback rows that broke a rule of the spec (in the rejected file)
    first_prediction_at: str | None
    last_prediction_at: str | None
    sha256: str  # the data version: the source's sha256 and the feedback rows together


class DataProvenance(RawProvenance, Document):
    """provenance.json: the raw data's origin, the clean row counts and how they were split."""

    rows_clean: int
    rows_train: int
    rows_test: int
    split: SplitSettings
    dataset: str | None = None
    spec_sha256: str | None = None
    feedback: FeedbackProvenance | None = None

    @property
    def data_sha256(self) -> str:
        """What identifies the data a model was trained on: the raw file's sha256, or with
        feedback rows, the sha256 of both."""
        return self.feedback.sha256 if self.feedback is not None else self.sha256


class Problem(Part):
    """One value that broke one rule of the dataset spec."""

    row: int
    line: int
    column: str
    value: float | int | str | None
    rule: str


class ClassBalance(Part):
    no_disease: int  # the negative class, whatever the dataset (the seed's names)
    disease: int
    prevalence: float
    positive_label: str | None = None
    negative_label: str | None = None


class LabelCounts(Part):
    """How often each value of the label column occurs; in the file it is one key named after
    the column (`num_distribution` for the reference dataset)."""

    column: str
    counts: dict[str, int]


class QualityReport(Document):
    """data_quality_report.json: what the parsed file held and what validation made of it."""

    dataset: str | None = None
    source: RawProvenance
    rows: int
    columns: list[str]
    dtypes: dict[str, str]
    missing_per_column: dict[str, int]
    rows_with_missing: int
    zero_recorded_as_missing: dict[str, int]
    duplicates: int
    out_of_range_per_column: dict[str, int]
    problems: list[Problem]
    rows_rejected: int
    rows_kept: int
    class_balance: ClassBalance
    label_distribution: LabelCounts
    summary_statistics: dict[str, dict[str, float | None]]  # column -> pandas describe()

    @model_validator(mode="before")
    @classmethod
    def _label_distribution_from_its_key(cls, data: Any) -> Any:
        """`<label>_distribution: {...}` (the one key of that form) -> label_distribution."""
        if not isinstance(data, dict) or "label_distribution" in data:
            return data
        keys = [
            key
            for key in data
            if isinstance(key, str)
            and key.endswith(DISTRIBUTION_SUFFIX)
            and key not in cls.model_fields
        ]
        if len(keys) != 1:
            return data  # validation then names label_distribution as missing
        data = dict(data)
        counts = data.pop(keys[0])
        data["label_distribution"] = {
            "column": keys[0].removesuffix(DISTRIBUTION_SUFFIX),
            "counts": counts,
        }
        return data

    @model_serializer(mode="wrap")
    def _label_distribution_under_its_key(
        self, handler: SerializerFunctionWrapHandler
    ) -> JsonObject:
        written: JsonObject = handler(self)
        if not isinstance(written.get("label_distribution"), dict):
            return written
        # Rebuilt in order: the key stays where the file has it, between the balance and the stats.
        out: JsonObject = {}
        for key, value in written.items():
            if key == "label_distribution" and isinstance(value, dict):
                out[f"{value['column']}{DISTRIBUTION_SUFFIX}"] = value["counts"]
            else:
                out[key] = value
        return out


@dataclass(frozen=True)
class LoggedData:
    """What a model run says about its data: its provenance document, or, for a run that did
    not log one, only the sha256 and source its tags carry."""

    sha256: str | None
    source: str | None
    provenance: DataProvenance | None

    @classmethod
    def from_provenance(cls, provenance: DataProvenance) -> LoggedData:
        return cls(provenance.sha256, provenance.source, provenance)
