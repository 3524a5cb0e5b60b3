"""`heartml monitor report`'s per-site pages: the installed command on a real SQLite store holding
two sites' labelled predictions of a real package (the Cleveland rows), one site with a logistic
calibration, its decisions and its fitting window written by heartml.calibration.files, the
other with none. Oracles: scikit-learn's brier_score_loss, log_loss and roc_auc_score on the rows
the test stored, before (the model's probability) and after (apply()'d)."""

from __future__ import annotations

import csv
import html as html_lib
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from page_checks import (
    assert_figure_embedded_and_written,
    assert_headings_and_links,
    assert_index_page,
    assert_offline,
    assert_shared_layout,
    section,
    visible_text,
)
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from heartml.calibration import files
from heartml.calibration.document import CandidateFigures, OutcomeWindow, SiteCalibration, apply
from heartml.reports.site_calibration import build_site_pages
from heartml.settings import Settings
from heartml.spec import TARGET
from heartml.store.engine import create_engine, upgrade
from heartml.store.outcomes import Outcome, record_outcomes
from serving_packages import fit, heart_spec, read_source, write_package
from stored_predictions import store_predictions

pytestmark = pytest.mark.monitoring

MODEL = "heart_disease_logistic_regression"
CALIBRATED, RAW = "north", "south-2"
FITTED_ROWS = 100  # the calibrated site's first rows, 3 days old: its fitting window
HEADINGS = ["Calibration in use", "Scores before and after", "Calibration before and after",
            "Candidate methods", "Decision history"]  # fmt: skip
