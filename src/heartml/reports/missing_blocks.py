"""What a missing block costs: each model's CV ROC-AUC with all data and with each of the spec's
missing blocks unknown at scoring time, as a table and a figure.

The numbers come from the results document (`models[alg]["masked_blocks"]`, written by
heartml.train): the same folds as the CV metrics, so the "all data" column is the CV ROC-AUC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from heartml.reports.columns import DatasetView
from heartml.reports.evaluation_results import ModelResult, fmt, number, signed
from heartml.reports.style import legend, separate_rows

ALL_DATA = ""  # the block key of the column with nothing masked


@dataclass(frozen=True)
class BlockColumn:
    key: str  # the block's name in the document; ALL_DATA for the unmasked column
    title: str
    columns: str  # the block's columns, in words with their names


@dataclass(frozen=True)
class BlockCell:
    block: str
    main: str  # mean ± std over the folds
    ci: str  # [95% corrected t CI]
    change: str  # against all data; "" in the all-data column


@dataclass(frozen=True)
class BlockRow:
    name: str
    best: bool
    colour: str
    cells: list[BlockCell]


@dataclass(frozen=True)
class BlockTable:
    columns: list[BlockColumn]
    rows: list[BlockRow]


def _masked(model: ModelResult) -> Mapping[str, Mapping[str, Any]]:
    value: Mapping[str, Mapping[str, Any]] = model.section("masked_blocks")
    return value


def _auc(model: ModelResult, block: str) -> Mapping[str, Any]:
    if block == ALL_DATA:
        return model.cv("roc_auc")
    value: Mapping[str, Any] = (_masked(model).get(block) or {}).get("roc_auc") or {}
    return value


def block_names(models: Sequence[ModelResult], view: DatasetView) -> list[str]:
    """The blocks the document holds: the spec's order first, then any others it recorded."""
    recorded: dict[str, None] = {}
    for model in models:
        recorded.update(dict.fromkeys(_masked(model)))
    return [b for b in view.missing_blocks if b in recorded] + [
        b for b in recorded if b not in view.missing_blocks
    ]


def block_table(models: Sequence[ModelResult], view: DatasetView) -> BlockTable | None:
    """None when the document has no masked blocks (older documents, specs without blocks)."""
    blocks = block_names(models, view)
    if not blocks:
        return None
    columns = [BlockColumn(ALL_DATA, "All data", "nothing unknown")]
    for block in blocks:
        names = next(
            (list(cols) for m in models if (cols := (_masked(m).get(block) or {}).get("columns"))),
            list(view.missing_blocks.get(block, ())),
        )
        described = ", ".join(view.feature_label(name) for name in names)
        columns.append(BlockColumn(block, view.block_title(block), described))
    rows = []
    for model in models:
        everything = number(_auc(model, ALL_DATA).get("mean"))
        cells = []
        for column in columns:
            auc = _auc(model, column.key)
            mean = number(auc.get("mean"))
            change = ""
            if column.key != ALL_DATA:
                change = (
                    signed(mean - everything)
                    if mean is not None and everything is not None
                    else fmt(None)
                )
            cells.append(
                BlockCell(
                    column.key,
                    f"{fmt(auc.get('mean'))} ± {fmt(auc.get('std'))}",
                    f"[{fmt(auc.get('ci_low'))}, {fmt(auc.get('ci_high'))}]",
                    change,
                )
            )
        rows.append(BlockRow(model.name, model.best, model.colour, cells))
    return BlockTable(columns, rows)


def blocks_figure(models: Sequence[ModelResult], table: BlockTable) -> Figure:
    """One row per block (all data first), one point per model with its 95% CI."""
    columns = table.columns
    figure = Figure(
        figsize=(10, 0.55 * len(columns) * max(1, len(models) / 2) + 1.6), layout="constrained"
    )
    ax = figure.subplots()
    positions = np.arange(len(columns))
    offset = 0.6 / max(len(models), 1)
    lowest = 1.0
    for i, model in enumerate(models):
        ys: list[float] = []
        means: list[float] = []
        errors: tuple[list[float], list[float]] = ([], [])  # below and above the mean
        for position, column in zip(positions, columns, strict=True):
            auc = _auc(model, column.key)
            mean = number(auc.get("mean"))
            if mean is None:
                continue
            low, high = number(auc.get("ci_low")), number(auc.get("ci_high"))
            ys.append(position + offset * (i - (len(models) - 1) / 2))
            means.append(mean)
            errors[0].append(0.0 if low is None else max(0.0, mean - low))
            errors[1].append(0.0 if high is None else max(0.0, high - mean))
            lowest = min(lowest, mean - errors[0][-1])
        if not means:
            continue
        ax.errorbar(
            means,
            ys,
            xerr=list(errors),
            fmt="o",
            color=model.colour,
            ms=7 if model.best else 5,
            mec="black" if model.best else model.colour,
            elinewidth=1.2,
            capsize=2,
            label=model.name + (" (best)" if model.best else ""),
        )
    ax.set_yticks(positions, [column.title for column in columns])
    ax.set_ylim(len(columns) - 0.5, -0.5)  # all data at the top
    separate_rows(ax, len(columns))
    ax.set_xlim(max(0.0, lowest - 0.05), 1.0)
    ax.set_xlabel("CV ROC-AUC (mean over the folds, 95% CI)")
    ax.set_title("ROC-AUC with a block of columns unknown at scoring time")
    ax.grid(axis="x", alpha=0.3)
    legend(ax, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return figure
