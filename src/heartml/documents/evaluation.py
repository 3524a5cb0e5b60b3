"""The training stage's documents: models/evaluation_results.json, each model's summary in it
(also logged to MLflow as evaluation/summary.json) and models/<algorithm>/metadata.json.

Metric names are keys (heartml.evaluate.METRICS), not fields: a document keeps the metrics it
was written with. Fields added after the first release (`dataset`, `spec_hash`,
`masked_blocks`) are optional, so the files and MLflow artifacts written before them still read.
"""

from __future__ import annotations

from pydantic import Field

from heartml.documents.base import Document, JsonObject, Part

SELECTION_RULE = "highest mean repeated-CV ROC-AUC on the training split"


class FoldSummary(Part):
    """One metric over the repeated-CV folds: mean, std and the corrected 95% t-interval."""

    mean: float
    std: float
    ci_low: float
    ci_high: float


class Interval(Part):
    """A 95% interval (the test split's percentile bootstrap)."""

    ci_low: float
    ci_high: float


class RocCurve(Part):
    fpr: list[float]
    tpr: list[float]


class PrCurve(Part):
    precision: list[float]
    recall: list[float]


class CalibrationCurve(Part):
    predicted: list[float]
    observed: list[float]


class ConfusionMatrix(Part):
    threshold: float
    labels: list[str]
    matrix: list[list[int]]  # rows: true class, columns: predicted class

    def prevalence(self) -> float | None:
        """Share of the positive class among the rows the matrix counts."""
        total = sum(sum(row) for row in self.matrix)
        return sum(self.matrix[1]) / total if total and len(self.matrix) == 2 else None


class Curves(Part):
    """ROC, PR and calibration curves and the confusion matrix of one set of predictions."""

    roc: RocCurve
    pr: PrCurve
    calibration: CalibrationCurve
    confusion_matrix: ConfusionMatrix


class SubgroupMetrics(Part):
    n: int
    prevalence: float
    roc_auc: float | None  # None where the subgroup holds one class only
    accuracy: float
    recall: float
    precision: float
    brier: float


class Subgroups(Part):
    cv_out_of_fold: dict[str, SubgroupMetrics]  # "sex=female" -> metrics
    test: dict[str, SubgroupMetrics]

    def split(self, name: str) -> dict[str, SubgroupMetrics]:
        return self.cv_out_of_fold if name == "cv_out_of_fold" else self.test


class Importance(Part):
    mean: float
    std: float


class MaskedBlock(Part):
    """CV ROC-AUC with a block of columns unknown at scoring time."""

    columns: list[str]
    roc_auc: FoldSummary


class Tuning(Part):
    """The grid search; a model without a grid records only `candidates: 0`."""

    scoring: str | None = None
    cv_folds: int | None = None
    cv_repeats: int | None = None
    candidates: int
    best_inner_score: float | None = None


class ModelSummary(Document):
    """Everything about one trained model but the fitted object."""

    algorithm: str
    estimator: str
    best_params: JsonObject
    estimator_params: JsonObject
    tuning: Tuning
    cv_metrics: dict[str, FoldSummary]
    cv_fold_metrics: dict[str, list[float]]
    test_metrics: dict[str, float]
    test_ci: dict[str, Interval]
    oof_curves: Curves
    test_curves: Curves
    subgroups: Subgroups
    permutation_importance: dict[str, Importance]
    masked_blocks: dict[str, MaskedBlock] = Field(default_factory=dict)
    seconds: float

    @property
    def cv_roc_auc(self) -> float:
        return self.cv_metrics["roc_auc"].mean

    def curves(self, split: str) -> Curves:
        """The curves of one split: `cv_out_of_fold` or `test`."""
        return self.oof_curves if split == "cv_out_of_fold" else self.test_curves

    def package_metrics(self) -> JsonObject:
        """The metrics a deployment package's model_config.yaml carries, as JSON data."""
        data = self.to_json_dict()
        return {
            "cv": data["cv_metrics"],
            "test": data["test_metrics"],
            "test_ci": data["test_ci"],
            "subgroups": data["subgroups"],
        }


class FeatureNames(Part):
    raw: list[str]
    engineered: list[str]
    model_inputs: list[str]


class EvaluationResults(Document):
    """models/evaluation_results.json: every model of one training run and how it was made."""

    created_at: str
    dataset: str | None = None
    data_sha256: str
    config_hash: str
    spec_hash: str | None = None
    config: JsonObject  # PipelineConfig as JSON (heartml.config.parse_config reads it back)
    seed: int
    n_train: int
    n_test: int
    threshold: float
    best_algorithm: str
    selection_rule: str
    feature_names: FeatureNames
    library_versions: dict[str, str]
    git_commit: str | None
    models: dict[str, ModelSummary]

    def evaluation_setting(self, key: str) -> int | None:
        """An integer of the config's `evaluation` section (cv_folds, cv_repeats,
        calibration_bins), None where the logged config does not say."""
        evaluation = self.config.get("evaluation")
        value = evaluation.get(key) if isinstance(evaluation, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None


class ModelMetadata(Document):
    """models/<algorithm>/metadata.json: the fitted pipeline's file, checksum and origin."""

    algorithm: str
    estimator: str
    model_file: str
    model_sha256: str
    params: JsonObject
    estimator_params: JsonObject
    cv_metrics: dict[str, FoldSummary]
    test_metrics: dict[str, float]
    data_sha256: str
    config_hash: str
    spec_hash: str | None = None
    seed: int
    threshold: float
    feature_names: FeatureNames
    library_versions: dict[str, str]
    git_commit: str | None
    created_at: str
