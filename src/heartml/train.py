"""Task 2 core: tune each model on the training split, evaluate it honestly, fit the final pipeline.

Pure: DataFrames and a config in, a TrainingResult out. No files, no tracking, no printing; the
caller may pass a progress callback.

Honesty rules:
- the grid search sees only the training split (its own inner CV folds);
- repeated stratified K-fold on the training split measures the tuned configuration (intervals
  use the Nadeau-Bengio correction); because the grid was chosen on the same rows, these CV
  numbers lean slightly optimistic, which is why
- the held-out test split, never used to choose anything, is reported beside them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.inspection import permutation_importance
from sklearn.model_selection import GridSearchCV, RepeatedStratifiedKFold
from sklearn.pipeline import Pipeline

from heartml.choices import ALGORITHMS
from heartml.config import PipelineConfig
from heartml.documents.base import JsonObject
from heartml.documents.evaluation import (
    FeatureNames,
    Importance,
    MaskedBlock,
    ModelSummary,
    Subgroups,
    Tuning,
)
from heartml.evaluate import (
    METRIC_RANGE,
    METRICS,
    bootstrap_ci,
    classification_metrics,
    curves,
    subgroup_metrics,
    summarize_folds,
)
from heartml.features import build_pipeline, model_input_names
from heartml.models import core_estimator, make_estimator, search_grid, strip_prefix
from heartml.spec import TARGET, DatasetSpec
from heartml.spec.expressions import evaluate

Progress = Callable[[str], None]
N_JOBS = -1  # folds in parallel on every core; each estimator itself stays single-threaded


@dataclass
class ModelResult:
    pipeline: Pipeline
    summary: ModelSummary  # everything but the fitted object: what the results and MLflow record

    @property
    def algorithm(self) -> str:
        return self.summary.algorithm


@dataclass
class TrainingResult:
    models: dict[str, ModelResult]
    config: PipelineConfig
    spec: DatasetSpec
    data_sha256: str
    n_train: int
    n_test: int
    feature_names: FeatureNames

    @property
    def best_algorithm(self) -> str:
        """Chosen on repeated-CV ROC-AUC of the training split, never on the test split."""
        return max(self.models, key=lambda name: self.models[name].summary.cv_roc_auc)


def _plain(params: Mapping[str, object]) -> JsonObject:
    """Estimator parameters as JSON scalars (an object-valued parameter as its repr)."""
    return {
        k: v if isinstance(v, int | float | str | bool | type(None)) else repr(v)
        for k, v in params.items()
    }


def subgroup_masks(frame: pd.DataFrame, spec: DatasetSpec) -> dict[str, np.ndarray]:
    """`name=label` -> rows of that subgroup, for each of the spec's subgroup variables (a coded
    column, or a labelled bins feature computed from the row's own values)."""
    masks: dict[str, np.ndarray] = {}
    for name in spec.subgroups:
        if name in spec.columns:
            values = frame[name].to_numpy(dtype=float)
        else:
            columns = {c: frame[c].to_numpy(dtype=float) for c in spec.raw_names}
            values = np.asarray(evaluate(spec.parsed_features[name], columns), dtype=float)
        for code, label in spec.subgroup_labels(name).items():
            masks[f"{name}={label}"] = values == code
    return masks


def _fit_fold(
    pipeline: Pipeline,
    X: pd.DataFrame,
    y: np.ndarray,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    blocks: dict[str, tuple[str, ...]],
) -> dict[str, np.ndarray]:
    """Held-out probabilities of one fold: as recorded (key ""), and with each missing block
    unknown at scoring time (the same fitted model), to show what a missing block costs."""
    fitted = clone(pipeline).fit(X.iloc[train_idx], y[train_idx])
    held_out = X.iloc[test_idx]
    out = {"": np.asarray(fitted.predict_proba(held_out)[:, 1])}
    for block, columns in blocks.items():
        masked = held_out.copy()
        masked.loc[:, list(columns)] = np.nan
        out[block] = np.asarray(fitted.predict_proba(masked)[:, 1])
    return out