ALL, INSIDE, OUTSIDE = (
    "All outcomes in the report window",
    "In the fitting window (in-sample)",
    "Outside the fitting window (not used to fit)",
)


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def run_report(
    project: Settings, heartml_cli: Callable[..., Any], env: dict[str, str]
) -> tuple[Path, str]:
    result = heartml_cli("monitor", "report", "--since", "7d", cwd=project.root, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    index = project.root / "reports" / "monitoring" / "index.html"
    return index, index.read_text(encoding="utf-8")


def north_calibration(now: float) -> SiteCalibration:
    """Site north's logistic calibration v1, fitted on its first FITTED_ROWS rows (3 days old)."""
    return SiteCalibration(
        site=CALIBRATED, model_name=MODEL, model_version="1", version=1, method="logistic",
        intercept=-0.4, slope=0.7,
        window=OutcomeWindow(first_prediction_at=iso(now - 3.5 * 86400),
                             last_prediction_at=iso(now - 2.5 * 86400),
                             outcomes=FITTED_ROWS, positives=41),
        folds=5,
        cv=[CandidateFigures(method="none", brier=0.2011, log_loss=0.61),
            CandidateFigures(method="in_the_large", brier=0.1902, log_loss=0.58),
            CandidateFigures(method="logistic", brier=0.1703, log_loss=0.52)],
        created_at=iso(now - 2 * 86400),
    )  # fmt: skip


@pytest.fixture
def stored(
    project: Settings, make_cli_env: Callable[..., dict[str, str]]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Two sites' labelled predictions in the store, north's later ones served through its
    calibration (the store keeps the model's own probability beside); no calibrations folder."""
    spec = heart_spec()
    frame = read_source(spec)
    names = list(spec.raw_names)
    pipeline = fit(spec, frame, LogisticRegression(max_iter=2000))
    package = write_package(project.root / "packages", spec, pipeline, frame)
    engine = create_engine(f"sqlite:///{project.root / 'monitoring' / 'predictions.db'}")
    upgrade(engine, create_parent=True)
    p = pipeline.predict_proba(frame[names])[:, 1]
    y = frame[TARGET].to_numpy().astype(int)
    x = frame[names].to_numpy(dtype=float)
    half = len(frame) // 2
    calibration = north_calibration(time.time())
    parts = [  # (site, rows, age in days, served calibrated): the fitting window comes first
        (CALIBRATED, slice(0, FITTED_ROWS), 3.0, False),
        (CALIBRATED, slice(FITTED_ROWS, half), 1.0, True),
        (RAW, slice(half, len(frame)), 1.0, False),
    ]
    for site, rows, age, calibrated in parts:
        ids = [f"{site}-{i}" for i in range(rows.start, rows.stop)]
        served = apply(calibration, p[rows]) if calibrated else p[rows]
        store_predictions(
            engine, spec, ids, x[rows].tolist(), probabilities=served.tolist(),
            age_days=age, site=site,
            raw_probabilities=p[rows].tolist() if calibrated else None,
            calibration_version=1 if calibrated else None,
        )  # fmt: skip
        record_outcomes(engine, [Outcome(i, 0, int(v)) for i, v in zip(ids, y[rows], strict=True)])
    env = make_cli_env(HEARTML_MODEL_PACKAGE=str(package), HEARTML_OFFLINE="1")
    return {"p": p, "y": y, "half": half, "calibration": calibration}, env


def calibrate(project: Settings, calibration: SiteCalibration) -> Path:
    """North's calibration written and made active after a declined attempt, the decisions as
    `heartml recalibrate` records them; returns the site's folder."""
    now = time.time()
    root = project.resolved_calibrations_dir
    files.write_calibration(root, calibration)
    directory = files.site_dir(root, MODEL, "1", CALIBRATED)
    files.set_active(directory, 1)
    for decision in (
        files.Decision(
            at=iso(now - 2.6 * 86400), action="declined", site=CALIBRATED, model_name=MODEL,
            model_version="1", reason="40 outcomes, fewer than the minimum 100",
        ),
        files.Decision(
            at=iso(now - 2 * 86400), action="accepted", site=CALIBRATED, model_name=MODEL,
            model_version="1", candidate_version=1, active_before=None, active_after=1,
            reason="CV Brier 0.1703 < 0.2011 (none)",
        ),
    ):  # fmt: skip
        files.append_decision(directory, decision)
    return directory


def scores(page: Path) -> dict[tuple[str, str], dict[str, str]]:
    with (page.parent / "scores.csv").open(encoding="utf-8") as handle:
        return {(r["group"], r["metric"]): r for r in csv.DictReader(handle)}


def cell_texts(html: str, group: str, metric: str) -> list[str]:
    row = re.search(
        rf'<tr data-group="{re.escape(group)}" data-metric="{metric}">(.*?)</tr>', html, re.S
    )
    assert row, f"no row {group!r} {metric!r}"
    return re.findall(r'<td class="num">([^<]*)</td>', row.group(1))


def assert_scores(page: Path, html: str, group: str, y: np.ndarray, before: np.ndarray,
                  after: np.ndarray | None) -> None:  # fmt: skip
    table = scores(page)
    for metric, label, oracle in (
        ("brier", "Brier", brier_score_loss),
        ("log_loss", "Log loss", log_loss),
        ("roc_auc", "ROC-AUC", roc_auc_score),
    ):
        row = table[(group, metric)]
        assert int(row["rows"]) == len(y) and int(row["positives"]) == int(y.sum())
        assert float(row["before"]) == pytest.approx(oracle(y, before), abs=1e-12)
        cells = cell_texts(html, group, label)
        assert cells[2] == f"{oracle(y, before):.4f}"
        assert float(row["before_low"]) < float(row["before"]) < float(row["before_high"])
        if after is None:
            assert row["after"] == "" and len(cells) == 4
        else:
            assert float(row["after"]) == pytest.approx(oracle(y, after), abs=1e-12)
            assert cells[4] == f"{oracle(y, after):.4f}"
            assert float(row["after_low"]) < float(row["after"]) < float(row["after_high"])


def test_a_calibrated_site_shows_before_and_after_and_its_record_and_a_raw_site_says_so(
    project: Settings,
    heartml_cli: Callable[..., Any],
    stored: tuple[dict[str, Any], dict[str, str]],
) -> None:
    data, env = stored
    calibration = data["calibration"]
    calibrate(project, calibration)
    index, index_html = run_report(project, heartml_cli, env)
    p, y, half = data["p"], data["y"], data["half"]
    # The index links each site's page (a relative address under sites/).
    by_site = section(index_html, "sites")
    assert f'href="sites/{CALIBRATED}/index.html"' in by_site
    assert f'href="sites/{RAW}/index.html"' in by_site
    page = index.parent / "sites" / CALIBRATED / "index.html"
    html = page.read_text(encoding="utf-8")
    assert_index_page(page)
    assert_shared_layout(html, f"Site {CALIBRATED}: {MODEL} v1")
    assert_offline(html)
    assert_headings_and_links(html, HEADINGS)
    assert_figure_embedded_and_written(page, html, "calibration")
    # Before: the model's probability; after: the active calibration applied to it, on every
    # labelled row, the fitting window's rows (in-sample) and the later ones.
    raw, fitted = p[:half], slice(0, FITTED_ROWS)
    after = apply(calibration, raw)
    assert_scores(page, html, ALL, y[:half], raw, after)
    assert_scores(page, html, INSIDE, y[fitted], raw[fitted], after[fitted])
    later = slice(FITTED_ROWS, half)
    assert_scores(page, html, OUTSIDE, y[later], raw[later], after[later])
    # The outcomes used and the CV figures, from the calibration document.
    in_use = section(html, "calibration-in-use")
    assert "north v1 (logistic)" in in_use
    assert f"{FITTED_ROWS} outcomes, 41 positive" in visible_text(in_use)
    assert calibration.window.first_prediction_at in in_use and "in-sample" in in_use
    candidates = re.findall(
        r"<tr><td>(\w+)</td><td class=\"num\">([\d.]+)</td>\s*<td class=\"num\">([\d.]+)</td>"
        r"\s*<td>(\w*)</td>", section(html, "candidates"),
    )  # fmt: skip
    assert candidates == [("none", "0.2011", "0.6100", ""),
                          ("in_the_large", "0.1902", "0.5800", ""),
                          ("logistic", "0.1703", "0.5200", "chosen")]  # fmt: skip
    # The decision history, oldest first.
    decisions = [
        [html_lib.unescape(c) for c in re.findall(r"<td[^>]*>([^<]*)</td>", row)]
        for row in re.findall(r'<tr class="decision">(.*?)</tr>', html, re.S)
    ]
    assert [d[1:] for d in decisions] == [
        ["declined", "–", "–", "–", "40 outcomes, fewer than the minimum 100"],
        ["accepted", "v1", "–", "v1", "CV Brier 0.1703 < 0.2011 (none)"],
    ]
    # The other site: no calibration, the raw model's figures, no after column.
    raw_page = index.parent / "sites" / RAW / "index.html"
    raw_html = raw_page.read_text(encoding="utf-8")
    assert "This site has no calibration" in visible_text(section(raw_html, "calibration-in-use"))
    assert_scores(raw_page, raw_html, ALL, y[half:], p[half:], None)
    assert "No recalibration was ever decided" in section(raw_html, "decisions")


def test_without_a_calibrations_folder_every_site_is_raw(
    project: Settings,
    heartml_cli: Callable[..., Any],
    stored: tuple[dict[str, Any], dict[str, str]],
) -> None:
    data, env = stored
    assert not project.resolved_calibrations_dir.exists()
    index, index_html = run_report(project, heartml_cli, env)
    p, y, half = data["p"], data["y"], data["half"]
    for site, rows in ((CALIBRATED, slice(0, half)), (RAW, slice(half, None))):
        page = index.parent / "sites" / site / "index.html"
        html = page.read_text(encoding="utf-8")
        assert "This site has no calibration" in visible_text(html)
        assert_scores(page, html, ALL, y[rows], p[rows], None)
    assert "none: the raw model" in section(index_html, "sites")


def test_an_altered_calibration_is_not_applied_and_the_page_says_why(
    project: Settings,
    heartml_cli: Callable[..., Any],
    stored: tuple[dict[str, Any], dict[str, str]],
) -> None:
    data, env = stored
    directory = calibrate(project, data["calibration"])
    document = directory / "v1" / files.CALIBRATION_FILE
    document.write_text(document.read_text().replace("-0.4", "-0.5"))
    index, _ = run_report(project, heartml_cli, env)
    page = index.parent / "sites" / CALIBRATED / "index.html"
    html = page.read_text(encoding="utf-8")
    in_use = visible_text(section(html, "calibration-in-use"))
    assert "the active one cannot be used" in in_use and "does not match" in in_use
    assert_scores(page, html, ALL, data["y"][: data["half"]], data["p"][: data["half"]], None)


def test_a_stored_site_that_is_not_a_site_name_gets_no_page(tmp_path: Path) -> None:
    spec = heart_spec()
    engine = create_engine(f"sqlite:///{tmp_path / 'predictions.db'}")
    upgrade(engine, create_parent=True)
    row = [63.0, 1, 1, 145, 233, 1, 2, 150, 0, 2.3, 3, 0, 6]
    for site, count in (("../escape", 3), ("ok", 2)):
        ids = [f"{site}-{i}" for i in range(count)]
        store_predictions(engine, spec, ids, [row] * count, probabilities=[0.3] * count, site=site)
        record_outcomes(engine, [Outcome(i, 0, n % 2) for n, i in enumerate(ids)])
    out = tmp_path / "report"
    made, refused = build_site_pages(engine, None, MODEL, "1", time.time() - 86400, out, 10)
    assert [r["site"] for r in made] == ["ok"] and refused == 3
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("index.html")) == [
        "report/sites/ok/index.html"
    ]
