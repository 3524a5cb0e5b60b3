"""Experiment parameters: configs/pipeline.yaml validated into a typed, hashable model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from heartml.choices import Algorithm
from heartml.errors import ConfigError
from heartml.yaml_files import read_yaml, validate

ParamValue = int | float | str | bool | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitConfig(_Strict):
    test_size: float = Field(0.2, gt=0.05, lt=0.5)


class EvaluationConfig(_Strict):
    cv_folds: int = Field(5, ge=2, le=20)
    cv_repeats: int = Field(10, ge=1, le=50)
    threshold: float = Field(0.5, gt=0, lt=1)
    permutation_repeats: int = Field(10, ge=1, le=100)
    calibration_bins: int = Field(8, ge=3, le=20)


class TuningConfig(_Strict):
    cv_folds: int = Field(5, ge=2, le=20)
    cv_repeats: int = Field(2, ge=1, le=20)
    scoring: Literal["roc_auc", "average_precision", "neg_log_loss", "accuracy", "f1"] = "roc_auc"


class PromotionConfig(_Strict):
    """The champion gate (heartml.tracking.promotion): what a candidate must show on the same
    CV folds to replace the champion."""

    # One-sided corrected paired t-test of the fold ROC-AUC differences: p must be below this.
    p_value: float = Field(0.05, gt=0, le=0.5)
    # Mean CV ROC-AUC gain the candidate must reach: a tiny but consistent gain is not worth a
    # new model in production (the t-test alone would call +0.000001 on every fold significant).
    min_improvement: float = Field(0.005, ge=0, lt=1)
    # How much worse (higher) the candidate's mean CV Brier score may be: a clinician reads the
    # probability, so calibration may not be traded for ranking.
    max_brier_increase: float = Field(0.01, ge=0, lt=1)


class ModelConfig(_Strict):
    params: dict[str, ParamValue] = Field(default_factory=dict)
    search_space: dict[str, list[ParamValue]] = Field(default_factory=dict)


class PipelineConfig(_Strict):
    seed: int = Field(42, ge=0)
    split: SplitConfig = SplitConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    tuning: TuningConfig = TuningConfig()
    models: dict[Algorithm, ModelConfig]
    promotion: PromotionConfig = PromotionConfig()

    def config_hash(self) -> str:
        """sha256 of the canonical JSON form of what is trained: equal configs hash equally,
        whatever the YAML layout.

        The promotion policy is left out: it decides after training (and is recorded with each
        decision), so changing a threshold neither retrains the models nor changes their hash.
        """
        trained = self.model_dump(mode="json", exclude={"promotion"})
        canonical = json.dumps(trained, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def parse_config(raw: Any, source: str = "config") -> PipelineConfig:
    return validate(PipelineConfig, raw, source, ConfigError, show_input=True)


def load_config(path: Path) -> PipelineConfig:
    return parse_config(read_yaml(path, ConfigError, "config file"), source=str(path))
