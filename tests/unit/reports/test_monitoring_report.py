"""`heartml monitor report`: the installed command on a real SQLite prediction store holding a week
of the Cleveland rows scored by a real package (the last two days with chol shifted, outcomes for
the first four days only), opened in Debian's headless Chromium. Oracles: sklearn's
roc_auc_score on the rows the test stored, counts of what it stored."""

from __future__ import annotations

import csv
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from page_checks import (
    assert_figure_embedded_and_written,
    assert_headings_and_links,
    assert_index_page,
    assert_offline,
    assert_shared_layout,
    section,
)
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from headless_browser import headless_chrome
from heartml.package.manifest import REFERENCE_FILE
from heartml.serving.contract import build_contract
from heartml.settings import Settings
from heartml.spec import TARGET
from heartml.store.engine import create_engine, upgrade
from heartml.store.outcomes import Outcome, record_outcomes
from heartml.store.records import db_time, insert_rows, prediction_values
from serving_packages import fit, heart_spec, read_source, write_package

pytestmark = pytest.mark.monitoring

DAYS, LABELLED_DAYS, DRIFT_DAYS = 7, 4, 2
FIGURES = ["volume", "distributions", "psi", "performance", "calibration"]
MODEL = "heart_disease_logistic_regression"


@pytest.fixture
def report(
    project: Settings,
    heartml_cli: Callable[..., Any],
    make_cli_env: Callable[..., dict[str, str]],
) -> tuple[Path, dict[str, Any]]:
    spec = heart_spec()
    frame = read_source(spec)
    names = list(spec.raw_names)
    pipeline = fit(spec, frame, LogisticRegression(max_iter=2000))
    metrics = {"cv": {"roc_auc": {"mean": 0.9, "ci_low": 0.85, "ci_high": 0.95}}}
    package = write_package(project.root / "packages", spec, pipeline, frame, metrics=metrics)
    store = project.root / "monitoring" / "predictions.db"
    engine = create_engine(f"sqlite:///{store}")
    upgrade(engine, create_parent=True)
    contract = build_contract(spec)
    now = time.time()
    stored: dict[str, Any] = {"v1_y": [], "v1_p": [], "sex": [], "chol": [], "cp": []}
    for day in range(DAYS):
        rows = frame[names].copy()
        if day >= DAYS - DRIFT_DAYS:
            rows["chol"] += 120.0
        p = pipeline.predict_proba(rows)[:, 1]
        version = "1" if day < LABELLED_DAYS else "2"
        ids = [f"d{day}-{i}" for i in range(len(rows))]
        values = prediction_values(
            created_at=db_time("sqlite", now - (DAYS - day - 0.5) * 86400.0),
            source="api",
            model_name=MODEL,
            model_version=version,
            threshold=0.5,
            describer=contract,
            request_ids=ids,
            rows=[0] * len(ids),
            inputs=rows.to_numpy(dtype=float).tolist(),
            probabilities=p.tolist(),
            predictions=(p >= 0.5).astype(int).tolist(),
            site=None,
        )
        with engine.begin() as connection:
            insert_rows(connection, values)
        for name in ("sex", "chol", "cp"):
            stored[name].append(rows[name].to_numpy(dtype=float))
        if day < LABELLED_DAYS:
            y = frame[TARGET].to_numpy()
            record_outcomes(engine, [Outcome(i, 0, int(v)) for i, v in zip(ids, y, strict=True)])
            stored["v1_y"].append(y)
            stored["v1_p"].append(p)
    env = make_cli_env(HEARTML_MODEL_PACKAGE=str(package), HEARTML_OFFLINE="1")
    result = heartml_cli("monitor", "report", "--since", "7d", cwd=project.root, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    page = project.root / "reports" / "monitoring" / "index.html"
    assert str(page) in result.stdout.replace("\n", "")
    reference = json.loads((package / REFERENCE_FILE).read_text(encoding="utf-8"))
    return page, {**{k: np.concatenate(v) for k, v in stored.items()}, "reference": reference}


def cells(html: str, section_id: str, first: str) -> list[str]:
    row = re.search(rf"<tr><td>{re.escape(first)}</td>(.*?)</tr>", section(html, section_id), re.S)
    assert row, f"no row {first!r} in {section_id}"
    return re.findall(r'<td class="num">([^<]*)</td>', row.group(1))


def test_the_report_shows_every_figure_and_the_right_figures(
    report: tuple[Path, dict[str, Any]],
) -> None:
    page, stored = report
    html = page.read_text(encoding="utf-8")
    assert_index_page(page)
    assert_shared_layout(html, f"Monitoring: {MODEL} v1")
    assert_offline(html)
    assert_headings_and_links(
        html,
        ["Summary", "Drift by feature", "Volume over time", "Reference and current distributions",
         "Input drift over time", "Realised and estimated performance", "Calibration",
         "By model version", "By subgroup", "By site"],
    )  # fmt: skip
    for slug in FIGURES:
        assert_figure_embedded_and_written(page, html, slug)
    n = len(stored["sex"])
    assert f"{n:,} recorded, {len(stored['v1_y']):,} with an outcome" in html
    # The shifted input is named in the summary; an untouched one is not.
    summary = section(html, "summary")
    assert "drift: chol:" in summary and "drift: age:" not in summary
    # By version: counts and the realised ROC-AUC of version 1, by sklearn.
    v1 = cells(html, "versions", f"{MODEL} v1")
    auc = roc_auc_score(stored["v1_y"], stored["v1_p"])
    assert v1[:2] == [f"{len(stored['v1_y']):,}", f"{len(stored['v1_y']):,}"]
    assert v1[3] == f"{auc:.3f}"
    v2 = cells(html, "versions", f"{MODEL} v2")
    assert v2[:2] == [f"{n - len(stored['v1_y']):,}", "0"] and v2[3] == "–"
    # By subgroup: the spec's sex groups, counted from what was stored.
    female = next(
        r
        for r in re.findall(r"<tr><td>(sex=[^<]*)</td>", section(html, "subgroups"))
        if "female" in r
    )
    assert cells(html, "subgroups", female)[0] == f"{int((stored['sex'] == 0).sum()):,}"


def test_the_distributions_plotted_are_the_stored_inputs_in_the_reference_bins(
    report: tuple[Path, dict[str, Any]],
) -> None:
    page, stored = report
    with (page.parent / "distributions.csv").open(encoding="utf-8") as handle:
        plotted = list(csv.DictReader(handle))
    features = stored["reference"]["features"]
    assert list(dict.fromkeys(r["feature"] for r in plotted)) == list(features)

    def column(name: str, key: str) -> list[float]:
        return [float(r[key]) for r in plotted if r["feature"] == name]

    # Numeric: pandas cuts the stored chol values (shifted days included) on the package's
    # interior edges, open ends, closed on the left.
    chol = features["chol"]
    bins = [-np.inf, *chol["bin_edges"], np.inf]
    oracle = pd.cut(pd.Series(stored["chol"]), bins, right=False).value_counts(
        normalize=True, sort=False
    )
    assert column("chol", "current") == pytest.approx(oracle.to_numpy(), abs=1e-6)
    assert column("chol", "reference") == pytest.approx(chol["proportions"], abs=1e-6)
    # Coded: the share of each reference code among the stored cp values.
    cp = features["cp"]
    shares = pd.Series(stored["cp"]).value_counts(normalize=True).reindex(cp["codes"], fill_value=0)
    assert column("cp", "current") == pytest.approx(shares.to_numpy(), abs=1e-6)
    assert [r["bin"] for r in plotted if r["feature"] == "cp"] == [str(c) for c in cp["codes"]]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    with headless_chrome(tmp_path / "chromium-profile") as driver:
        yield driver


def test_the_report_opens_in_chromium_without_console_errors(
    report: tuple[Path, dict[str, Any]], browser: Any
) -> None:
    page, _ = report
    browser.get(page.as_uri())
    assert browser.title.startswith("Monitoring: ")
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])"
    )
    assert len(images) == len(FIGURES)
    for alt, complete, width in images:
        assert complete and width > 300, alt
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
