"""The monitoring report's per-site pages: how the model does at each site, before and after the
site's active calibration, with the calibration's own record (heartml.calibration.files).

One page per site, at <report>/sites/<site>/index.html (a site name is a safe folder name by
heartml.sites.SITE_PATTERN; a stored site that does not match it gets no page), for the served
model version: a calibration belongs to one model version, and the report is about that one.
The sites are those with labelled predictions of that version in the report's window, and
those with a calibration folder.

"Before" is the model's own probability (the store's raw_probability), "after" the site's
ACTIVE calibration applied to it by heartml.calibration.document.apply, the server's arithmetic.
Outcomes of predictions made in the calibration's fitting window were (or may have been) used
to fit it: those figures are in-sample, and the page shows them apart from the rest.
Intervals are heartml.monitoring.performance.bootstrap_intervals (percentile bootstrap by row
counts: a few vector operations per resample, so a site of a million rows takes seconds; one
seed, so before and after are computed on the same resamples), with the report's resample count.
"""

from __future__ import annotations

import csv
import io
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import numpy as np
from sqlalchemy.engine import Engine

from heartml.calibration import files
from heartml.calibration.document import SiteCalibration, apply
from heartml.calibration.files import ActiveCalibrations
from heartml.evaluate import fast_metrics
from heartml.monitoring.performance import bootstrap_intervals, roc_auc
from heartml.reports.evaluation_results import MISSING, fmt
from heartml.reports.monitoring_figures import calibration_curves
from heartml.reports.render import render
from heartml.reports.style import figure_style
from heartml.sites import SITE_PATTERN
from heartml.store.query import Selection, read
from heartml.store.records import utc

SITES_DIR = "sites"  # beside the report's index.html
SCORES_FILE = "scores.csv"  # the table's numbers, unrounded, beside each site page
METRICS = {"brier": "Brier", "log_loss": "Log loss", "roc_auc": "ROC-AUC"}
SEED = 0


@dataclass(frozen=True)
class SiteRows:
    """A site's labelled predictions of one model version, oldest first."""

    created_at: np.ndarray  # POSIX seconds
    outcome: np.ndarray  # 0/1
    raw: np.ndarray  # the model's own probability


@dataclass(frozen=True)
class Scores:
    """Brier, log-loss and ROC-AUC of one set of rows, before and (with a calibration) after."""

    group: str
    rows: int
    positives: int
    before: dict[str, float]
    before_ci: dict[str, tuple[float, float]]  # empty: one class only
    after: dict[str, float] | None
    after_ci: dict[str, tuple[float, float]]


def page_href(site: str) -> str:
    """The site page's address relative to the report's index."""
    return f"{SITES_DIR}/{quote(site, safe='')}/index.html"


def read_sites(
    engine: Engine, since: float, model_name: str, model_version: str
) -> tuple[dict[str, SiteRows], int]:
    """Labelled predictions of the model version per site, and how many rows name a site that
    is not an allowed site name (no page: a site is a folder name)."""
    got = read(
        engine,
        Selection(
            since=utc(since), model_name=model_name, model_version=model_version, labelled=True
        ),
    )
    named = np.array([s or "" for s in got.site], dtype=object)
    found, refused = {}, 0
    for site in sorted(set(named.tolist()) - {""}):
        rows = named == site
        if not SITE_PATTERN.fullmatch(site):
            refused += int(rows.sum())
            continue
        found[site] = SiteRows(got.created_at[rows], got.outcome[rows], got.raw_probability[rows])
    return found, refused


