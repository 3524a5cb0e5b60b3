"""Evaluation figures that set the models against each other: ROC-AUC per CV fold, permutation
importance per feature, ROC-AUC per subgroup."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from heartml.reports.columns import DatasetView
from heartml.reports.evaluation_results import MISSING, ModelResult, number, subgroup_keys
from heartml.reports.style import HIGHLIGHT_COLOUR, legend, separate_rows


def cv_folds_figure(models: Sequence[ModelResult]) -> Figure:
    figure = Figure(figsize=(max(5.5, 1.6 * len(models) + 2.5), 4.8), layout="constrained")
    ax = figure.subplots()
    positions = np.arange(1, len(models) + 1)
    folds = [m.folds("roc_auc") for m in models]
    boxes = ax.boxplot(
        folds,
        positions=positions,
        widths=0.5,
        showmeans=True,
        showfliers=False,  # the dots below show every fold, outliers included
        patch_artist=True,
        meanprops={"marker": "^", "markerfacecolor": "white", "markeredgecolor": "black"},
        medianprops={"color": "black"},
    )
    rng = np.random.default_rng(0)  # fixed jitter: the same document gives the same PNG
    for position, values, box, model in zip(positions, folds, boxes["boxes"], models, strict=True):
        box.set_facecolor(model.colour)
        box.set_alpha(0.35)
        jitter = rng.uniform(-0.12, 0.12, len(values))
        ax.scatter(position + jitter, values, s=12, color=model.colour, alpha=0.7, zorder=3)
    tests = [m.test("roc_auc") for m in models]
    shown = [(p, t) for p, t in zip(positions, tests, strict=True) if t is not None]
    if shown:
        ax.scatter(
            [p for p, _ in shown],
            [t for _, t in shown],
            marker="D",
            s=55,
            color=HIGHLIGHT_COLOUR,
            edgecolor="black",
            zorder=4,
            label="test split",
        )
        legend(ax, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside: folds fill the box
    ax.set_xticks(positions, [m.name + (" (best)" if m.best else "") for m in models])
    ax.set_xlim(0.4, len(models) + 0.6)
    ax.set_ylabel("ROC-AUC")
    ax.set_title("ROC-AUC per CV fold")
    ax.grid(axis="y", alpha=0.3)
    return figure


def importance_figure(models: Sequence[ModelResult], view: DatasetView) -> Figure:
    importances = [(m, m.section("permutation_importance")) for m in models]
    features: dict[str, None] = {}
    for _, importance in importances:
        features.update(dict.fromkeys(importance))

    def average(feature: str) -> float:
        values = [
            v
            for _, imp in importances
            if (v := number((imp.get(feature) or {}).get("mean"))) is not None
        ]
        return float(np.mean(values)) if values else -math.inf

    names = sorted(features, key=average, reverse=True)
    height = 0.8 / len(models)
    figure = Figure(
        figsize=(10, 0.14 * len(names) * max(len(models), 3) + 1.8), layout="constrained"
    )
    ax = figure.subplots()
    positions = np.arange(len(names))
    for i, (model, importance) in enumerate(importances):
        means = [number((importance.get(n) or {}).get("mean")) for n in names]
        stds = [number((importance.get(n) or {}).get("std")) for n in names]
        ax.barh(
            positions - 0.4 + height * (i + 0.5),
            [0.0 if m is None else m for m in means],
            height,
            xerr=[0.0 if s is None else s for s in stds],
            color=model.colour,
            error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "#333333"},
            label=model.name,
        )
    ax.axvline(0, color="black", lw=0.8)
    separate_rows(ax, len(names))
    ax.set_yticks(positions, [view.feature_label(n) for n in names])
    ax.set_ylim(len(names) - 0.5, -0.5)  # most important at the top
    ax.set_xlabel("Drop in test ROC-AUC when the feature is shuffled")
    ax.grid(axis="x", alpha=0.3)
    legend(ax, loc="lower right")
    return figure


def subgroup_figure(
    models: Sequence[ModelResult], split_names: Mapping[str, str], view: DatasetView
) -> Figure:
    keys = list(dict.fromkeys(k for split in split_names for k in subgroup_keys(models, split)))
    figure = Figure(
        figsize=(13, 0.45 * len(keys) * max(1, len(models) / 2) + 2.2), layout="constrained"
    )
    # Not sharey: shared axes share tick labels, and n per subgroup differs between the splits.
    axes = figure.subplots(1, 2)
    positions = np.arange(len(keys))
    offset = 0.6 / max(len(models), 1)
    lowest = 1.0
    for ax, (split, title) in zip(axes, split_names.items(), strict=True):
        labels = []
        for key in keys:
            entries = [e for m in models if (e := m.subgroup(split, key)) is not None]
            n = entries[0].get("n") if entries else None
            labels.append(f"{view.subgroup_label(key)}, n = {MISSING if n is None else n}")
        for i, model in enumerate(models):
            points = [
                (position + offset * (i - (len(models) - 1) / 2), auc)
                for position, key in zip(positions, keys, strict=True)
                if (auc := number((model.subgroup(split, key) or {}).get("roc_auc"))) is not None
            ]
            if not points:
                continue
            lowest = min(lowest, *(auc for _, auc in points))
            ax.scatter(
                [auc for _, auc in points],
                [y for y, _ in points],
                color=model.colour,
                s=40 if model.best else 28,
                edgecolor="black" if model.best else "none",
                label=model.name,
                zorder=3,
            )
        ax.set_yticks(positions, labels)
        ax.set_ylim(len(keys) - 0.5, -0.5)  # first subgroup at the top
        ax.set_title(title)
        ax.set_xlabel("ROC-AUC within the subgroup")
        ax.grid(axis="x", alpha=0.3)
        separate_rows(ax, len(keys))
    for ax in axes:  # one x range so the two splits compare at a glance
        ax.set_xlim(max(0.0, lowest - 0.05), 1.01)
    legend(axes[1], loc="upper left", bbox_to_anchor=(1.0, 1.0))  # points fill the panels
    return figure
