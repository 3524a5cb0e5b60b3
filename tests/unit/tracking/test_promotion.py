"""The promotion gate, heartml.tracking.promotion.decide: pure, no MLflow.

Fold scores are made up around a champion at CV ROC-AUC 0.88 and CV Brier 0.121; every test
checks the decision AND the reason it gives (the figures a person reads in MLflow).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from heartml.config import PromotionConfig
from heartml.tracking.promotion import FoldEvidence, PromotionDecision, decide
from heartml.tracking.versions import ChampionInfo, RegisteredVersion, fold_tag

pytestmark = pytest.mark.task3

SCHEME = "repeated-stratified-5-fold-x10-seed42-n242"
DATA = "a" * 64
POLICY = PromotionConfig()  # the defaults: p 0.05, +0.005 ROC-AUC, Brier +0.01 at most
N = 50
CHAMPION_FOLDS = [round(v, 6) for v in 0.88 + np.random.default_rng(0).normal(0, 0.03, N)]


def centred(sd: float, seed: int) -> np.ndarray:
    """Noise with mean exactly 0, so a shifted mean is exactly the shift."""
    noise = np.random.default_rng(seed).normal(0, sd, N)
    return noise - noise.mean()


CHAMPION_BRIER = list(0.121 + centred(0.01, 3))


def tags(
    folds: list[float],
    brier: list[float] | None = None,
    data: str = DATA,
    scheme: str = SCHEME,
) -> dict[str, str]:
    brier = CHAMPION_BRIER if brier is None else brier
    return {
        "data_sha256": data,
        "cv_scheme": scheme,
        # Written as runs.py writes them (6 decimals): the gate must see through float noise.
        "cv_fold_roc_auc": fold_tag(folds),
        "cv_fold_brier": fold_tag(brier),
        "cv_roc_auc": f"{np.mean(folds):.6f}",
    }


def champion(folds: list[float] = CHAMPION_FOLDS, **kwargs: str) -> ChampionInfo:
    return ChampionInfo.from_tags(
        "heart_disease_logistic_regression",
        "1",
        "r1",
        tags(folds, **kwargs),  # type: ignore[arg-type]
        "models:/heart_disease_logistic_regression@champion",
    )


def candidate(folds: list[float]) -> RegisteredVersion:
    return RegisteredVersion("svm", "heart_disease_svm", "2", "r2", float(np.mean(folds)))


def gate(
    folds: list[float],
    brier: list[float] | None = None,
    policy: PromotionConfig = POLICY,
    current: ChampionInfo | None = None,
    **kwargs: str,
) -> PromotionDecision:
    return decide(candidate(folds), tags(folds, brier, **kwargs), current or champion(), policy)


def shifted(values: list[float], by: float, noise: np.ndarray | None = None) -> list[float]:
    extra = np.zeros(N) if noise is None else noise
    return [v + by + e for v, e in zip(values, extra, strict=True)]


def test_no_champion_promotes() -> None:
    decision = decide(candidate(CHAMPION_FOLDS), tags(CHAMPION_FOLDS), None, POLICY)
    assert decision.promote
    assert decision.reason == "no champion yet"


def test_champion_on_other_data_without_its_retrained_folds_is_replaced() -> None:
    worse = shifted(CHAMPION_FOLDS, -0.05)
    decision = gate(worse, current=champion(data="b" * 64))
    assert decision.promote
    assert decision.reason == (
        "the champion was trained on other data (sha256 bbbbbbbbbbbb…, candidate aaaaaaaaaaaa…)"
    )


def retrained(folds: list[float], brier: list[float] | None = None) -> FoldEvidence:
    """The champion's configuration measured on the candidate's data (DATA) and folds."""
    brier = CHAMPION_BRIER if brier is None else brier
    return FoldEvidence(DATA, SCHEME, tuple(np.round(folds, 6)), tuple(np.round(brier, 6)))


def test_new_data_compares_against_the_champions_configuration_retrained_on_it() -> None:
    """The champion (0.88 on its own data "b…") retrained on the new data scores 0.92 there; a
    candidate at 0.90 beats the old figure but not the retrained one: kept, naming all three."""
    old = champion(data="b" * 64)
    on_new_data = shifted(CHAMPION_FOLDS, 0.04, centred(0.004, 7))
    candidate_folds = shifted(CHAMPION_FOLDS, 0.02, centred(0.004, 8))
    decision = decide(
        candidate(candidate_folds),
        tags(candidate_folds),
        old,
        POLICY,
        retrained=retrained(on_new_data),
    )
    assert not decision.promote, decision.reason
    assert decision.reason.startswith("kept the champion: CV ROC-AUC -0.020000 is below the")
    assert (
        f"CV ROC-AUC {np.mean(candidate_folds):.4f} vs the champion's configuration "
        f"(heart_disease_logistic_regression v1) retrained on the candidate's data and folds "
        f"{np.mean(on_new_data):.4f} (on its own data sha256 bbbbbbbbbbbb…: "
        f"{np.mean(CHAMPION_FOLDS):.4f})"
    ) in decision.reason
    assert decision.statistics["champion_retrained_cv_roc_auc"] == pytest.approx(
        np.mean(on_new_data), abs=1e-6
    )
    assert decision.statistics["mean_roc_auc_difference"] == pytest.approx(-0.02, abs=1e-6)

    # The same candidate against a retrained champion that does worse on the new data: promoted.
    weaker = shifted(CHAMPION_FOLDS, -0.01, centred(0.004, 9))
    decision = decide(
        candidate(candidate_folds), tags(candidate_folds), old, POLICY, retrained=retrained(weaker)
    )
    assert decision.promote, decision.reason
    assert decision.reason.startswith(
        f"better by a supported margin: CV ROC-AUC {np.mean(candidate_folds):.4f} vs the "
        f"champion's configuration (heart_disease_logistic_regression v1) retrained on the candidate's data "
        f"and folds {np.mean(weaker):.4f}"
    ), decision.reason


def test_new_data_keeps_a_champion_whose_retrained_calibration_is_better() -> None:
    old = champion(data="b" * 64)
    better = shifted(CHAMPION_FOLDS, 0.03, centred(0.003, 1))
    decision = decide(
        candidate(better),
        tags(better, list(0.142 + centred(0.01, 4))),
        old,
        POLICY,
        retrained=retrained(CHAMPION_FOLDS),
    )
    assert not decision.promote
    assert decision.reason.startswith(
        "kept the champion: CV Brier 0.142 vs champion 0.121, worse by more than 0.01. "
    ), decision.reason


def test_a_genuinely_better_candidate_is_promoted_with_its_figures() -> None:
    better = shifted(CHAMPION_FOLDS, 0.03, centred(0.003, 1))
    brier = shifted(CHAMPION_BRIER, 0.004)  # slightly worse calibration, within the margin
    decision = gate(better, brier)
    assert decision.promote, decision.reason
    # The p-value, recomputed here from the Nadeau-Bengio formula with scipy's t distribution.
    diff = np.round(np.subtract(better, CHAMPION_FOLDS), 6)
    error = math.sqrt((1 / N + 0.2 / 0.8) * diff.var(ddof=1))
    p_value = float(stats.t.sf(diff.mean() / error, N - 1))
    assert decision.statistics["p_value"] == pytest.approx(p_value, rel=1e-9)
    assert decision.reason == (
        f"better by a supported margin: CV ROC-AUC {np.mean(better):.4f} vs champion "
        f"{np.mean(CHAMPION_FOLDS):.4f} (Δ +0.0300, one-sided corrected paired t-test p={p_value:.3f} on the same 50 folds); "
        "CV Brier 0.125 vs champion 0.121"
    )


def test_a_gain_of_one_millionth_on_every_fold_keeps_the_champion() -> None:
    # Issue 13's hole: equal fold differences have variance 0, and p used to come out as 0.
    tiny = shifted(CHAMPION_FOLDS, 1e-6)
    decision = gate(tiny)
    assert not decision.promote, decision.reason
    assert decision.reason.startswith(
        "kept the champion: CV ROC-AUC +0.000001 is below the minimum improvement 0.005; "
    ), decision.reason
    assert decision.statistics["p_value"] is None  # undefined, not 0


def test_equal_fold_differences_are_no_statistical_support() -> None:
    # With no minimum improvement, the zero-variance rule alone must keep the champion.
    tiny = shifted(CHAMPION_FOLDS, 1e-6)
    decision = gate(tiny, policy=PromotionConfig(min_improvement=0))
    assert not decision.promote, decision.reason
    assert decision.reason.startswith(
        "kept the champion: every fold difference is +0.000001, so the t-test has no variance "
        "to judge by. "
    ), decision.reason


def test_identical_folds_keep_the_champion() -> None:
    decision = gate(CHAMPION_FOLDS)
    assert not decision.promote
    assert decision.reason.startswith(
        "kept the champion: CV ROC-AUC +0.000000 is below the minimum improvement 0.005; "
        "every fold difference is +0.000000"
    ), decision.reason
    assert "p=undefined" in decision.reason


def test_better_roc_auc_but_worse_calibration_keeps_the_champion() -> None:
    better = shifted(CHAMPION_FOLDS, 0.03, centred(0.003, 1))
    brier = list(0.142 + centred(0.01, 4))
    decision = gate(better, brier)
    assert not decision.promote, decision.reason
    assert decision.reason.startswith(
        "kept the champion: CV Brier 0.142 vs champion 0.121, worse by more than 0.01. "
    ), decision.reason
    assert decision.statistics["brier_increase"] == pytest.approx(0.021)


def test_a_gain_the_folds_do_not_support_keeps_the_champion() -> None:
    # +0.01 on average (above the minimum), but fold differences scattered ±0.03.
    noisy = shifted(CHAMPION_FOLDS, 0.01, centred(0.03, 2))
    decision = gate(noisy)
    p_value = decision.statistics["p_value"]
    assert p_value is not None and p_value >= 0.05
    assert not decision.promote, decision.reason
    assert decision.reason.startswith(
        f"kept the champion: not better by a supported margin (p={p_value:.3f} ≥ 0.05). "
    ), decision.reason


def test_a_worse_candidate_keeps_the_champion_naming_every_failed_rule() -> None:
    worse = shifted(CHAMPION_FOLDS, -0.02, centred(0.003, 5))
    decision = gate(worse, shifted(CHAMPION_BRIER, 0.05))
    assert not decision.promote
    reason = decision.reason
    assert reason.startswith("kept the champion: CV ROC-AUC -0.020000 is below the minimum"), reason
    assert "not better by a supported margin (p=1.000 ≥ 0.05)" in reason
    assert "CV Brier 0.171 vs champion 0.121, worse by more than 0.01" in reason


def test_the_thresholds_come_from_the_policy() -> None:
    better = shifted(CHAMPION_FOLDS, 0.03, centred(0.003, 1))
    strict = PromotionConfig(p_value=0.01, min_improvement=0.05, max_brier_increase=0.0)
    decision = gate(better, shifted(CHAMPION_BRIER, 0.001), policy=strict)
    assert not decision.promote
    assert "CV ROC-AUC +0.030000 is below the minimum improvement 0.05" in decision.reason
    assert "CV Brier 0.122 vs champion 0.121, worse by more than 0" in decision.reason


@pytest.mark.parametrize(
    "case", ["no champion", "other data", "kept", "promoted", "forced", "other folds"]
)
def test_every_decision_records_its_thresholds(case: str) -> None:
    policy = PromotionConfig(p_value=0.02, min_improvement=0.004, max_brier_increase=0.03)
    better = shifted(CHAMPION_FOLDS, 0.03, centred(0.003, 1))
    folds = {"kept": CHAMPION_FOLDS}.get(case, better)
    current = {
        "no champion": None,
        "other data": champion(data="b" * 64),
    }.get(case, champion())
    scheme = "repeated-stratified-3-fold-x2-seed42-n242" if case == "other folds" else SCHEME
    decision = decide(
        candidate(folds), tags(folds, scheme=scheme), current, policy, force=case == "forced"
    )
    assert decision.promote == (case not in {"kept", "other folds"}), decision.reason
    record = decision.record()
    assert record["thresholds"] == {
        "p_value": 0.02,
        "min_improvement": 0.004,
        "max_brier_increase": 0.03,
    }
    assert record["reason"] == decision.reason
    json.dumps(record, allow_nan=False)  # valid JSON: an undefined figure is null, not NaN


def test_different_cv_scheme_keeps_the_champion() -> None:
    better = shifted(CHAMPION_FOLDS, 0.05)
    other = "repeated-stratified-3-fold-x2-seed42-n242"
    decision = gate(better, scheme=other)
    assert not decision.promote
    assert decision.reason == (
        "kept the champion: its CV folds differ from the candidate's "
        f"({SCHEME} vs {other}), so no paired comparison is possible; "
        "use --force-champion to replace it"
    )


def test_fold_results_of_another_length_keep_the_champion() -> None:
    shorter = [v + 0.05 for v in CHAMPION_FOLDS[:10]]
    decision = decide(candidate(shorter), tags(shorter, CHAMPION_BRIER[:10]), champion(), POLICY)
    assert not decision.promote
    assert decision.reason == "kept the champion: fold results missing or of different length"


def test_unreadable_fold_tags_keep_the_champion() -> None:
    better = shifted(CHAMPION_FOLDS, 0.05)
    broken = {**tags(better), "cv_fold_roc_auc": "[0.9, oops"}
    decision = decide(candidate(better), broken, champion(), POLICY)
    assert not decision.promote
    assert decision.reason == "kept the champion: fold results missing or of different length"


def test_a_champion_without_brier_folds_is_not_replaced_blindly() -> None:
    old = champion()
    old.tags.pop("cv_fold_brier")  # registered before the calibration check existed
    better = shifted(CHAMPION_FOLDS, 0.05, centred(0.003, 1))
    decision = gate(better, current=old)
    assert not decision.promote
    assert decision.reason.startswith("kept the champion: CV Brier scores by fold are missing")


@pytest.mark.parametrize("current", [None, "same", "worse-candidate"])
def test_force_always_promotes(current: str | None) -> None:
    folds = shifted(CHAMPION_FOLDS, -0.05) if current == "worse-candidate" else CHAMPION_FOLDS
    decision = decide(
        candidate(folds), tags(folds), champion() if current else None, POLICY, force=True
    )
    assert decision.promote
    assert decision.reason == "forced with --force-champion"