def metrics(
    y: np.ndarray, p: np.ndarray, resamples: int
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """The page's figures of probabilities p against outcomes y, and their 95% intervals (none
    when the rows hold one class: no ROC-AUC, and a bootstrap of one class says nothing)."""
    if not len(y):
        return dict.fromkeys(METRICS, float("nan")), {}
    with np.errstate(divide="ignore", invalid="ignore"):  # fast_metrics' AUC of one class
        values = fast_metrics(y, p, threshold=0.5)  # the threshold's figures are not read
    values["roc_auc"] = roc_auc(y, p)  # NaN of one class
    if y.min() == y.max():
        return {k: values[k] for k in METRICS}, {}
    return {k: values[k] for k in METRICS}, bootstrap_intervals(y, p, resamples, seed=SEED)


def scores(
    group: str, y: np.ndarray, raw: np.ndarray, after: np.ndarray | None, resamples: int
) -> Scores:
    before, before_ci = metrics(y, raw, resamples)
    calibrated, after_ci = metrics(y, after, resamples) if after is not None else (None, {})
    return Scores(group, len(y), int(y.sum()), before, before_ci, calibrated, after_ci)


def seconds(text: str) -> float:
    """An ISO time of a calibration document as POSIX seconds (naive: UTC, as stored)."""
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def score_groups(
    rows: SiteRows, calibration: SiteCalibration | None, resamples: int
) -> list[Scores]:
    y, raw = rows.outcome.astype(np.float64), rows.raw
    after = apply(calibration, raw) if calibration else None
    groups = [scores("All outcomes in the report window", y, raw, after, resamples)]
    if calibration is None or after is None:
        return groups
    window = calibration.window
    inside = (rows.created_at >= seconds(window.first_prediction_at)) & (
        rows.created_at <= seconds(window.last_prediction_at)
    )
    for group, mask in (
        ("In the fitting window (in-sample)", inside),
        ("Outside the fitting window (not used to fit)", ~inside),
    ):
        if mask.any():
            groups.append(scores(group, y[mask], raw[mask], after[mask], resamples))
    return groups


def write_scores(path: Path, groups: list[Scores]) -> None:
    table = io.StringIO(newline="")
    out = csv.writer(table)
    out.writerow(["group", "rows", "positives", "metric", "before", "before_low",
                  "before_high", "after", "after_low", "after_high"])  # fmt: skip
    for g in groups:
        for key in METRICS:
            low, high = g.before_ci.get(key, ("", ""))
            after = "" if g.after is None else g.after[key]
            a_low, a_high = g.after_ci.get(key, ("", ""))
            out.writerow([g.group, g.rows, g.positives, key, repr(g.before[key]), low, high,
                          after, a_low, a_high])  # fmt: skip
    path.write_bytes(table.getvalue().encode("utf-8"))


def shown(value: float, interval: tuple[float, float] | None) -> dict[str, str]:
    band = f"[{fmt(interval[0], 4)}, {fmt(interval[1], 4)}]" if interval else MISSING
    return {"value": fmt(value, 4), "ci": band}


def score_rows(groups: list[Scores]) -> list[dict[str, object]]:
    return [
        {
            "group": g.group,
            "rows": f"{g.rows:,}",
            "positives": f"{g.positives:,}",
            "metric": label,
            "before": shown(g.before[key], g.before_ci.get(key)),
            "after": None if g.after is None else shown(g.after[key], g.after_ci.get(key)),
        }
        for g in groups
        for key, label in METRICS.items()
    ]


@dataclass(frozen=True)
class SiteRecord:
    """What the calibrations folder says of a site (the defaults: nothing, the raw model)."""

    calibration: SiteCalibration | None = None  # the active one, verified
    problem: str | None = None  # why the active one is not applied
    history: list[files.Decision] = field(default_factory=list)
    history_problem: str | None = None  # why the decisions cannot be read


def site_record(
    calibrations: Path, model_name: str, model_version: str, site: str, active: ActiveCalibrations
) -> SiteRecord:
    try:
        history = files.decisions(files.site_dir(calibrations, model_name, model_version, site))
        history_problem = None
    except (files.CalibrationFileError, OSError) as exc:
        history, history_problem = [], str(exc)
    return SiteRecord(active.by_site.get(site), active.problems.get(site), history, history_problem)


def site_page(
    out: Path, site: str, model: str, rows: SiteRows, record: SiteRecord, resamples: int
) -> dict[str, str]:
    """Write out/index.html (with calibration.png and scores.csv); returns its index row."""
    calibration, problem = record.calibration, record.problem
    out.mkdir(parents=True, exist_ok=True)
    groups = score_groups(rows, calibration, resamples)
    write_scores(out / SCORES_FILE, groups)
    curves = {"model (before)": rows.raw}
    if calibration is not None:
        curves[f"calibration v{calibration.version} (after)"] = apply(calibration, rows.raw)
    with figure_style():
        figure = calibration_curves(
            out, rows.outcome, curves, title="Calibration before and after",
            caption=": the model's own probability"
            + (", and after the site's active calibration" if calibration else "")
            + ". On the diagonal, the probabilities mean what they say at this site.",
        )  # fmt: skip
    page = render(
        "reports/site_calibration.html",
        site=site,
        model=model,
        calibration=calibration,
        problem=problem,
        scores=score_rows(groups),
        resamples=f"{resamples:,}",
        figure=figure,
        history=record.history,
        history_problem=record.history_problem,
    )
    (out / "index.html").write_bytes(page.encode("utf-8"))
    overall = groups[0]
    return {
        "site": site,
        "href": page_href(site),
        "outcomes": f"{overall.rows:,}",
        "calibration": calibration.label
        if calibration
        else (f"not applied: {problem}" if problem else "none: the raw model"),
        "brier_before": fmt(overall.before["brier"], 4),
        "brier_after": MISSING if overall.after is None else fmt(overall.after["brier"], 4),
    }


def build_site_pages(
    engine: Engine,
    calibrations: Path | None,
    model_name: str,
    model_version: str,
    since: float,
    out_dir: Path,
    resamples: int,
) -> tuple[list[dict[str, str]], int]:
    """Every site's page under out_dir/sites/; returns the index's rows and the count of
    labelled rows whose site name is not allowed. No calibrations folder: every site raw."""
    by_site, refused = read_sites(engine, since, model_name, model_version)
    records: dict[str, SiteRecord] = {}
    if calibrations is not None and calibrations.is_dir():
        active = files.load_active(calibrations, model_name, model_version)
        records = {
            site: site_record(calibrations, model_name, model_version, site, active)
            for site in files.sites(calibrations, model_name, model_version)
        }
    shutil.rmtree(out_dir / SITES_DIR, ignore_errors=True)  # no page of a site now gone
    empty = SiteRows(np.empty(0), np.empty(0, np.int8), np.empty(0))
    model = f"{model_name} v{model_version}"
    made = [
        site_page(
            out_dir / SITES_DIR / site,
            site,
            model,
            by_site.get(site, empty),
            records.get(site, SiteRecord()),
            resamples,
        )
        for site in sorted(set(by_site) | set(records))
    ]
    return made, refused