def evaluation_splits(
    config: PipelineConfig, X: pd.DataFrame, y: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The repeated stratified folds every model of a run is measured on (and the champion's
    configuration, retrained for a fair comparison: heartml.retrain)."""
    splitter = RepeatedStratifiedKFold(
        n_splits=config.evaluation.cv_folds,
        n_repeats=config.evaluation.cv_repeats,
        random_state=config.seed,
    )
    return list(splitter.split(X, y))


def train_model(
    algorithm: str,
    train: pd.DataFrame,
    test: pd.DataFrame,
    spec: DatasetSpec,
    config: PipelineConfig,
    progress: Progress | None = None,
) -> ModelResult:
    started = time.perf_counter()
    report = progress or (lambda _message: None)
    model_config = config.models[algorithm]  # type: ignore[index]
    raw = list(spec.raw_names)
    X_train, y_train = train.loc[:, raw], train[TARGET].to_numpy()
    X_test, y_test = test.loc[:, raw], test[TARGET].to_numpy()
    threshold = config.evaluation.threshold

    pipeline = build_pipeline(spec, make_estimator(algorithm, model_config, config.seed))
    grid = search_grid(algorithm, model_config)
    report(f"{algorithm}: tuning")
    if grid:
        search = GridSearchCV(
            pipeline,
            grid,
            scoring=config.tuning.scoring,
            cv=RepeatedStratifiedKFold(
                n_splits=config.tuning.cv_folds,
                n_repeats=config.tuning.cv_repeats,
                random_state=config.seed + 1,  # other folds than the evaluation's
            ),
            n_jobs=N_JOBS,
            refit=True,
        )
        search.fit(X_train, y_train)
        best_params: JsonObject = dict(strip_prefix(algorithm, search.best_params_))
        tuned: Pipeline = search.best_estimator_
        tuning = Tuning(
            scoring=config.tuning.scoring,
            cv_folds=config.tuning.cv_folds,
            cv_repeats=config.tuning.cv_repeats,
            candidates=len(search.cv_results_["params"]),
            best_inner_score=float(search.best_score_),
        )
    else:
        tuned = clone(pipeline).fit(X_train, y_train)
        best_params, tuning = {}, Tuning(candidates=0)

    report(f"{algorithm}: repeated CV")
    splits = evaluation_splits(config, X_train, y_train)
    unfitted = clone(tuned)
    blocks = dict(spec.missing_blocks)
    fold_probabilities = Parallel(n_jobs=N_JOBS)(
        delayed(_fit_fold)(unfitted, X_train, y_train, tr, te, blocks) for tr, te in splits
    )
    fold_metrics: dict[str, list[float]] = {name: [] for name in METRICS}
    masked_auc: dict[str, list[float]] = {block: [] for block in blocks}
    oof_sum = np.zeros(len(y_train))
    for (_, test_idx), scored in zip(splits, fold_probabilities, strict=True):
        probabilities = scored[""]
        for name, value in classification_metrics(
            y_train[test_idx], probabilities, threshold
        ).items():
            fold_metrics[name].append(value)
        for block in blocks:
            masked_auc[block].append(
                classification_metrics(y_train[test_idx], scored[block], threshold)["roc_auc"]
            )
        oof_sum[test_idx] += probabilities
    oof = oof_sum / config.evaluation.cv_repeats  # each row is held out once per repeat
    test_fraction = 1.0 / config.evaluation.cv_folds

    report(f"{algorithm}: test split and importance")
    p_test = tuned.predict_proba(X_test)[:, 1]
    importance = permutation_importance(
        tuned,
        X_test,
        y_test,
        scoring="roc_auc",
        n_repeats=config.evaluation.permutation_repeats,
        random_state=config.seed,
        n_jobs=1,
    )
    bins = config.evaluation.calibration_bins
    estimator = core_estimator(tuned.named_steps["model"])
    summary = ModelSummary(
        algorithm=algorithm,
        estimator=type(estimator).__name__,
        best_params=best_params,
        estimator_params=_plain(estimator.get_params()),
        tuning=tuning,
        cv_metrics={
            n: summarize_folds(v, test_fraction, METRIC_RANGE[n]) for n, v in fold_metrics.items()
        },
        cv_fold_metrics=fold_metrics,
        test_metrics=classification_metrics(y_test, p_test, threshold),
        test_ci=bootstrap_ci(y_test, p_test, threshold, config.seed),
        oof_curves=curves(y_train, oof, threshold, bins),
        test_curves=curves(y_test, p_test, threshold, bins),
        subgroups=Subgroups(
            cv_out_of_fold=subgroup_metrics(y_train, oof, subgroup_masks(train, spec), threshold),
            test=subgroup_metrics(y_test, p_test, subgroup_masks(test, spec), threshold),
        ),
        permutation_importance={
            name: Importance(
                mean=float(importance.importances_mean[i]),
                std=float(importance.importances_std[i]),
            )
            for i, name in enumerate(raw)
        },
        masked_blocks={
            block: MaskedBlock(
                columns=list(blocks[block]), roc_auc=summarize_folds(values, test_fraction)
            )
            for block, values in masked_auc.items()
        },
        seconds=time.perf_counter() - started,
    )
    return ModelResult(tuned, summary)


def train_all(
    train: pd.DataFrame,
    test: pd.DataFrame,
    spec: DatasetSpec,
    config: PipelineConfig,
    data_sha256: str,
    algorithms: tuple[str, ...] | None = None,
    progress: Progress | None = None,
) -> TrainingResult:
    chosen = algorithms or tuple(a for a in ALGORITHMS if a in config.models)
    models = {name: train_model(name, train, test, spec, config, progress) for name in chosen}
    any_pipeline = next(iter(models.values())).pipeline
    return TrainingResult(
        models=models,
        config=config,
        spec=spec,
        data_sha256=data_sha256,
        n_train=len(train),
        n_test=len(test),
        feature_names=FeatureNames(
            raw=list(spec.raw_names),
            engineered=list(spec.all_features),
            model_inputs=model_input_names(any_pipeline),
        ),
    )
