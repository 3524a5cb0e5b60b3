"""Simulated sites built from the shipped Cleveland file, for the recalibration tests and figures.

A site is a model's new hospital: the model (a logistic regression in the project's pipeline)
is fitted on half of the Cleveland rows; a site's patients are drawn with replacement from the
other half, as many with the disease as the site's prevalence asks, and may have one
measurement read differently (a constant added). Its probabilities are the model's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from heartml.spec import TARGET, DatasetSpec
from serving_packages import fit, heart_spec, read_source


@dataclass(frozen=True)
class SiteModel:
    spec: DatasetSpec
    pipeline: Pipeline
    pool: pd.DataFrame  # rows the model never saw


@dataclass(frozen=True)
class Site:
    frame: pd.DataFrame
    probability: np.ndarray  # the model's own
    outcome: np.ndarray  # 0/1 as float


def site_model() -> SiteModel:
    """The model of half the Cleveland rows (stratified, seed 0); the other half is the pool."""
    spec = heart_spec()
    frame = read_source(spec)
    train, pool = train_test_split(frame, test_size=0.5, stratify=frame[TARGET], random_state=0)
    return SiteModel(spec, fit(spec, train, LogisticRegression(max_iter=2000)), pool)


def draw_site(
    model: SiteModel, prevalence: float, n: int, seed: int, shift: dict[str, float] | None = None
) -> Site:
    positives = model.pool[model.pool[TARGET] == 1]
    negatives = model.pool[model.pool[TARGET] == 0]
    k = round(prevalence * n)
    rows = pd.concat(
        [
            positives.sample(k, replace=True, random_state=seed),
            negatives.sample(n - k, replace=True, random_state=seed + 1),
        ]
    )
    rows = rows.sample(frac=1.0, random_state=seed + 2).reset_index(drop=True)
    for column, delta in (shift or {}).items():
        rows[column] = rows[column] + delta
    names = list(model.spec.raw_names)
    probability = model.pipeline.predict_proba(rows[names])[:, 1]
    return Site(rows, probability, rows[TARGET].to_numpy(dtype=np.float64))
