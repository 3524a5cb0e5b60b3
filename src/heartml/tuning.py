"""Shared tuning studies: Optuna trials over a model's search space, by any number of workers.

Every worker process (`heartml tune`, on one machine or many) opens the same study in the same
storage (SQLite by default, PostgreSQL for a team) with load_if_exists, so they share one
history: each trial gets its own number and the sampler learns from everybody's results.

The objective is the tuning score the training stage uses (configs/pipeline.yaml `tuning`:
repeated stratified K-fold on the TRAINING split only, seed + 1 folds, `scoring`), so a trial's
value equals GridSearchCV's score for the same parameters. The test split is never seen here.

The best trial feeds experiment tracking through a config file: `write_best_config` fixes the
best parameters into `models.<algorithm>.params` with an empty search space, and
`heartml --config <file> track` trains, evaluates and registers that model as usual.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from heartml.config import ModelConfig, ParamValue, PipelineConfig
from heartml.documents.base import JsonObject
from heartml.errors import HeartmlError
from heartml.spec import TARGET, DatasetSpec

STUDY_ATTRS = ("algorithm", "config_hash", "data_sha256", "scoring")
WORKER_ATTR = "worker"


class TuningError(HeartmlError):
    """The study cannot be run or joined; the message says why, in one line."""


@dataclass(frozen=True)
class TuningSummary:
    study: str
    storage: str
    algorithm: str
    scoring: str
    worker: str
    trials_run: int  # by this worker, in this call
    trials_total: int  # complete trials in the study, all workers
    best_value: float | None
    best_params: dict[str, ParamValue]  # values from the config's search_space
    best_trial: int | None


def default_storage(root: Path) -> str:
    return f"sqlite:///{root / 'optuna.db'}"


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def search_space(config: PipelineConfig, algorithm: str) -> dict[str, list[Any]]:
    if algorithm not in config.models:
        raise TuningError(
            f"--algorithm {algorithm!r}: not in the config's models ({', '.join(config.models)})"
        )
    space = dict(config.models[algorithm].search_space)
    if not space:
        raise TuningError(f"models.{algorithm}.search_space is empty: nothing to tune")
    return space


def make_objective(
    algorithm: str,
    train: pd.DataFrame,
    spec: DatasetSpec,
    config: PipelineConfig,
    n_jobs: int = 1,
) -> Callable[[Any], float]:
    """trial -> mean CV score on the training split of the parameters the trial suggests."""
    from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score

    from heartml.features import build_pipeline
    from heartml.models import make_estimator

    space = search_space(config, algorithm)
    fixed = config.models[algorithm]  # type: ignore[index]
    X, y = train.loc[:, list(spec.raw_names)], train[TARGET].to_numpy()
    # The folds train_model's grid search uses: a trial's value is comparable with its scores.
    folds = RepeatedStratifiedKFold(
        n_splits=config.tuning.cv_folds,
        n_repeats=config.tuning.cv_repeats,
        random_state=config.seed + 1,
    )

    def objective(trial: Any) -> float:
        # Every value list is a categorical choice: the YAML lists are the candidates.
        trial.set_user_attr(WORKER_ATTR, worker_id())
        chosen = {name: trial.suggest_categorical(name, values) for name, values in space.items()}
        model_config = ModelConfig(params={**fixed.params, **chosen}, search_space={})
        pipeline = build_pipeline(spec, make_estimator(algorithm, model_config, config.seed))
        scores = cross_val_score(
            pipeline, X, y, scoring=config.tuning.scoring, cv=folds, n_jobs=n_jobs
        )
        trial.set_user_attr("fold_scores", [float(s) for s in scores])
        return float(np.mean(scores))

    return objective


def _storage(url: str) -> Any:
    import optuna

    if url.startswith("sqlite"):
        # Several processes on one SQLite file: wait for the write lock rather than fail.
        engine_kwargs: dict[str, object] = {"connect_args": {"timeout": 60}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)


def open_study(
    name: str, storage_url: str, algorithm: str, attrs: dict[str, str], sampler: Any = None
) -> Any:
    """Create the study or join it; refuse to join one made for other data, config or model."""
    import optuna

    last: Exception | None = None
    for attempt in range(3):
        try:
            # Workers starting together may race to create the schema or the study: retry.
            study = optuna.create_study(
                study_name=name,
                storage=_storage(storage_url),
                direction="maximize",
                sampler=sampler,
                load_if_exists=True,
            )
            break
        except Exception as exc:
            last = exc
            time.sleep(0.5 * (attempt + 1))
    else:
        first = str(last).strip().splitlines()[0] if last and str(last).strip() else last
        raise TuningError(f"cannot open study {name!r} in {_safe(storage_url)}: {first}")
    existing = study.user_attrs
    for key, value in attrs.items():
        if key not in existing:
            study.set_user_attr(key, value)
        elif existing[key] != value:
            raise TuningError(
                f"study {name!r} was made with {key} {existing[key]!r}, this worker has "
                f"{value!r}: its trials would not be comparable; use another --study"
            )
    return study


def _safe(url: str) -> str:
    """A storage URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


