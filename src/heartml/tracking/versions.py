"""What the registry records about a version, as plain data (no mlflow here).

The version tags are a contract between the writer (`runs`) and the readers (the gate in
`promotion`, the `Registry` listing and look-ups): their names and the CV scheme string are
declared here once.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Final

from heartml.documents.base import JsonObject

# Fold scores are stored rounded to this many decimals (an MLflow tag is a string); the gate
# compares them at the same resolution, so float noise below it is never read as a difference.
FOLD_DECIMALS = 6
PREVIOUS_ALIAS_SUFFIX = "_previous"


class VersionTag:
    """Names of the tags set on every registered version (besides the run's common tags)."""

    ALGORITHM: Final = "algorithm"
    DATA_SHA256: Final = "data_sha256"
    CONFIG_HASH: Final = "config_hash"
    CV_SCHEME: Final = "cv_scheme"
    THRESHOLD: Final = "threshold"
    CV_ROC_AUC: Final = "cv_roc_auc"
    TEST_ROC_AUC: Final = "test_roc_auc"
    CV_BRIER: Final = "cv_brier"
    CV_FOLD_ROC_AUC: Final = "cv_fold_roc_auc"
    CV_FOLD_BRIER: Final = "cv_fold_brier"
    PROMOTED_AT: Final = "promoted_at"
    PROMOTION_DECISION: Final = "promotion_decision"


_CV_SCHEME = re.compile(r"repeated-stratified-(\d+)-fold-x(\d+)-seed(\d+)-n(\d+)")


def cv_scheme(folds: int, repeats: int, seed: int, n_train: int) -> str:
    """Names the exact CV folds: equal strings mean the same folds, so scores pair up."""
    return f"repeated-stratified-{folds}-fold-x{repeats}-seed{seed}-n{n_train}"


def scheme_folds(scheme: str | None) -> int | None:
    """K of a scheme written by `cv_scheme` (the test fraction of a fold is 1/K)."""
    match = _CV_SCHEME.fullmatch(scheme or "")
    return int(match.group(1)) if match else None


def fold_tag(values: list[float]) -> str:
    return json.dumps([round(float(v), FOLD_DECIMALS) for v in values])


def parse_folds(text: str | None) -> tuple[float, ...]:
    """The fold scores of a tag; () when absent or unreadable (the gate then says so)."""
    try:
        values = json.loads(text or "[]")
        return tuple(float(v) for v in values)
    except (ValueError, TypeError):
        return ()


def _float_or_none(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class RegisteredVersion:
    algorithm: str
    model_name: str
    version: str
    run_id: str
    cv_roc_auc: float


@dataclass(frozen=True)
class ChampionInfo:
    """A registered version as the CLI, packaging and serving read it (usually the champion)."""

    model_name: str
    algorithm: str
    version: str
    run_id: str
    roc_auc: float
    test_roc_auc: float | None
    data_sha256: str | None
    config_hash: str | None
    model_uri: str
    tags: dict[str, str]

    @classmethod
    def from_tags(
        cls,
        model_name: str,
        version: str,
        run_id: str,
        tags: Mapping[str, str],
        model_uri: str,
        default_algorithm: str = "",
    ) -> ChampionInfo:
        return cls(
            model_name=model_name,
            algorithm=tags.get(VersionTag.ALGORITHM, default_algorithm),
            version=str(version),
            run_id=str(run_id),
            roc_auc=float(tags.get(VersionTag.CV_ROC_AUC, "nan")),
            test_roc_auc=_float_or_none(tags.get(VersionTag.TEST_ROC_AUC)),
            data_sha256=tags.get(VersionTag.DATA_SHA256),
            config_hash=tags.get(VersionTag.CONFIG_HASH),
            model_uri=model_uri,
            tags=dict(tags),
        )

    def as_dict(self) -> JsonObject:
        return asdict(self)  # every field is a JSON value


@dataclass(frozen=True)
class RegistryEntry:
    """One registered version in `heartml registry`'s listing."""

    model_name: str
    version: str
    aliases: tuple[str, ...]
    cv_roc_auc: float | None
    run_id: str | None

    @classmethod
    def from_tags(
        cls,
        model_name: str,
        version: str,
        aliases: list[str],
        run_id: str | None,
        tags: Mapping[str, str],
    ) -> RegistryEntry:
        return cls(
            model_name,
            str(version),
            tuple(sorted(aliases)),
            _float_or_none(tags.get(VersionTag.CV_ROC_AUC)),
            run_id or None,
        )
