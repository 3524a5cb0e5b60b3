"""Training and evaluation: four tuned models, honest repeated-CV estimates, nothing chosen on the
test split; and the statistics in evaluate.py checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold

from heartml.choices import ALGORITHMS
from heartml.config import PipelineConfig
from heartml.data.acquire import RawData
from heartml.data.parse import parse_records
from heartml.data.prepare import prepare
from heartml.data.schema import validate
from heartml.evaluate import (
    METRICS,
    bootstrap_ci,
    classification_metrics,
    corrected_paired_t_test,
    curves,
    subgroup_metrics,
    summarize_folds,
)
from heartml.spec import ROW_ID, load_spec
from heartml.train import ModelResult, TrainingResult, subgroup_masks, train_all
from oracles import CLEVELAND_SHA256, HEART_SPEC_FILE

pytestmark = pytest.mark.task2

SPEC = load_spec(HEART_SPEC_FILE)
RAW_FEATURES = SPEC.raw_names


# --- evaluate.py: pure statistics, by hand ---------------------------------------------------

Y = np.array([1, 1, 1, 0, 0, 0])
P = np.array([0.9, 0.8, 0.3, 0.6, 0.2, 0.1])


def test_classification_metrics_by_hand() -> None:
    metrics = classification_metrics(Y, P, threshold=0.5)
    # predicted 1 1 0 1 0 0 -> TP 2, FN 1, FP 1, TN 2
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["precision"] == pytest.approx(2 / 3)
    assert metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["f1"] == pytest.approx(2 / 3)
    # 8 of the 9 (positive, negative) pairs are ranked correctly (0.3 < 0.6)
    assert metrics["roc_auc"] == pytest.approx(8 / 9)
    assert metrics["brier"] == pytest.approx((0.01 + 0.04 + 0.49 + 0.36 + 0.04 + 0.01) / 6)
    expected_log_loss = -np.mean(np.log([0.9, 0.8, 0.3, 0.4, 0.8, 0.9]))
    assert metrics["log_loss"] == pytest.approx(expected_log_loss)
    assert set(metrics) == set(METRICS)
    assert all(type(v) is float for v in metrics.values())


def test_threshold_is_inclusive_and_moves_the_counts() -> None:
    at = classification_metrics(np.array([1, 0]), np.array([0.5, 0.49]), threshold=0.5)
    assert at["accuracy"] == 1.0
    strict = classification_metrics(Y, P, threshold=0.85)  # only 0.9 predicted positive
    assert strict["precision"] == 1.0
    assert strict["recall"] == pytest.approx(1 / 3)
    assert strict["roc_auc"] == pytest.approx(8 / 9)  # threshold-free


def test_summarize_folds_by_hand() -> None:
    summary = summarize_folds([0.8, 0.9, 1.0], test_fraction=0.2, bounds=(-math.inf, math.inf))
    assert summary["mean"] == pytest.approx(0.9)
    assert summary["std"] == pytest.approx(0.1)
    t_975_df2 = 4.302652729911275
    corrected_se = math.sqrt((1 / 3 + 0.2 / 0.8) * 0.01)
    assert summary["ci_high"] - summary["mean"] == pytest.approx(t_975_df2 * corrected_se)
    assert summary["mean"] - summary["ci_low"] == pytest.approx(t_975_df2 * corrected_se)
    naive_half = t_975_df2 * 0.1 / math.sqrt(3)
    assert summary["ci_high"] - summary["mean"] > naive_half * 1.3  # wider than the naive one


def test_intervals_stop_where_the_metric_does() -> None:
    """Three folds near 1: the t interval reaches past 1, which no ROC-AUC can."""
    summary = summarize_folds([0.97, 0.99, 1.0], test_fraction=1 / 3)
    assert summary["ci_high"] == 1.0
    assert summary["ci_low"] < summary["mean"] < summary["ci_high"]
    unbounded = summarize_folds([0.97, 0.99, 1.0], 1 / 3, bounds=(-math.inf, math.inf))
    assert unbounded["ci_high"] > 1.0
    assert unbounded["ci_low"] == summary["ci_low"]


def test_summarize_single_value_and_constant_folds() -> None:
    assert summarize_folds([0.7], 0.2) == {"mean": 0.7, "std": 0.0, "ci_low": 0.7, "ci_high": 0.7}
    constant = summarize_folds([0.5] * 10, 0.2)
    assert constant["ci_low"] == constant["ci_high"] == pytest.approx(0.5)


def test_corrected_paired_t_test() -> None:
    rng = np.random.default_rng(0)
    base = rng.uniform(0.80, 0.90, 50)
    better = base + 0.05 + rng.normal(0, 0.005, 50)
    clearly = corrected_paired_t_test(list(better), list(base), test_fraction=0.2)
    assert clearly["p_value"] < 0.05
    assert clearly["mean_difference"] == pytest.approx(0.05, abs=0.005)
    reverse = corrected_paired_t_test(list(base), list(better), test_fraction=0.2)
    assert reverse["p_value"] > 0.95

    same = corrected_paired_t_test(list(base), list(base), test_fraction=0.2)
    assert 0.5 <= same["p_value"] <= 1.0
    noise = base + rng.normal(0, 0.01, 50)
    noise -= noise.mean() - base.mean()  # no difference on average
    even = corrected_paired_t_test(list(noise), list(base), test_fraction=0.2)
    assert even["p_value"] == pytest.approx(0.5, abs=0.05)


def test_correction_makes_the_test_more_cautious() -> None:
    rng = np.random.default_rng(1)
    b = rng.uniform(0.8, 0.9, 50)
    a = b + 0.01 + rng.normal(0, 0.02, 50)
    loose = corrected_paired_t_test(list(a), list(b), test_fraction=0.0)  # plain paired t-test
    strict = corrected_paired_t_test(list(a), list(b), test_fraction=0.2)
    assert strict["p_value"] > loose["p_value"]


def test_bootstrap_ci_brackets_the_point_estimate() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 80)
    p = np.clip(y * 0.4 + rng.uniform(0, 0.6, 80), 0, 1)
    point = classification_metrics(y, p, 0.5)
    ci = bootstrap_ci(y, p, 0.5, seed=3, n_boot=60)
    for name in METRICS:
        assert ci[name]["ci_low"] <= point[name] <= ci[name]["ci_high"], name
        assert ci[name]["ci_low"] < ci[name]["ci_high"], name
    assert ci == bootstrap_ci(y, p, 0.5, seed=3, n_boot=60)


def test_curves_and_subgroups() -> None:
    result = curves(Y, P, threshold=0.5, bins=3)
    assert result["confusion_matrix"]["matrix"] == [[2, 1], [1, 2]]
    assert result["roc"]["fpr"][0] == 0.0 and result["roc"]["tpr"][-1] == 1.0
    groups = {
        "first": np.array([1, 1, 1, 0, 0, 0], bool),
        "mixed": np.array([1, 0] * 3, bool),
        "half": np.array([1, 0, 1, 1, 0, 0], bool),
        "inverted": np.array([0, 0, 1, 1, 0, 0], bool),
    }
    sub = subgroup_metrics(Y, P, groups | {"empty": np.zeros(6, bool)}, 0.5)
    assert sub["first"]["roc_auc"] is None  # one class only
    assert sub["first"]["n"] == 3
    # By hand, AUC = share of (positive, negative) pairs ranked right:
    # mixed: positives 0.9, 0.3 vs negative 0.2 -> 2 of 2 = 1.0
    # half: positives 0.9, 0.3 vs negative 0.6 -> 1 of 2 = 0.5
    # inverted: positive 0.3 vs negative 0.6 -> 0 of 1 = 0.0
    assert sub["mixed"]["roc_auc"] == pytest.approx(1.0)
    assert sub["half"]["roc_auc"] == pytest.approx(0.5)
    assert sub["inverted"]["roc_auc"] == pytest.approx(0.0)
    assert (sub["mixed"]["n"], sub["mixed"]["prevalence"]) == (3, pytest.approx(2 / 3))
    assert "empty" not in sub


def test_subgroups_follow_the_spec(cleveland: pd.DataFrame) -> None:
    ages = np.array([29, 40, 41, 50, 51, 60, 61], dtype=float)
    rows = cleveland.iloc[: len(ages)].assign(age=ages, sex=[0, 1, 0, 1, 0, 1, 1])
    masks = subgroup_masks(rows, SPEC)
    assert list(masks) == [
        "sex=female",
        "sex=male",
        "age_group=young",
        "age_group=middle_aged",
        "age_group=senior",
        "age_group=elderly",
    ]
    # Right-closed bins, as pandas.cut(right=True) gives them: the oracle.
    bins = pd.cut(ages, [-np.inf, 40, 50, 60, np.inf], right=True, labels=False)
    for code, label in enumerate(["young", "middle_aged", "senior", "elderly"]):
        assert masks[f"age_group={label}"].tolist() == (bins == code).tolist()
    assert masks["sex=female"].tolist() == [True, False, True, False, True, False, False]


def fake_model(name: str, cv_auc: float, test_auc: float) -> ModelResult:
    summary = {"mean": cv_auc, "std": 0.01, "ci_low": cv_auc - 0.02, "ci_high": cv_auc + 0.02}
    return ModelResult(
        algorithm=name,
        pipeline=None,  # type: ignore[arg-type]
        best_params={},
        tuning={},
        cv_fold_metrics={},
        cv_metrics={"roc_auc": summary},
        test_metrics={"roc_auc": test_auc},
        test_ci={},
        oof_curves={},
        test_curves={},
        subgroups={},
        permutation_importance={},
        masked_blocks={},
        seconds=0.0,
    )


def test_best_algorithm_follows_cv_not_the_test_split(small_config: PipelineConfig) -> None:
    models = {
        "random_forest": fake_model("random_forest", cv_auc=0.88, test_auc=0.99),
        "svm": fake_model("svm", cv_auc=0.91, test_auc=0.80),
        "logistic_regression": fake_model("logistic_regression", cv_auc=0.90, test_auc=0.95),
    }
    result = TrainingResult(models, small_config, SPEC, "sha", n_train=242, n_test=61)
    assert result.best_algorithm == "svm"


# --- train_all on the Cleveland split with the small config ----------------------------------


@pytest.fixture(scope="module")
def split(raw_bytes: bytes) -> tuple[pd.DataFrame, pd.DataFrame]:
    parsed = parse_records(raw_bytes, SPEC)
    raw = RawData(raw_bytes, "shipped copy", "test", CLEVELAND_SHA256, "t0")
    data = prepare(parsed.frame, validate(parsed, SPEC), raw, SPEC, test_size=0.2, seed=42)
    return data.train, data.test


@pytest.fixture(scope="module")
def trained(
    split: tuple[pd.DataFrame, pd.DataFrame], small_config: PipelineConfig
) -> TrainingResult:
    train, test = split
    return train_all(train, test, SPEC, small_config, CLEVELAND_SHA256)


def test_split_rows_are_disjoint(split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, test = split
    assert not set(train[ROW_ID]) & set(test[ROW_ID])
    assert len(train) + len(test) == 303


@pytest.mark.slow
def test_all_four_models_are_trained(
    trained: TrainingResult, split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    _, test = split
    assert set(trained.models) == set(ALGORITHMS)
    assert (trained.n_train, trained.n_test) == (242, 61)
    assert trained.data_sha256 == CLEVELAND_SHA256
    for name, model in trained.models.items():
        assert model.algorithm == name
        p = model.pipeline.predict_proba(test[list(RAW_FEATURES)])[:, 1]
        assert p.shape == (61,)
        assert model.test_metrics["roc_auc"] > 0.75, name  # learnt something real
        assert set(model.permutation_importance) == set(RAW_FEATURES)
        assert model.tuning["candidates"] == 2
    assert trained.feature_names["raw"] == list(RAW_FEATURES)
    assert len(trained.feature_names["engineered"]) == 19


@pytest.mark.slow
def test_every_metric_has_a_corrected_interval(
    trained: TrainingResult, small_config: PipelineConfig
) -> None:
    folds = small_config.evaluation.cv_folds * small_config.evaluation.cv_repeats
    for name, model in trained.models.items():
        assert set(model.cv_metrics) == set(METRICS)
        for metric, summary in model.cv_metrics.items():
            assert set(summary) == {"mean", "std", "ci_low", "ci_high"}
            assert summary["ci_low"] <= summary["mean"] <= summary["ci_high"], (name, metric)
            assert summary["ci_low"] < summary["ci_high"], (name, metric)
            assert len(model.cv_fold_metrics[metric]) == folds
            assert summary["mean"] == pytest.approx(np.mean(model.cv_fold_metrics[metric]))
        for metric, ci in model.test_ci.items():
            assert ci["ci_low"] <= model.test_metrics[metric] <= ci["ci_high"], (name, metric)


@pytest.mark.slow
def test_best_algorithm_is_the_argmax_of_cv_roc_auc(trained: TrainingResult) -> None:
    cv_auc = {name: m.cv_metrics["roc_auc"]["mean"] for name, m in trained.models.items()}
    assert trained.best_algorithm == max(cv_auc, key=cv_auc.__getitem__)


@pytest.mark.slow
def test_training_is_deterministic(
    trained: TrainingResult,
    split: tuple[pd.DataFrame, pd.DataFrame],
    small_config: PipelineConfig,
) -> None:
    train, test = split
    again = train_all(train, test, SPEC, small_config, CLEVELAND_SHA256, ("random_forest",))
    first, second = trained.models["random_forest"], again.models["random_forest"]
    assert second.best_params == first.best_params
    assert second.cv_fold_metrics == first.cv_fold_metrics
    assert second.cv_metrics == first.cv_metrics
    assert second.test_metrics == first.test_metrics
    assert second.test_ci == first.test_ci
    assert second.permutation_importance == first.permutation_importance


@pytest.mark.slow
def test_tuning_and_cv_never_see_the_test_split(
    trained: TrainingResult,
    split: tuple[pd.DataFrame, pd.DataFrame],
    small_config: PipelineConfig,
) -> None:
    """Flip every test label: everything chosen or estimated on training data stays identical."""
    train, test = split
    flipped = test.assign(target=1 - test["target"])
    honest = train_all(train, flipped, SPEC, small_config, CLEVELAND_SHA256, ("svm",))
    original, other = trained.models["svm"], honest.models["svm"]
    assert other.best_params == original.best_params
    assert other.tuning == original.tuning
    assert other.cv_fold_metrics == original.cv_fold_metrics
    assert other.cv_metrics == original.cv_metrics
    assert other.oof_curves == original.oof_curves
    # Same fitted model, mirrored test labels: the test AUC mirrors too.
    assert other.test_metrics["roc_auc"] == pytest.approx(1 - original.test_metrics["roc_auc"])


@pytest.mark.slow
def test_masked_blocks_give_the_cv_auc_with_the_block_unknown(
    trained: TrainingResult,
    split: tuple[pd.DataFrame, pd.DataFrame],
    small_config: PipelineConfig,
) -> None:
    """Recomputed here with scikit-learn alone: the same folds, the tuned model refitted on each,
    the block's columns blanked in the held-out rows, roc_auc_score per fold, averaged."""
    train, _ = split
    model = trained.models["logistic_regression"]
    assert set(model.masked_blocks) == set(SPEC.missing_blocks)
    X, y = train[list(RAW_FEATURES)], train["target"].to_numpy()
    splitter = RepeatedStratifiedKFold(
        n_splits=small_config.evaluation.cv_folds,
        n_repeats=small_config.evaluation.cv_repeats,
        random_state=small_config.seed,
    )
    for block, columns in SPEC.missing_blocks.items():
        aucs = []
        for fit_idx, held_idx in splitter.split(X, y):
            fitted = clone(model.pipeline).fit(X.iloc[fit_idx], y[fit_idx])
            held = X.iloc[held_idx].copy()
            held.loc[:, list(columns)] = np.nan
            aucs.append(roc_auc_score(y[held_idx], fitted.predict_proba(held)[:, 1]))
        recorded = model.masked_blocks[block]
        assert recorded["columns"] == list(columns)
        assert recorded["roc_auc"]["mean"] == pytest.approx(np.mean(aucs), abs=1e-12), block
    # Blanking ca and thal costs this model real discrimination on Cleveland.
    imaging = model.masked_blocks["imaging"]["roc_auc"]["mean"]
    assert imaging < model.cv_metrics["roc_auc"]["mean"] - 0.01


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_metrics_equal_sklearn_metrics(seed: int) -> None:
    # The bootstrap uses the numpy implementation: it must give sklearn's numbers, ties included.
    from heartml.evaluate import fast_metrics

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 80)
    p = np.round(rng.random(80), 1)  # rounding makes many tied scores
    slow = classification_metrics(y, p, 0.5)
    fast = fast_metrics(y, p, 0.5)
    assert fast.keys() == slow.keys()
    for name in slow:
        assert fast[name] == pytest.approx(slow[name], abs=1e-12), name
