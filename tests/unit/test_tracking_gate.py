"""The promotion gate, tracking.decide: when a candidate may replace the champion (no MLflow)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from heartml.tracking import ChampionInfo, RegisteredVersion, decide

pytestmark = pytest.mark.task3

SCHEME = "repeated-stratified-5-fold-x10-seed42-n242"
DATA = "a" * 64
CHAMPION_FOLDS = list(np.round(0.88 + np.random.default_rng(0).normal(0, 0.03, 50), 6))


def tags(folds: list[float], data: str = DATA, scheme: str = SCHEME) -> dict[str, str]:
    return {
        "data_sha256": data,
        "cv_scheme": scheme,
        "cv_fold_roc_auc": json.dumps([float(v) for v in folds]),
        "cv_roc_auc": f"{np.mean(folds):.6f}",
    }


def champion(folds: list[float] = CHAMPION_FOLDS, **kwargs: str) -> ChampionInfo:
    champion_tags = tags(folds, **kwargs)
    return ChampionInfo(
        model_name="heart_disease_logistic_regression",
        algorithm="logistic_regression",
        version="1",
        run_id="r1",
        roc_auc=float(np.mean(folds)),
        test_roc_auc=0.9,
        data_sha256=champion_tags["data_sha256"],
        config_hash="c",
        model_uri="models:/heart_disease_logistic_regression@champion",
        tags=champion_tags,
    )


def candidate(folds: list[float]) -> RegisteredVersion:
    return RegisteredVersion("svm", "heart_disease_svm", "2", "r2", float(np.mean(folds)))


def test_no_champion_promotes() -> None:
    decision = decide(candidate(CHAMPION_FOLDS), tags(CHAMPION_FOLDS), None, force=False)
    assert decision.promote
    assert decision.reason == "no champion yet"


def test_champion_on_other_data_is_replaced() -> None:
    worse = [v - 0.05 for v in CHAMPION_FOLDS]
    decision = decide(candidate(worse), tags(worse), champion(data="b" * 64), force=False)
    assert decision.promote
    assert "other data" in decision.reason


def test_clearly_better_on_the_same_folds_promotes() -> None:
    jitter = np.random.default_rng(1).normal(0, 0.003, len(CHAMPION_FOLDS))
    better = [v + 0.03 + e for v, e in zip(CHAMPION_FOLDS, jitter, strict=True)]
    decision = decide(candidate(better), tags(better), champion(), force=False)
    assert decision.promote, decision.reason
    assert decision.reason.startswith("better by a supported margin")
    assert decision.statistics["p_value"] < 0.05
    assert decision.statistics["mean_roc_auc_difference"] > 0


def test_equal_folds_keep_the_champion() -> None:
    decision = decide(candidate(CHAMPION_FOLDS), tags(CHAMPION_FOLDS), champion(), force=False)
    assert not decision.promote
    assert decision.reason.startswith("kept the champion, not better by a supported margin")
    assert decision.statistics["mean_roc_auc_difference"] == pytest.approx(0.0, abs=1e-12)


def test_a_small_noisy_gain_keeps_the_champion() -> None:
    # +0.002 on average, but fold differences scattered ±0.03: not a supported improvement.
    scatter = np.random.default_rng(2).normal(0, 0.03, len(CHAMPION_FOLDS))
    noisy = [v + 0.002 + e for v, e in zip(CHAMPION_FOLDS, scatter, strict=True)]
    decision = decide(candidate(noisy), tags(noisy), champion(), force=False)
    assert decision.statistics["mean_roc_auc_difference"] > 0  # better on average, yet...
    assert not decision.promote, decision.reason
    assert "not better by a supported margin" in decision.reason
    assert decision.statistics["p_value"] >= 0.05


def test_worse_candidate_keeps_the_champion() -> None:
    worse = [v - 0.02 for v in CHAMPION_FOLDS]
    decision = decide(candidate(worse), tags(worse), champion(), force=False)
    assert not decision.promote
    assert decision.reason.startswith("kept the champion, not better by a supported margin")
    assert decision.statistics["mean_roc_auc_difference"] == pytest.approx(-0.02, abs=1e-6)
    assert decision.statistics["p_value"] > 0.5  # one-sided: worse is nowhere near significant


def test_different_cv_scheme_keeps_the_champion() -> None:
    better = [v + 0.05 for v in CHAMPION_FOLDS]
    other = "repeated-stratified-3-fold-x2-seed42-n242"
    decision = decide(candidate(better), tags(better, scheme=other), champion(), force=False)
    assert not decision.promote
    assert "folds differ" in decision.reason
    assert "--force-champion" in decision.reason


def test_fold_results_of_another_length_keep_the_champion() -> None:
    shorter = [v + 0.05 for v in CHAMPION_FOLDS[:10]]
    decision = decide(candidate(shorter), tags(shorter), champion(), force=False)
    assert not decision.promote
    assert decision.reason == "kept the champion: fold results missing or of different length"
    assert decision.statistics == {}


@pytest.mark.parametrize("current", [None, "same", "worse-candidate"])
def test_force_always_promotes(current: str | None) -> None:
    folds = [v - 0.05 for v in CHAMPION_FOLDS] if current == "worse-candidate" else CHAMPION_FOLDS
    decision = decide(candidate(folds), tags(folds), champion() if current else None, force=True)
    assert decision.promote
    assert "--force-champion" in decision.reason