def tune(
    algorithm: str,
    train: pd.DataFrame,
    spec: DatasetSpec,
    config: PipelineConfig,
    data_sha256: str,
    study_name: str,
    storage_url: str,
    n_trials: int,
    timeout_s: float | None = None,
    sampler: Any = None,
    n_jobs: int = 1,
    callback: Callable[[int, float], None] | None = None,
) -> TuningSummary:
    """Run n_trials (this worker's share) in the shared study; return the study's best so far."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search_space(config, algorithm)  # fail before touching the storage
    attrs = {
        "algorithm": algorithm,
        "config_hash": config.config_hash(),
        "data_sha256": data_sha256,
        "spec_hash": spec.spec_hash(),
        "scoring": config.tuning.scoring,
    }
    study = open_study(study_name, storage_url, algorithm, attrs, sampler)
    callbacks = []
    if callback is not None:

        def report(_study: Any, trial: Any) -> None:
            if trial.value is not None:
                callback(trial.number, float(trial.value))

        callbacks.append(report)
    before = _complete(study)
    if n_trials > 0:
        study.optimize(
            make_objective(algorithm, train, spec, config, n_jobs),
            n_trials=n_trials,
            timeout=timeout_s,
            callbacks=callbacks,
            # A parameter combination the estimator refuses fails its trial, not the worker.
            catch=(ValueError,),
        )
    seen = {trial.number for trial in before}
    me = worker_id()
    mine = [
        t for t in _complete(study) if t.number not in seen and t.user_attrs.get(WORKER_ATTR) == me
    ]
    return _summary(study, storage_url, algorithm, config, len(mine))


def _complete(study: Any) -> list[Any]:
    import optuna

    return list(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))


def _summary(
    study: Any, storage_url: str, algorithm: str, config: PipelineConfig, trials_run: int
) -> TuningSummary:
    complete = _complete(study)
    best = max(complete, key=lambda t: t.value) if complete else None
    return TuningSummary(
        study=study.study_name,
        storage=_safe(storage_url),
        algorithm=algorithm,
        scoring=config.tuning.scoring,
        worker=worker_id(),
        trials_run=trials_run,
        trials_total=len(complete),
        best_value=None if best is None else float(best.value),
        best_params={} if best is None else dict(best.params),
        best_trial=None if best is None else int(best.number),
    )


def best_config(
    config: PipelineConfig, algorithm: str, best_params: Mapping[str, ParamValue]
) -> JsonObject:
    """The config with the best parameters fixed for `algorithm` and nothing left to search."""
    raw = config.model_dump(mode="json")
    model = raw["models"][algorithm]
    model["params"] = {**model["params"], **best_params}
    model["search_space"] = {}
    return raw


def write_best_config(path: Path, config: PipelineConfig, summary: TuningSummary) -> JsonObject:
    if summary.best_value is None:
        raise TuningError(f"study {summary.study!r} has no complete trial yet: nothing to write")
    from heartml.config import parse_config

    raw = best_config(config, summary.algorithm, summary.best_params)
    parse_config(raw, source=str(path))  # what we write must load
    header = (
        f"# Written by `heartml tune`: study {summary.study!r} ({summary.storage}), best trial "
        f"#{summary.best_trial} of {summary.trials_total},\n# mean CV {summary.scoring} "
        f"{summary.best_value:.6f} on the training split. Train and register it with:\n"
        f"#   heartml --config {path} track\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(raw, sort_keys=False))
    return raw
