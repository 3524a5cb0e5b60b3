"""Request and response models of the prediction API.

Every input field is bounded by the UCI coding in heartml.coding (codes, clinical ranges, units,
meanings), so that the API, the data schema and the web form agree on what a valid patient is.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from heartml.coding import COLUMNS_BY_NAME, RAW_COLUMNS, RAW_FEATURES, example_record

# Measurements that may be unknown: the UCI file writes 0 (trestbps, chol) or `?` (ca, thal);
# the API takes null, and the model imputes them (inside the ONNX graph) as in training.
NULLABLE: frozenset[str] = frozenset(
    c.name for c in RAW_COLUMNS if c.missing_zero or c.name in ("ca", "thal")
)
CODED: tuple[str, ...] = tuple(c.name for c in RAW_COLUMNS if c.codes)
EXAMPLE: dict[str, Any] = dict(example_record())  # the seed's first patient

# Risk bands on P(disease): [0, 0.3) low, [0.3, 0.6) moderate, [0.6, 1] high. They describe the
# probability for people; the 0/1 `prediction` uses the package's decision threshold instead.
RiskLevel = Literal["low", "moderate", "high"]
RISK_BANDS_TEXT = "low: p < 0.3; moderate: 0.3 <= p < 0.6; high: p >= 0.6"


def risk_level(probability: float) -> RiskLevel:
    if probability < 0.3:
        return "low"
    if probability < 0.6:
        return "moderate"
    return "high"


def allowed_text(name: str) -> str:
    """What a field accepts, in words: the codes with their meaning, or the range with its unit."""
    column = COLUMNS_BY_NAME[name]
    return column.allowed + (", or null when unknown" if name in NULLABLE else "")


def _column_field(name: str) -> Any:
    column = COLUMNS_BY_NAME[name]
    description = f"{column.description}. Allowed: {allowed_text(name)}."
    if name in NULLABLE:
        description += " A null value is imputed by the model, as in training."
    example = int(column.example) if column.codes else column.example
    if column.codes:
        codes: list[Any] = sorted(column.codes)
        return Field(
            title=column.label,
            description=description,
            examples=[example],
            json_schema_extra={"enum": [*codes, None] if name in NULLABLE else codes},
        )
    return Field(
        title=column.label,
        description=description,
        ge=column.minimum,
        le=column.maximum,
        examples=[example],
    )


class PatientRecord(BaseModel):
    """One patient in the UCI Cleveland coding: the seed's 13 fields, all JSON numbers."""

    # strict: JSON numbers only (no "63", no true); NaN and Infinity are not measurements.
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        json_schema_extra={"examples": [EXAMPLE]},
    )

    age: float = _column_field("age")
    sex: float = _column_field("sex")
    cp: float = _column_field("cp")
    trestbps: float | None = _column_field("trestbps")
    chol: float | None = _column_field("chol")
    fbs: float = _column_field("fbs")
    restecg: float = _column_field("restecg")
    thalach: float = _column_field("thalach")
    exang: float = _column_field("exang")
    oldpeak: float = _column_field("oldpeak")
    slope: float = _column_field("slope")
    ca: float | None = _column_field("ca")
    thal: float | None = _column_field("thal")

    @field_validator(*CODED, mode="after")
    @classmethod
    def _known_code(cls, value: float | None, info: ValidationInfo) -> float | None:
        # Codes arrive as numbers (1 or 1.0, as pandas writes them); anything else is refused.
        if value is not None and value not in COLUMNS_BY_NAME[str(info.field_name)].codes:
            raise PydanticCustomError(
                "code_not_allowed",
                "must be {allowed}",
                {"allowed": COLUMNS_BY_NAME[str(info.field_name)].allowed},
            )
        return value

    def as_row(self) -> list[float]:
        """The 13 inputs in the model's column order; NaN for an unknown measurement."""
        data = self.__dict__
        return [math.nan if data[name] is None else data[name] for name in RAW_FEATURES]


# name, minimum, maximum, allowed codes (None: a range), may be null; in model column order.
_ROW_RULES: tuple[tuple[str, float | None, float | None, frozenset[int] | None, bool], ...] = tuple(
    (c.name, c.minimum, c.maximum, frozenset(c.codes) or None, c.name in NULLABLE)
    for c in RAW_COLUMNS
)
_ABSENT = object()


