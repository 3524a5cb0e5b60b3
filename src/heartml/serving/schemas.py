"""The API's response and error models.

The request models themselves (`PatientRecord`, `PredictRequest`, `BatchRequest`) depend on the
served model's dataset spec: heartml.serving.requests builds them, and heartml.serving.fast_check
checks a body against the same contract's rules without pydantic.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

IMPUTED_DESCRIPTION = (
    "The input fields that were unknown (null, or a value the dataset spec lists as 'not "
    "measured') and were imputed by the model; empty when every value was given"
)
NOTE_DESCRIPTION = (
    "When a field was imputed: which ones, in words, and that the estimate is less certain; "
    "null otherwise"
)


class CalibrationApplied(BaseModel):
    site: str
    version: int | None = Field(
        description="The site calibration applied (null: none, the model's own probability)"
    )
    method: str | None = Field(
        description="none, in_the_large, logistic or isotonic (heartml.calibration); null: none"
    )
    model_probability: float = Field(
        ge=0, le=1, description="The model's own probability, before the site's calibration"
    )
    detail: str = Field(description="What was done, in words")


SITE_ANSWER = "The site the prediction was made for (the request's, else HEARTML_SERVE_SITE)"


class PredictionResult(BaseModel):
    prediction: Literal[0, 1] = Field(
        description="1 = the positive class predicted (probability at or above the package "
        "threshold)"
    )
    probability: float = Field(
        ge=0,
        le=1,
        description="P(positive class), from the ONNX model, then the site's calibration if it "
        "has one; the decision and the risk level are taken on it",
    )
    risk_level: str = Field(description="Probability band (see /model/info `risk_levels`)")
    imputed_fields: list[str] = Field(description=IMPUTED_DESCRIPTION)
    note: str | None = Field(description=NOTE_DESCRIPTION)
    calibration: CalibrationApplied | None = Field(
        default=None, description="With a site: its calibration, or that it has none; else null"
    )


class PredictionResponse(PredictionResult):
    model_name: str
    model_version: str
    request_id: str
    site: str | None = Field(default=None, description=SITE_ANSWER)


class BatchPredictionResponse(BaseModel):
    results: list[PredictionResult] = Field(description="One result per record, in order")
    count: int
    model_name: str
    model_version: str
    request_id: str
    site: str | None = Field(default=None, description=SITE_ANSWER)


class FeatureContribution(BaseModel):
    feature: str
    label: str = Field(description="The feature in plain words")
    value: float | None = Field(description="The record's value (null when unknown)")
    reference_value: float = Field(
        description="Training median (numeric) or most frequent code (coded)"
    )
    contribution: float = Field(
        description="P(record) minus P(record with this feature at its reference value): "
        "positive pushed the probability up, negative pushed it down"
    )


class ExplanationResponse(PredictionResponse):
    method: str
    contributions: list[FeatureContribution] = Field(
        description="Per raw feature, largest absolute contribution first"
    )


class DatasetInfo(BaseModel):
    name: str = Field(description="The dataset spec's name (configs/datasets/<name>.yaml)")
    title: str
    description: str
    record_title: str = Field(description="What one record is, in words (e.g. patient)")
    positive_label: str = Field(description="What prediction = 1 means")
    negative_label: str


class CodeLabel(BaseModel):
    code: int
    label: str


class InputField(BaseModel):
    name: str
    label: str = Field(description="The field in plain words")
    description: str
    kind: Literal["number", "binary", "coded"]
    unit: str
    minimum: float | None = Field(description="Smallest allowed value (numbers)")
    maximum: float | None = Field(description="Largest allowed value (numbers)")
    codes: list[CodeLabel] | None = Field(description="Allowed codes and their meaning (coded)")
    required: bool = Field(description="Never null; otherwise null means unknown (imputed)")
    missing_values: list[float] = Field(description="Values that also mean 'not measured'")
    example: float
    group: str = Field(description="Form section")
    step: float = Field(description="Form step")
    allowed: str = Field(description="What the field accepts, in words")


class RiskLevelInfo(BaseModel):
    label: str
    minimum: float = Field(description="Lowest probability of the band (inclusive)")
    below: float | None = Field(description="Upper edge (exclusive); null for the last band")


class RegistryStatus(BaseModel):
    state: Literal["unknown", "ok", "unreachable", "error"] = Field(
        description="The registry at the last look-up: ok, unreachable (no answer: the last good "
        "model keeps serving), error (an answer that could not be used)"
    )
    detail: str | None = Field(description="Why, when not ok")
    checked_at: str | None = Field(description="When the registry was last asked")
    last_ok_at: str | None = Field(description="When it last answered")


class ChallengerInfo(BaseModel):
    name: str
    algorithm: str
    version: str
    source: str
    threshold: float


class ShadowInfo(BaseModel):
    challenger: ChallengerInfo
    since: str | None = Field(description="When this champion/challenger pair was first compared")
    predictions: dict[str, int] = Field(
        description="Rows scored by each model since then: champion (answered while the "
        "challenger was set) and challenger (scored in shadow)"
    )
    compared: int = Field(description="Rows scored by both")
    agreement_rate: float | None = Field(description="Share of compared rows with the same 0/1")
    mean_abs_difference: float | None = Field(description="Mean |P(champion) - P(challenger)|")
    dropped: int = Field(description="Rows not scored in shadow because it was too far behind")
    errors: int = Field(description="Rows the challenger failed to score")
    skipped: int = Field(description="Rows not comparable (the challenger takes other inputs)")
    queue_limit_rows: int


class SiteCalibrationInfo(BaseModel):
    site: str
    version: int = Field(description="The active calibration's version (from 1)")
    method: str
    intercept: float
    slope: float
    outcomes: int = Field(description="Labelled predictions it was fitted on")
    created_at: str


class CalibrationsInfo(BaseModel):
    directory: str = Field(description="HEARTML_CALIBRATIONS_DIR")
    default_site: str | None = Field(description="HEARTML_SERVE_SITE: a request's site if unsent")
    sites: list[SiteCalibrationInfo] = Field(
        description="Each site served with a calibration for this model version"
    )
    problems: dict[str, str] = Field(
        description="Per site, why its active calibration was refused (served the raw model)"
    )


class ModelInfo(BaseModel):
    name: str
    algorithm: str
    version: str
    run_id: str
    threshold: float = Field(description="Probability at or above which prediction = 1")
    risk_bands: str = Field(description="The probability bands of `risk_level`, in words")
    metrics: dict[str, Any] = Field(description="CV and test metrics recorded in the package")
    raw_feature_names: list[str]
    engineered_feature_names: list[str]
    source: str = Field(description="Where the model came from: package:<dir> or registry:<uri>")
    package: str = Field(description="The verified package folder being served")
    package_created_at: str | None
    loaded_at: str
    dataset: DatasetInfo
    fields: list[InputField] = Field(description="Every input field, in model column order")
    risk_levels: list[RiskLevelInfo] = Field(description="The bands of `risk_level`, as data")
    spec_hash: str = Field(description="sha256 of the package's dataset spec")
    registry: RegistryStatus | None = Field(
        default=None, description="Registry mode: the registry at its last look-up"
    )
    shadow: ShadowInfo | None = Field(
        default=None, description="The challenger scored in shadow and the comparison so far"
    )
    calibrations: CalibrationsInfo | None = Field(
        default=None, description="The site calibrations served with this model version"
    )


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