def patient_row(body: bytes) -> list[float] | None:
    """The 13 inputs of a valid single-patient JSON body in model order (NaN for null), else None.

    The request path's fast check: orjson plus one comparison per field, about a tenth of
    building a PatientRecord. It accepts only what PatientRecord accepts (JSON numbers, not
    booleans; the same ranges and codes; null only where allowed; no missing or extra field) and
    gives the same row as `PatientRecord.as_row()`. On None the caller validates the body with
    PatientRecord, whose errors are the API's messages, so no error is ever worded twice.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict or len(data) != len(_ROW_RULES):
        return None
    row: list[float] = []
    for name, minimum, maximum, codes, nullable in _ROW_RULES:
        value = data.get(name, _ABSENT)
        kind = type(value)
        if kind is float or kind is int:  # exact types: a JSON true is not a number
            if codes is None:
                if not minimum <= value <= maximum:  # NaN fails too
                    return None
            elif value not in codes:
                return None
            row.append(float(value))
        elif value is None and nullable:
            row.append(math.nan)
        else:
            return None
    return row


class BatchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"records": [EXAMPLE]}]},
    )

    records: list[PatientRecord] = Field(
        min_length=1,
        description="Patients to score; at most HEARTML_SERVE_BATCH_LIMIT (default 1000) per "
        "request, more is refused with 413.",
    )


class PredictionResult(BaseModel):
    prediction: Literal[0, 1] = Field(
        description="1 = heart disease predicted (probability at or above the package threshold)"
    )
    probability: float = Field(ge=0, le=1, description="P(heart disease), from the ONNX model")
    risk_level: RiskLevel = Field(description=f"Probability band ({RISK_BANDS_TEXT})")


class PredictionResponse(PredictionResult):
    model_name: str
    model_version: str
    request_id: str


class BatchPredictionResponse(BaseModel):
    results: list[PredictionResult] = Field(description="One result per record, in order")
    count: int
    model_name: str
    model_version: str
    request_id: str


class FeatureContribution(BaseModel):
    feature: str
    label: str = Field(description="The feature in plain words")
    value: float | None = Field(description="The patient's value (null when unknown)")
    reference_value: float = Field(
        description="Training median (numeric) or most frequent code (coded)"
    )
    contribution: float = Field(
        description="P(patient) minus P(patient with this feature at its reference value): "
        "positive pushed the probability up, negative pushed it down"
    )


class ExplanationResponse(PredictionResponse):
    method: str
    contributions: list[FeatureContribution] = Field(
        description="Per raw feature, largest absolute contribution first"
    )


class ModelInfo(BaseModel):
    name: str
    algorithm: str
    version: str
    run_id: str
    threshold: float = Field(description="Probability at or above which prediction = 1")
    risk_bands: str = RISK_BANDS_TEXT
    metrics: dict[str, Any] = Field(description="CV and test metrics recorded in the package")
    raw_feature_names: list[str]
    engineered_feature_names: list[str]
    source: str = Field(description="Where the model came from: package:<dir> or registry:<uri>")
    package: str = Field(description="The verified package folder being served")
    package_created_at: str | None
    loaded_at: str


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyResponse(BaseModel):
    status: Literal["ready", "not_ready"]
    model_version: str | None = None
    detail: str | None = None


class FeatureDrift(BaseModel):
    kind: str
    window_count: int = Field(description="Non-missing values of this feature in the window")
    missing_fraction: float | None
    reference_missing_fraction: float
    psi: float | None = Field(description="Population stability index vs the training data")
    psi_status: Literal["stable", "moderate", "significant", "insufficient_data"]
    ks_statistic: float | None = Field(
        default=None, description="Two-sample Kolmogorov-Smirnov D (numeric features)"
    )
    ks_p_value: float | None = Field(default=None, description="Asymptotic p-value of D")


class DriftReport(BaseModel):
    model_version: str | None
    window_size: int = Field(description="Recent inputs in the window")
    window_capacity: int
    reference_rows: int = Field(description="Training rows behind the reference statistics")
    min_samples: int = Field(description="Fewer non-missing values than this: no statistics")
    thresholds: dict[str, float]
    features: dict[str, FeatureDrift]


class ReloadResponse(BaseModel):
    status: Literal["loaded", "unchanged", "failed", "unavailable"]
    detail: str
    model_version: str | None


class ErrorItem(BaseModel):
    field: str = Field(description="Where: `cp`, or `records[3].cp` in a batch")
    value: Any = Field(description="The value received (null when the field is missing)")
    message: str = Field(description="What is wrong and what is allowed")
    type: str


class ValidationErrorResponse(BaseModel):
    detail: list[ErrorItem]
    request_id: str


class ErrorResponse(BaseModel):
    detail: str
    request_id: str
